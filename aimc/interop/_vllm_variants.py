"""vLLM Recipes: a model file's variants as aimc configurations.

Each variant of a model file on each GPU it is listed for with each single-node strategy
is one configuration (:class:`Variants`, :func:`configuration`): the variant's precision
and repo, the tensor parallel size the site would use, and the args and env layered as
the site's command builder does (strategy, variant, hardware overrides; a later flag
wins). One configuration per (GPU, precision, GPU count); those that differ only in GPU
are merged into one (:func:`merge`). Bounded: at most :data:`MAX_TRIES` combinations,
``MAX_CONFIGURATIONS`` configurations and ``MAX_ENTRIES`` args and env per model file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aimc.core.diagnostics import excerpt
from aimc.core.loader import Document, escape_pointer
from aimc.interop._collection import LIMIT
from aimc.interop._common import (
    MAX_CONFIGURATIONS,
    MAX_ENTRIES,
    MODEL_ID,
    Origin,
    RecipeOut,
    config_id,
    no_equivalent,
    ptr,
)
from aimc.interop._vllm_site import Args, Context, Env, hw_name, keyed, tensor_parallel

__all__ = ["MAX_TRIES", "PRECISIONS", "Conf", "Variants", "configuration", "merge", "set_neutral"]

#: vLLM Recipes precision -> aimc precision (nvfp4, mxfp8 and the rest have none).
PRECISIONS = {
    "fp32": "fp32",
    "bf16": "bf16",
    "fp16": "fp16",
    "fp8": "fp8",
    "int8": "int8",
    "int4": "int4",
    "mxfp4": "mxfp4",
}
#: Variant fields the conversion reads (``description`` is display only).
_VARIANT_KEYS = {
    "precision",
    "model_id",
    "vram_minimum_gb",
    "description",
    "label",
    "extra_args",
    "extra_env",
    "tp",
    "hardware_overrides",
}
#: Most variant x GPU x strategy combinations one model file is tried for.
MAX_TRIES = 4 * MAX_CONFIGURATIONS

#: A configuration and the origin of each of its values (pointers relative to it).
Conf = tuple[dict[str, Any], dict[str, Origin]]


def set_neutral(
    ctx: Context,
    neutral: dict[str, tuple[Any, Origin]],
    into: dict[str, Any],
    origins: dict[str, Origin],
    prefix: str,
) -> None:
    """The neutral fields a layer's args set (``--max-model-len``: ``context_length``) into
    ``into``, their origins at ``prefix`` + field; the GPU count is the strategy's (a
    ``--tensor-parallel-size`` is reported and not imported)."""
    for field_name, (value, where) in neutral.items():
        if field_name == "gpus":
            ctx.out.diagnostics.append(
                no_equivalent(
                    where, "--tensor-parallel-size is set from the strategy; not imported"
                )
            )
            continue
        into[field_name] = value
        origins[f"{prefix}{field_name}"] = where


@dataclass
class Variants:
    """The configurations of one model file as its variants are read: each variant on
    each listed GPU with each single-node strategy, one per (GPU, precision, GPU count),
    within the bounds (:data:`MAX_TRIES`, ``MAX_CONFIGURATIONS``, ``MAX_ENTRIES``); the
    weights of each precision (the first variant's; another repo is its own)."""

    doc: Document
    ctx: Context
    model_id: str
    result: RecipeOut
    hardware: list[tuple[str, Origin]]
    strategies: list[str]
    weights: dict[str, dict[str, Any]] = field(default_factory=dict)
    configurations: list[Conf] = field(default_factory=list)
    seen: dict[tuple[str, str, int], str] = field(default_factory=dict)
    tries: int = 0
    entries: int = 0

    def read(self, variants: Mapping[Any, Any]) -> None:
        """Read every variant (until a bound is reached)."""
        for vkey, variant in variants.items():
            if self.tries > MAX_TRIES:
                break
            if isinstance(variant, Mapping):
                self._variant(vkey, variant)

    def _variant(self, vkey: Any, variant: Mapping[str, Any]) -> None:
        out, vbase = self.ctx.out, ptr("variants", vkey)
        for other in sorted(set(variant) - _VARIANT_KEYS, key=str):
            out.diagnostics.append(
                no_equivalent(
                    Origin.of(self.doc, f"{vbase}/{escape_pointer(other)}", key=True),
                    f"variant field {excerpt(other)} has no aimc equivalent; not imported",
                )
            )
        precision = PRECISIONS.get(str(variant.get("precision")))
        if precision is None:
            out.diagnostics.append(
                no_equivalent(
                    Origin.of(self.doc, f"{vbase}/precision"),
                    f"precision {excerpt(variant.get('precision'))} of variant {vkey!r} has no "
                    "aimc equivalent; variant not imported",
                )
            )
            return
        repo = variant.get("model_id") or self.model_id
        if not isinstance(repo, str) or not MODEL_ID.match(repo):
            out.diagnostics.append(
                Origin.of(self.doc, f"{vbase}/model_id").diagnostic(
                    f"{excerpt(repo)} is not a model id", rule="interop/format"
                )
            )
            return
        claim = variant.get("vram_minimum_gb")
        if isinstance(claim, (int, float)) and not isinstance(claim, bool):
            where = Origin.of(self.doc, f"{vbase}/vram_minimum_gb")
            out.claims.append((self.model_id, precision, float(claim), where))
        own_weights = self._weights(precision, repo, "model_id" in variant, vbase)
        # The site applies a variant's extra args and env to every variant but 'default'.
        layer: tuple[Args, Env] = (
            (({}, {}, {}), ({}, {}))
            if vkey == "default"
            else (
                self.ctx.args(variant.get("extra_args"), self.doc, f"{vbase}/extra_args"),
                self.ctx.env(variant.get("extra_env"), self.doc, f"{vbase}/extra_env"),
            )
        )
        self._combinations(vkey, variant, precision, layer, own_weights)

    def _weights(
        self, precision: str, repo: str, own_repo: bool, vbase: str
    ) -> dict[str, dict[str, Any]] | None:
        """The recipe's weights of ``precision`` when it has none yet; the variant's own
        (returned) when its repo differs from those."""
        entry = {"repo": repo}
        if precision not in self.weights:
            self.weights[precision] = entry
            self.result.origins[f"/weights/{precision}"] = Origin.of(
                self.doc, f"{vbase}/model_id" if own_repo else "/model/model_id"
            )
        elif self.weights[precision] != entry:
            return {precision: entry}
        return None

    def _combinations(
        self,
        vkey: Any,
        variant: Mapping[str, Any],
        precision: str,
        layer: tuple[Args, Env],
        own_weights: dict[str, dict[str, Any]] | None,
    ) -> None:
        """The variant on each GPU with each strategy (until a bound is reached)."""
        for hw_id, where_hw in self.hardware:
            for strategy in self.strategies:
                self.tries += 1
                if (
                    self.tries > MAX_TRIES
                    or len(self.configurations) >= MAX_CONFIGURATIONS
                    or self.entries >= MAX_ENTRIES
                ):
                    self._stop(vkey)
                    break
                conf, origins = configuration(
                    self.doc,
                    self.ctx,
                    hw_id,
                    where_hw,
                    strategy,
                    str(vkey),
                    variant,
                    precision,
                    layer,
                )
                if conf is not None:
                    self._add(conf, origins, f"variant {vkey!r} with {strategy}", own_weights)
            if self.tries > MAX_TRIES:
                break

    def _stop(self, vkey: Any) -> None:
        """A bound is reached: no more tries (reported once, at the variant)."""
        self.tries = MAX_TRIES + 1
        self.ctx.out.diagnostics.append(
            Origin.of(self.doc, ptr("variants", vkey), key=True).diagnostic(
                "more variant x GPU x strategy combinations than aimc reads (at "
                f"most {MAX_TRIES} tried, {MAX_CONFIGURATIONS} configurations, "
                f"{MAX_ENTRIES} args and env in all); from here on not imported",
                severity="warning",
                rule=LIMIT,
            )
        )

    def _add(
        self,
        conf: dict[str, Any],
        origins: dict[str, Origin],
        what: str,
        own_weights: dict[str, dict[str, Any]] | None,
    ) -> None:
        """Keep ``conf`` (``what``: its variant and strategy) unless an earlier one serves
        its GPU, precision and GPU count (reported)."""
        slot = (conf["hardware"][0], conf["precision"][0], conf["gpus"][0])
        if slot in self.seen:
            self.ctx.out.diagnostics.append(
                no_equivalent(
                    origins[""],
                    f"{what} on {slot[0]} ({slot[2]} GPU(s)) "
                    f"matches what {self.seen[slot]} already serves; not imported",
                )
            )
            return
        self.seen[slot] = what
        if own_weights:
            conf["weights"] = own_weights
        self.entries += len(conf.get("args", ())) + len(conf.get("env", ()))
        self.configurations.append((conf, origins))


def configuration(
    doc: Document,
    ctx: Context,
    hw_id: str,
    where_hw: Origin,
    strategy: str,
    vkey: str,
    variant: Mapping[str, Any],
    precision: str,
    variant_layer: tuple[Args, Env],
) -> tuple[dict[str, Any] | None, dict[str, Origin]]:
    """One configuration: ``variant`` on ``hw_id`` with ``strategy``, its args and env
    layered (the strategy's, the variant's, the hardware overrides')."""
    entry = ctx.taxonomy[hw_id]
    vbase = ptr("variants", vkey)
    tp, tp_where = tensor_parallel(doc, hw_id, where_hw, strategy, vkey, variant, entry)
    if not isinstance(tp, int) or isinstance(tp, bool) or not 1 <= tp <= 64:
        ctx.out.diagnostics.append(
            tp_where.diagnostic(f"tp {excerpt(tp)} is not a GPU count", rule="interop/format")
        )
        return None, {}
    conf: dict[str, Any] = {
        "id": config_id(f"{vkey}-{strategy.replace('single_node_', '')}"),
        "hardware": [hw_name(hw_id)],
        "precision": [precision],
        "gpus": [tp],
    }
    precision_at = Origin.of(doc, f"{vbase}/precision")
    origins: dict[str, Origin] = {
        "": Origin.of(doc, vbase, key=True),
        "/hardware/0": where_hw,
        "/gpus": tp_where,
        "/gpus/0": tp_where,
        "/precision": precision_at,
        "/precision/0": precision_at,
    }
    layers: list[tuple[Args, Env]] = []
    strat = ctx.strategies.get(strategy)
    if strat is not None:
        sdata, sdoc = strat
        layers.append(ctx.layer(sdata, sdoc, "", "vllm_args", "env"))
    layers.append(variant_layer)
    layers += _override_layers(doc, ctx, hw_id, variant, vbase)
    _apply_layers(ctx, conf, origins, layers)
    return conf, origins


def _override_layers(
    doc: Document, ctx: Context, hw_id: str, variant: Mapping[str, Any], vbase: str
) -> list[tuple[Args, Env]]:
    """The args and env of the hardware overrides for ``hw_id``: the model file's, then
    the variant's (their other keys reported)."""
    entry = ctx.taxonomy[hw_id]
    layers = []
    for overrides, base in (
        (doc.data.get("hardware_overrides"), "/hardware_overrides"),
        (variant.get("hardware_overrides"), f"{vbase}/hardware_overrides"),
    ):
        found = keyed(overrides, hw_id, entry)
        if found is None or not isinstance(found[0], Mapping):
            continue
        hbase = f"{base}/{escape_pointer(found[1])}"
        for other in sorted(set(found[0]) - {"extra_args", "extra_env"}):
            ctx.out.diagnostics.append(
                no_equivalent(
                    Origin.of(doc, f"{hbase}/{escape_pointer(other)}", key=True),
                    f"hardware override {other!r} has no aimc equivalent; not imported",
                )
            )
        layers.append(ctx.layer(found[0], doc, hbase, "extra_args", "extra_env"))
    return layers


def _apply_layers(
    ctx: Context,
    conf: dict[str, Any],
    origins: dict[str, Origin],
    layers: list[tuple[Args, Env]],
) -> None:
    """``layers``' args and env into ``conf``, a later flag or variable winning; their
    neutral fields as fields."""
    args: dict[str, Any] = {}
    env: dict[str, str] = {}
    for (largs, lorigins, lneutral), (lenv, lenv_origins) in layers:
        args.update(largs)
        env.update(lenv)
        for name, where in lorigins.items():
            origins[f"/args/{escape_pointer(name)}"] = where
        for name, where in lenv_origins.items():
            origins[f"/env/{escape_pointer(name)}"] = where
        set_neutral(ctx, lneutral, conf, origins, "/")
    if args:
        conf["args"] = args
    if env:
        conf["env"] = env


def merge(
    configurations: list[tuple[dict[str, Any], dict[str, Origin]]],
) -> list[tuple[dict[str, Any], dict[str, Origin]]]:
    """Configurations that differ only in hardware, as one (their hardware listed); ids
    made unique."""
    merged: list[tuple[dict[str, Any], dict[str, Origin]]] = []
    index: dict[str, int] = {}
    for conf, origins in configurations:
        rest = {k: v for k, v in conf.items() if k != "hardware"}
        key = json.dumps(rest, sort_keys=True, default=str)
        if key in index:
            target, target_origins = merged[index[key]]
            target_origins[f"/hardware/{len(target['hardware'])}"] = origins["/hardware/0"]
            target["hardware"].append(conf["hardware"][0])
            continue
        index[key] = len(merged)
        merged.append((conf, dict(origins)))
    counts: dict[str, int] = {}
    for conf, _origins in merged:
        counts[conf["id"]] = counts.get(conf["id"], 0) + 1
    for conf, _origins in merged:
        if counts[conf["id"]] > 1:  # the same variant and strategy, other GPU counts
            conf["id"] = config_id(f"{conf['id']}-{conf['hardware'][0]}")
    return merged
