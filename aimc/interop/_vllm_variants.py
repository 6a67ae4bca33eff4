"""vLLM Recipes: a model file's variants as aimc configurations.

Each variant of a model file on each GPU the site offers it on with each single-node
strategy is one configuration (:class:`Variants`, :func:`configuration`): the variant's
precision and repo (served under that repo, as ``vllm serve <repo>`` does), the tensor
parallel size the site would use, and the args and env layered as the site's command
builder does (strategy, variant, hardware overrides; a later flag wins). The flags aimc
derives from a recipe field are read into it (:func:`recipe_fields`): ``--trust-remote-code``
into ``model.trust_remote_code``, ``--quantization`` and ``--dtype auto`` into the weights.
One configuration per (GPU, precision, GPU count); those that differ only in GPU are merged
into one (:func:`merge`). Bounded: at most :data:`MAX_TRIES` combinations,
``MAX_CONFIGURATIONS`` configurations and ``MAX_ENTRIES`` args and env per model file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aimc.core.diagnostics import excerpt
from aimc.core.loader import Document, escape_pointer
from aimc.interop._args import neutral_value, weights_field
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
from aimc.interop._vllm_layers import site_layers
from aimc.interop._vllm_site import (
    RECIPE_FIELDS,
    Args,
    Context,
    Env,
    as_mapping,
    hw_name,
    tensor_parallel,
)

__all__ = [
    "MAX_TRIES",
    "PRECISIONS",
    "Conf",
    "Fields",
    "Variants",
    "configuration",
    "merge",
    "recipe_fields",
    "set_neutral",
]

#: vLLM Recipes precision -> aimc precision (nvfp4, mxfp8 and the rest have none).
PRECISIONS = {
    "fp32": "fp32",
    "bf16": "bf16",
    "fp16": "fp16",
    "fp8": "fp8",
    "int8": "int8",
    "int4": "int4",
    "mxfp4": "mxfp4",
    "nvfp4": "nvfp4",
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
    "supported_hardware",
    "precision_hardware",
}
#: Most variant x GPU x strategy combinations one model file is tried for.
MAX_TRIES = 4 * MAX_CONFIGURATIONS

#: A configuration and the origin of each of its values (pointers relative to it).
Conf = tuple[dict[str, Any], dict[str, Origin]]
#: Recipe fields a layer's flags set (:data:`RECIPE_FIELDS`): field -> (value, origin).
Fields = dict[str, tuple[Any, Origin]]


def set_neutral(
    ctx: Context,
    neutral: dict[str, tuple[Any, Origin]],
    into: dict[str, Any],
    origins: dict[str, Origin],
    prefix: str,
) -> None:
    """The neutral fields a layer's args set (``--max-model-len``: ``context_length``) into
    ``into``, their origins at ``prefix`` + field; the GPU count is the strategy's (a
    ``--tensor-parallel-size`` is reported and not imported); the recipe's fields are
    :func:`recipe_fields`'."""
    for field_name, (raw, where) in neutral.items():
        if field_name in RECIPE_FIELDS:
            continue
        if field_name == "gpus":
            ctx.out.diagnostics.append(
                no_equivalent(
                    where, "--tensor-parallel-size is set from the strategy; not imported"
                )
            )
            continue
        value = neutral_value(field_name, raw)
        if value is None:
            ctx.out.diagnostics.append(
                no_equivalent(where, f"{excerpt(raw)} has no aimc {field_name}; not imported")
            )
            continue
        into[field_name] = value
        origins[f"{prefix}{field_name}"] = where


def recipe_fields(neutral: Mapping[str, tuple[Any, Origin]]) -> Fields:
    """The recipe fields (:data:`RECIPE_FIELDS`) a layer's args set."""
    return {k: v for k, v in neutral.items() if k in RECIPE_FIELDS}


def _allowed(variant: Mapping[str, Any], hw_id: str, entry: Mapping[str, Any]) -> bool:
    """Whether the site offers ``variant`` on taxonomy GPU ``hw_id``
    (``command-synthesis.js``: ``isVariantHardwareSupported``, ``isPrecisionCompatible``
    with the variant's own ``precision_hardware``)."""
    supported = variant.get("supported_hardware")
    if isinstance(supported, list) and supported and hw_id not in supported:
        return False
    constraint = as_mapping(variant.get("precision_hardware"))
    if "brand" in constraint and entry.get("brand") != constraint["brand"]:
        return False
    if "generation" in constraint:
        generations = entry.get("generation")
        generations = generations if isinstance(generations, list) else [generations]
        return constraint["generation"] in generations
    return True


@dataclass
class Variants:
    """The configurations of one model file as its variants are read: each variant on
    each GPU it is offered on with each single-node strategy, one per (GPU, precision, GPU
    count), within the bounds (:data:`MAX_TRIES`, ``MAX_CONFIGURATIONS``,
    ``MAX_ENTRIES``); the weights of each precision (the first configuration's; another
    checkpoint, quantization or dtype is the configuration's own); why a variant gave
    nothing (:attr:`why`)."""

    doc: Document
    ctx: Context
    model_id: str
    result: RecipeOut
    hardware: list[tuple[str, Origin]]
    strategies: list[str]
    base: Fields = field(default_factory=dict)
    weights: dict[str, dict[str, Any]] = field(default_factory=dict)
    configurations: list[Conf] = field(default_factory=list)
    seen: dict[tuple[str, str, int], str] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)
    tries: int = 0
    entries: int = 0

    def read(self, variants: Mapping[Any, Any]) -> None:
        """Read every variant (until a bound is reached)."""
        for vkey, variant in variants.items():
            if self.tries > MAX_TRIES:
                break
            if isinstance(variant, Mapping):
                before = len(self.configurations)
                self._variant(vkey, variant)
                if len(self.configurations) == before and str(vkey) not in self.why:
                    self.why[str(vkey)] = self._nothing(variant)
            else:
                self.why[str(vkey)] = "not a mapping"

    def _nothing(self, variant: Mapping[str, Any]) -> str:
        """Why a variant that converted gave no configuration."""
        if not self.hardware:
            return "no GPU the site offers it on is one aimc targets"
        if not self.strategies:
            return "no single-node strategy"
        if not any(_allowed(variant, h, self.ctx.taxonomy[h]) for h, _ in self.hardware):
            return "its supported_hardware/precision_hardware leave no GPU aimc targets"
        return "every GPU and GPU count is served by an earlier variant"

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
            why = f"precision {excerpt(variant.get('precision'))} has no aimc equivalent"
            self.why[str(vkey)] = why
            out.diagnostics.append(
                no_equivalent(
                    Origin.of(self.doc, f"{vbase}/precision"),
                    f"{why} (variant {vkey!r}); variant not imported",
                )
            )
            return
        repo = variant.get("model_id") or self.model_id
        if not isinstance(repo, str) or not MODEL_ID.match(repo):
            self.why[str(vkey)] = f"{excerpt(repo)} is not a model id"
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
        # The site's resolveCommand applies every variant's extra args and env, 'default'
        # included (only resolveOmniCommand, for omni models, skips the default's).
        layer = self.ctx.layer(variant, self.doc, vbase, "extra_args", "extra_env")
        at = Origin.of(
            self.doc, f"{vbase}/model_id" if "model_id" in variant else "/model/model_id"
        )
        self._combinations(vkey, variant, precision, layer, (repo, at))

    def _combinations(
        self,
        vkey: Any,
        variant: Mapping[str, Any],
        precision: str,
        layer: tuple[Args, Env],
        repo: tuple[str, Origin],
    ) -> None:
        """The variant on each GPU with each strategy (until a bound is reached)."""
        for hw_id, where_hw in self.hardware:
            if not _allowed(variant, hw_id, self.ctx.taxonomy[hw_id]):
                continue
            for strategy in self.strategies:
                self.tries += 1
                if (
                    self.tries > MAX_TRIES
                    or len(self.configurations) >= MAX_CONFIGURATIONS
                    or self.entries >= MAX_ENTRIES
                ):
                    self._stop(vkey)
                    break
                conf, origins, fields = configuration(
                    self.doc,
                    self.ctx,
                    (hw_id, where_hw),
                    strategy,
                    str(vkey),
                    variant,
                    precision,
                    layer,
                )
                if conf is not None:
                    what = f"variant {vkey!r} with {strategy}"
                    self._add(conf, origins, what, repo, {**self.base, **fields})
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

    def _entry(
        self, precision: str, repo: tuple[str, Origin], fields: Fields
    ) -> tuple[dict[str, Any], dict[str, Origin]]:
        """The weights entry of a configuration (its repo, the ``--quantization`` and
        ``--dtype auto`` its flags set) and the origins of its values (relative)."""
        entry: dict[str, Any] = {"repo": repo[0]}
        origins = {"": repo[1]}
        for name in ("quantization", "dtype"):
            if name not in fields:
                continue
            value, where = fields[name]
            found = weights_field(name, value, precision)
            if isinstance(found, str):
                self.ctx.out.diagnostics.append(no_equivalent(where, found))
            elif found is not None:
                entry[found[0]], origins[f"/{found[0]}"] = found[1], where
        return entry, origins

    def _add(
        self,
        conf: dict[str, Any],
        origins: dict[str, Origin],
        what: str,
        repo: tuple[str, Origin],
        fields: Fields,
    ) -> None:
        """Keep ``conf`` (``what``: its variant and strategy) unless an earlier one serves
        its GPU, precision and GPU count (reported); its weights are the recipe's of its
        precision (the first kept configuration's) or its own; a checkpoint other than the
        model's is served under its repo id."""
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
        precision = conf["precision"][0]
        entry, entry_origins = self._entry(precision, repo, fields)
        if precision not in self.weights:
            self.weights[precision] = entry
            for pointer, where in entry_origins.items():
                self.result.origins[f"/weights/{precision}{pointer}"] = where
        elif self.weights[precision] != entry:
            conf["weights"] = {precision: entry}
            for pointer, where in entry_origins.items():
                origins[f"/weights/{precision}{pointer}"] = where
        if repo[0] != self.model_id:  # `vllm serve <repo>` serves it under the repo id
            conf["served_model_name"], origins["/served_model_name"] = repo
        if fields.get("trust_remote_code", (False,))[0] is True:
            self.result.data["model"]["trust_remote_code"] = True
            self.result.origins["/model/trust_remote_code"] = fields["trust_remote_code"][1]
        self.entries += len(conf.get("args", ())) + len(conf.get("env", ()))
        self.configurations.append((conf, origins))


def configuration(
    doc: Document,
    ctx: Context,
    hw: tuple[str, Origin],
    strategy: str,
    vkey: str,
    variant: Mapping[str, Any],
    precision: str,
    variant_layer: tuple[Args, Env],
) -> tuple[dict[str, Any] | None, dict[str, Origin], Fields]:
    """One configuration: ``variant`` on taxonomy GPU ``hw`` (id, origin) with
    ``strategy``, its args and env layered (the strategy's, the variant's, the hardware
    overrides'), and the recipe fields those set."""
    hw_id, where_hw = hw
    entry = ctx.taxonomy[hw_id]
    vbase = ptr("variants", vkey)
    tp, tp_where = tensor_parallel(doc, hw_id, where_hw, strategy, vkey, variant, entry)
    if not isinstance(tp, int) or isinstance(tp, bool) or not 1 <= tp <= 64:
        ctx.out.diagnostics.append(
            tp_where.diagnostic(f"tp {excerpt(tp)} is not a GPU count", rule="interop/format")
        )
        return None, {}, {}
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
    strat = ctx.strategies.get(strategy)
    strategy_layer = (
        None if strat is None else ctx.layer(strat[0], strat[1], "", "vllm_args", "env")
    )
    layers = site_layers(doc, ctx, (hw_id, strategy), variant, vbase, variant_layer, strategy_layer)
    return conf, origins, _apply_layers(ctx, conf, origins, layers)


def _apply_layers(
    ctx: Context,
    conf: dict[str, Any],
    origins: dict[str, Origin],
    layers: list[tuple[Args, Env]],
) -> Fields:
    """``layers``' args and env into ``conf``, a later flag or variable winning; their
    neutral fields as fields; the recipe fields they set (a later one winning)."""
    args: dict[str, Any] = {}
    env: dict[str, str] = {}
    fields: Fields = {}
    for (largs, lorigins, lneutral), (lenv, lenv_origins) in layers:
        args.update(largs)
        env.update(lenv)
        for name, where in lorigins.items():
            origins[f"/args/{escape_pointer(name)}"] = where
        for name, where in lenv_origins.items():
            origins[f"/env/{escape_pointer(name)}"] = where
        set_neutral(ctx, lneutral, conf, origins, "/")
        fields.update(recipe_fields(lneutral))
    if args:
        conf["args"] = args
    if env:
        conf["env"] = env
    return fields


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
