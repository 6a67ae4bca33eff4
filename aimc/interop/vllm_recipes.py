"""vLLM Recipes (vllm-project/recipes) -> aimc recipes and hardware profiles.

Takes the loaded files of a checkout (``models/<org>/<model>.yaml``, ``strategies/*.yaml``,
``taxonomy.yaml``, ``platforms.yaml``) and hands on a
:class:`~aimc.interop._common.Conversion`: one recipe per model file, one configuration per
variant x GPU x single-node strategy (merged when they differ only in GPU), one hardware
profile per taxonomy GPU used, and a diagnostic at the original line for everything that
has no aimc equivalent. Args and env are layered as the recipes site's command builder
does (strategy, base, variant, hardware overrides; a later flag wins). ``vram_minimum_gb``
claims are collected for :mod:`aimc.interop._check`. The mapping is in ``docs/interop.md``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aimc import vendors
from aimc.diagnostics import Diagnostic, excerpt
from aimc.interop._common import (
    AIMC_OWNED,
    LIMIT,
    MAX_CONFIGURATIONS,
    MAX_ENTRIES,
    MODEL_ID,
    NEUTRAL,
    Collected,
    Conversion,
    Facts,
    Origin,
    RecipeOut,
    args_from_list,
    config_id,
    env_items,
    hardware_from_shipped,
    is_secret,
    no_equivalent,
    ptr,
    secret,
)
from aimc.loader import Document, escape_pointer
from aimc.safety import holds_secret

__all__ = ["PATTERNS", "PRECISIONS", "convert", "shared"]

PATTERNS = ("models/**/*.yaml", "strategies/*.yaml", "taxonomy.yaml", "platforms.yaml")

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
#: Strategies aimc expresses: tensor parallel over one node's GPUs (plus the strategy's
#: own vllm_args, e.g. --enable-expert-parallel).
_SINGLE_NODE = ("single_node_tp", "single_node_tep")
#: Taxonomy generation -> architecture, for GPUs aimc ships no profile of (their
#: precisions, container and image: :mod:`aimc.vendors`).
_GENERATIONS = {
    "ampere": "sm80",
    "ada": "sm89",
    "hopper": "sm90",
    "blackwell": "sm100",
    "amd": "gfx942",
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
#: Flags aimc derives from the recipe and never takes from args.
_DERIVED = ("dtype", "quantization", "trust-remote-code")

#: Most variant x GPU x strategy combinations one model file is tried for.
_MAX_TRIES = 4 * MAX_CONFIGURATIONS

_Args = tuple[dict[str, Any], dict[str, Origin], dict[str, tuple[Any, Origin]]]
_Env = tuple[dict[str, str], dict[str, Origin]]


def _hw_name(taxonomy_id: str) -> str:
    return taxonomy_id.lower().replace("_", "-")


def _keyed(mapping: Any, hw_id: str, profile: Mapping[str, Any]) -> tuple[Any, str] | None:
    """A hardware-keyed map's entry for ``hw_id``: exact id > generation > brand >
    ``default`` (the recipes site's order); (value, key)."""
    if not isinstance(mapping, Mapping):
        return None
    generation = profile.get("generation")
    if isinstance(generation, list):
        generation = generation[0] if generation else None
    for key in (hw_id, generation, str(profile.get("brand", "")).lower(), "default"):
        if key in mapping:
            return mapping[key], str(key)
    return None


def shared(path: str) -> bool:
    """Whether the file at display ``path`` is one every model file refers to (taxonomy,
    strategy, platforms): read before the model files."""
    parts = path.replace("\\", "/").split("/")
    return parts[-1] in ("taxonomy.yaml", "platforms.yaml") or parts[-2:-1] == ["strategies"]


class _Context:
    """The shared files: taxonomy hardware and strategies, with their documents; the
    command lines and env already read (each file's problems reported once)."""

    def __init__(self, out: Conversion):
        self.out = out
        self.taxonomy: dict[str, Any] = {}
        self.taxonomy_doc: Document | None = None
        self.strategies: dict[str, tuple[Mapping[str, Any], Document]] = {}
        self._read: dict[tuple[str, str], Any] = {}
        self._default_hardware: list[tuple[str, Origin]] | None = None

    def add(self, doc: Document) -> None:
        """Take ``doc`` if it is a shared file."""
        parts = doc.path.replace("\\", "/").split("/")
        if parts[-1] == "taxonomy.yaml" and isinstance(doc.data, Mapping):
            profiles = doc.data.get("hardware_profiles")
            self.taxonomy = dict(profiles) if isinstance(profiles, Mapping) else {}
            self.taxonomy_doc = doc
            self._default_hardware = None
        elif parts[-2:-1] == ["strategies"] and isinstance(doc.data, Mapping):
            key = str(doc.data.get("name") or parts[-1].rsplit(".", 1)[0])
            self.strategies[key] = (doc.data, doc)
        elif parts[-1] == "platforms.yaml":
            self.out.diagnostics.append(
                no_equivalent(
                    Origin.of(doc, "/platforms"),
                    "third-party deploy platforms have no aimc equivalent; not imported",
                )
            )

    def forget(self, doc: Document) -> None:
        """Let go of what was read from model file ``doc``."""
        self._read = {k: v for k, v in self._read.items() if k[0] != doc.path}

    def default_hardware(self) -> list[tuple[str, Origin]]:
        """Every taxonomy GPU the site offers by default, read once."""
        if self._default_hardware is None:
            tdoc = self.taxonomy_doc
            names = [
                (str(k), Origin.of(tdoc, ptr("hardware_profiles", k), key=True))
                for k, v in self.taxonomy.items()
                if tdoc is not None and isinstance(v, Mapping) and not v.get("restricted")
            ]
            self._default_hardware = self.usable(names)
        return self._default_hardware

    def usable(self, names: list[tuple[str, Origin]]) -> list[tuple[str, Origin]]:
        """Those of ``names`` (taxonomy id, origin) aimc can target; the rest reported."""
        found = []
        for hw_id, where in names:
            entry = self.taxonomy.get(hw_id)
            why = "not in taxonomy.yaml" if entry is None else _gpu_problem(entry)
            if why is not None:
                self.out.diagnostics.append(
                    no_equivalent(where, f"hardware {hw_id!r}: {why}; not imported")
                )
                continue
            found.append((hw_id, where))
        return found

    def layer(
        self, data: Mapping[str, Any], doc: Document, base: str, args: str, env: str
    ) -> tuple[_Args, _Env]:
        """The args and env of ``data`` (a strategy, variant or hardware override) at
        ``base`` of ``doc``, read once per file."""
        key = (doc.path, base)
        if key not in self._read:
            self._read[key] = (
                self.args(data.get(args), doc, f"{base}/{args}"),
                self.env(data.get(env), doc, f"{base}/{env}"),
            )
        found: tuple[_Args, _Env] = self._read[key]
        return found

    def args(self, words: Any, doc: Document, base: str) -> _Args:
        """A command-line list as aimc args (last wins), their origins, and the neutral
        fields they set (``--max-model-len`` and the like)."""
        from aimc.backends import vocabulary

        parsed, problems = args_from_list(words, doc, base)
        self.out.diagnostics += problems
        flags = vocabulary("vllm").flags
        args: dict[str, Any] = {}
        origins: dict[str, Origin] = {}
        neutral: dict[str, tuple[Any, Origin]] = {}
        for name, value, where in parsed:
            if (
                name.startswith("no-")
                and value is True
                and flags.get(name[3:], {}).get("negatable")
            ):
                name, value = name[3:], False
            if is_secret(name) or holds_secret(value):
                self.out.diagnostics.append(secret(name, where, value))
            elif name in NEUTRAL:
                neutral[NEUTRAL[name]] = (value, where)
            elif name in AIMC_OWNED or name in _DERIVED:
                self.out.diagnostics.append(
                    no_equivalent(where, f"'--{name}' is set by aimc from the recipe; not imported")
                )
            else:
                args[name], origins[name] = value, where
        return args, origins, neutral

    def env(self, env: Any, doc: Document, base: str) -> _Env:
        values, origins, problems = env_items(env, doc, base)
        self.out.diagnostics += problems
        return values, origins


def convert(
    docs: Iterable[Document], catalog: Any, diagnostics: Collected | None = None
) -> Conversion:
    """Convert the loaded files of a vLLM Recipes checkout (see :data:`PATTERNS`), one
    model file at a time.

    Args:
        docs: Model, strategy, taxonomy and platform files, loaded with positions; the
            :func:`shared` ones first (a sequence is put in that order here).
        catalog: Where model facts (layers, heads, parameters) and GPUs are looked up.
        diagnostics: Where the problems go (a new :class:`Collected` when not given).
    """
    out = Conversion(diagnostics=Collected() if diagnostics is None else diagnostics)
    ctx = _Context(out)
    facts_for = Facts(catalog)
    if isinstance(docs, Sequence):
        docs = [d for d in docs if shared(d.path)] + [d for d in docs if not shared(d.path)]
    for doc in docs:
        out.files.append(doc.path)
        if shared(doc.path):
            ctx.add(doc)
        parts = doc.path.replace("\\", "/").split("/")
        if "models" not in parts[:-1] or not isinstance(doc.data, Mapping):
            continue
        claims = len(out.claims)
        recipe = _model(doc, ctx, facts_for)
        ctx.forget(doc)
        if recipe is None:
            del out.claims[claims:]  # only a converted recipe's claims are checked
            continue
        model_id = recipe.data["model"]["id"]
        if model_id in out.recipes:
            del out.claims[claims:]
            out.diagnostics.append(
                Origin.of(doc, "/model/model_id").diagnostic(
                    f"{model_id!r} is converted from another file too", rule="lint/duplicate-id"
                )
            )
            continue
        out.recipes[model_id] = recipe
    if ctx.taxonomy_doc is None:
        out.diagnostics.append(
            Diagnostic(
                "taxonomy.yaml",
                0,
                0,
                "no taxonomy.yaml: no GPUs to map recipes onto",
                rule="interop/format",
            )
        )
    used = {
        h for r in out.recipes.values() for c in r.data["configurations"] for h in c["hardware"]
    }
    for name in sorted(used):
        out.hardware[name] = _profile(ctx, name, catalog)
    return out


def _profile(ctx: _Context, name: str, catalog: Any) -> tuple[dict[str, Any], Origin]:
    """The aimc profile of taxonomy GPU ``name`` (aimc's own facts when it has them)."""
    taxonomy_id = next(k for k in ctx.taxonomy if _hw_name(str(k)) == name)
    entry = ctx.taxonomy[taxonomy_id]
    assert ctx.taxonomy_doc is not None
    where = Origin.of(ctx.taxonomy_doc, ptr("hardware_profiles", taxonomy_id), key=True)
    description = str(entry.get("description") or entry.get("display_name") or name)
    shipped = hardware_from_shipped(name, description, catalog)
    if shipped is not None:
        return shipped, where
    vendor = str(entry.get("brand", "")).lower()
    maker = vendors.vendor(vendor)  # _gpu_problem let only a GPU vendor through
    arch = _GENERATIONS[str(entry.get("generation"))]
    count = int(entry["gpu_count"])
    data: dict[str, Any] = {
        "apiVersion": "aimc/v1",
        "kind": "HardwareProfile",
        "name": name,
        "description": description[:200],
        "vendor": vendor,
        "architecture": arch,
        # vram_gb is the node's total; aimc counts one GPU's memory.
        "memory_gib": round(float(entry["vram_gb"]) / count, 2),
        "gpus_per_node": count,
        "precisions": maker.precisions(arch or ""),
        **copy.deepcopy(dict(maker.defaults)),
    }
    return data, where


def _gpu_problem(entry: Any) -> str | None:
    """Why a taxonomy entry cannot be an aimc hardware profile, or None."""
    if not isinstance(entry, Mapping):
        return "not a mapping"
    vendor = str(entry.get("brand", "")).lower()
    if vendor not in vendors.gpu_vendors():
        return f"{entry.get('brand')} {entry.get('generation')} is not a GPU aimc targets"
    if str(entry.get("generation")) not in _GENERATIONS:
        return f"generation {excerpt(entry.get('generation'))} is unknown to aimc"
    count, vram = entry.get("gpu_count"), entry.get("vram_gb")
    if (
        not isinstance(count, int)
        or isinstance(count, bool)
        or not 1 <= count <= 64
        or not isinstance(vram, (int, float))
        or vram <= 0
    ):
        return "gpu_count and vram_gb must be positive numbers"
    if entry.get("multi_node"):
        return "multi-node profiles have no aimc equivalent"
    return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _model(doc: Document, ctx: _Context, facts_for: Facts) -> RecipeOut | None:
    out = ctx.out
    data = doc.data
    model = _mapping(data.get("model"))
    model_id = model.get("model_id")
    if not isinstance(model_id, str) or not MODEL_ID.match(model_id):
        out.diagnostics.append(
            Origin.of(doc, "/model/model_id").diagnostic(
                f"{excerpt(model_id)} is not a model id (organization/name)",
                rule="interop/format",
            )
        )
        return None
    known = facts_for(model_id)
    if known is None:
        out.diagnostics.append(
            Origin.of(doc, "/model/model_id").diagnostic(
                f"aimc knows no facts (layers, heads, parameters) for {model_id!r}; not imported",
                rule="interop/facts",
                severity="warning",
                hint="add a recipe for it (model.facts from config.json) to a --recipes "
                "folder, then import again",
            )
        )
        return None
    facts, architecture = known
    meta = _mapping(data.get("meta"))
    recipe: dict[str, Any] = {"apiVersion": "aimc/v1", "kind": "Recipe", "model": {"id": model_id}}
    if meta.get("description"):
        recipe["model"]["description"] = str(meta["description"])[:200]
    if architecture:
        recipe["model"]["architecture"] = architecture
    recipe["model"]["facts"] = facts
    result = RecipeOut(
        recipe, {"": Origin.of(doc, ""), "/model/id": Origin.of(doc, "/model/model_id")}
    )
    defaults: dict[str, Any] = {"backend": "vllm", "context_length": facts["max_context"]}
    base_args, base_origins, base_neutral = ctx.args(
        model.get("base_args"), doc, "/model/base_args"
    )
    for field_name, (value, where) in base_neutral.items():
        if field_name == "gpus":
            out.diagnostics.append(
                no_equivalent(
                    where, "--tensor-parallel-size is set from the strategy; not imported"
                )
            )
            continue
        defaults[field_name] = value
        result.origins[f"/defaults/{field_name}"] = where
    if base_args:
        defaults["args"] = base_args
        for name, where in base_origins.items():
            result.origins[f"/defaults/args/{escape_pointer(name)}"] = where
    env, env_origins = ctx.env(model.get("base_env"), doc, "/model/base_env")
    if env:
        defaults["env"] = env
        for name, where in env_origins.items():
            result.origins[f"/defaults/env/{escape_pointer(name)}"] = where
    for key, what in (
        ("features", "optional features (chosen per deployment)"),
        ("opt_in_features", "opt-in features"),
        ("kv_offload_support", "KV-cache offloading"),
    ):
        if data.get(key):
            out.diagnostics.append(
                no_equivalent(
                    Origin.of(doc, f"/{key}", key=True),
                    f"{what} have no aimc equivalent; not imported",
                    "add the args of the ones you use with --set or --config",
                )
            )
    hardware = _hardware_list(doc, meta, ctx)
    strategies = data.get("compatible_strategies") or ["single_node_tp"]
    strategies = strategies if isinstance(strategies, list) else []
    for i, name in enumerate(strategies):
        if name not in _SINGLE_NODE:
            out.diagnostics.append(
                no_equivalent(
                    Origin.of(doc, ptr("compatible_strategies", i)),
                    f"strategy {excerpt(name)} has no aimc equivalent yet; not imported",
                    "aimc imports single_node_tp and single_node_tep",
                )
            )
    single = [s for s in strategies if s in _SINGLE_NODE]
    weights: dict[str, dict[str, Any]] = {}
    configurations: list[tuple[dict[str, Any], dict[str, Origin]]] = []
    seen: dict[tuple[str, str, int], str] = {}
    tries = entries = 0
    for vkey, variant in _mapping(data.get("variants")).items():
        if tries > _MAX_TRIES:
            break
        vbase = ptr("variants", vkey)
        if not isinstance(variant, Mapping):
            continue
        for other in sorted(set(variant) - _VARIANT_KEYS, key=str):
            out.diagnostics.append(
                no_equivalent(
                    Origin.of(doc, f"{vbase}/{escape_pointer(other)}", key=True),
                    f"variant field {excerpt(other)} has no aimc equivalent; not imported",
                )
            )
        precision = PRECISIONS.get(str(variant.get("precision")))
        if precision is None:
            out.diagnostics.append(
                no_equivalent(
                    Origin.of(doc, f"{vbase}/precision"),
                    f"precision {excerpt(variant.get('precision'))} of variant {vkey!r} has no "
                    "aimc equivalent; variant not imported",
                )
            )
            continue
        repo = variant.get("model_id") or model_id
        if not isinstance(repo, str) or not MODEL_ID.match(repo):
            out.diagnostics.append(
                Origin.of(doc, f"{vbase}/model_id").diagnostic(
                    f"{excerpt(repo)} is not a model id", rule="interop/format"
                )
            )
            continue
        claim = variant.get("vram_minimum_gb")
        if isinstance(claim, (int, float)) and not isinstance(claim, bool):
            out.claims.append(
                (model_id, precision, float(claim), Origin.of(doc, f"{vbase}/vram_minimum_gb"))
            )
        entry = {"repo": repo}
        own_weights = None
        if precision not in weights:
            weights[precision] = entry
            result.origins[f"/weights/{precision}"] = Origin.of(
                doc, f"{vbase}/model_id" if "model_id" in variant else "/model/model_id"
            )
        elif weights[precision] != entry:
            own_weights = {precision: entry}
        # The site applies a variant's extra args and env to every variant but 'default'.
        layer: tuple[_Args, _Env] = (
            (({}, {}, {}), ({}, {}))
            if vkey == "default"
            else (
                ctx.args(variant.get("extra_args"), doc, f"{vbase}/extra_args"),
                ctx.env(variant.get("extra_env"), doc, f"{vbase}/extra_env"),
            )
        )
        for hw_id, where_hw in hardware:
            for strategy in single:
                tries += 1
                if (
                    tries > _MAX_TRIES
                    or len(configurations) >= MAX_CONFIGURATIONS
                    or entries >= MAX_ENTRIES
                ):
                    tries = _MAX_TRIES + 1
                    out.diagnostics.append(
                        Origin.of(doc, vbase, key=True).diagnostic(
                            "more variant x GPU x strategy combinations than aimc reads (at "
                            f"most {_MAX_TRIES} tried, {MAX_CONFIGURATIONS} configurations, "
                            f"{MAX_ENTRIES} args and env in all); from here on not imported",
                            severity="warning",
                            rule=LIMIT,
                        )
                    )
                    break
                conf, origins = _configuration(
                    doc, ctx, hw_id, where_hw, strategy, str(vkey), variant, precision, layer
                )
                if conf is None:
                    continue
                slot = (conf["hardware"][0], precision, conf["gpus"][0])
                if slot in seen:
                    out.diagnostics.append(
                        no_equivalent(
                            Origin.of(doc, vbase, key=True),
                            f"variant {vkey!r} with {strategy} on {slot[0]} ({slot[2]} GPU(s)) "
                            f"matches what {seen[slot]} already serves; not imported",
                        )
                    )
                    continue
                seen[slot] = f"variant {vkey!r} with {strategy}"
                if own_weights:
                    conf["weights"] = own_weights
                entries += len(conf.get("args", ())) + len(conf.get("env", ()))
                configurations.append((conf, origins))
            if tries > _MAX_TRIES:
                break
    if not configurations:
        out.diagnostics.append(
            no_equivalent(
                Origin.of(doc, "/variants", key=True),
                f"no variant of {model_id!r} converts to an aimc configuration; not imported",
            )
        )
        return None
    recipe["weights"] = dict(sorted(weights.items()))
    defaults["precision"] = next((q for q in ("bf16", "fp16") if q in weights), min(weights))
    recipe["defaults"] = defaults
    recipe["configurations"] = []
    for conf, origins in _merge(configurations):
        index = len(recipe["configurations"])
        recipe["configurations"].append(conf)
        for pointer, where in origins.items():
            result.origins[f"{ptr('configurations', index)}{pointer}"] = where
    return result


def _hardware_list(
    doc: Document, meta: Mapping[str, Any], ctx: _Context
) -> list[tuple[str, Origin]]:
    """(taxonomy id, origin) of the GPUs the model is listed for that aimc can target:
    ``meta.hardware``, else every GPU the site offers by default (not ``restricted``)."""
    listed = meta.get("hardware")
    if isinstance(listed, Mapping):
        return ctx.usable(
            [(str(k), Origin.of(doc, ptr("meta", "hardware", k), key=True)) for k in listed]
        )
    return ctx.default_hardware()


def _tp(
    doc: Document,
    hw_id: str,
    where_hw: Origin,
    strategy: str,
    vkey: str,
    variant: Mapping[str, Any],
    entry: Mapping[str, Any],
) -> tuple[Any, Origin]:
    """The site's TP for single_node_tp: the variant's ``tp`` (a number or a hardware-keyed
    map), else ``strategy_overrides.single_node_tp.tp``, else 1 when ``vram_minimum_gb``
    fits one GPU, else all of the node's GPUs (which TEP always uses)."""
    count = int(entry["gpu_count"])
    vbase = ptr("variants", vkey)
    if strategy != "single_node_tp":
        return count, where_hw
    declared = variant.get("tp")
    if isinstance(declared, Mapping):
        found = _keyed(declared, hw_id, entry)
        if found is not None:
            return found[0], Origin.of(doc, f"{vbase}/tp/{escape_pointer(found[1])}")
    elif declared is not None:
        return declared, Origin.of(doc, f"{vbase}/tp")
    override = _mapping(_mapping(doc.data.get("strategy_overrides")).get(strategy))
    if isinstance(override.get("tp"), Mapping):
        found = _keyed(override["tp"], hw_id, entry)
        if found is not None:
            where = ptr("strategy_overrides", strategy, "tp", found[1])
            return found[0], Origin.of(doc, where)
    elif "tp" in override:
        return override["tp"], Origin.of(doc, ptr("strategy_overrides", strategy, "tp"))
    claim = variant.get("vram_minimum_gb")
    if isinstance(claim, (int, float)) and not isinstance(claim, bool) and claim > 0:
        tp = 1 if claim <= float(entry["vram_gb"]) / count else count
        return tp, Origin.of(doc, f"{vbase}/vram_minimum_gb")
    return count, where_hw


def _configuration(
    doc: Document,
    ctx: _Context,
    hw_id: str,
    where_hw: Origin,
    strategy: str,
    vkey: str,
    variant: Mapping[str, Any],
    precision: str,
    variant_layer: tuple[_Args, _Env],
) -> tuple[dict[str, Any] | None, dict[str, Origin]]:
    """One configuration: ``variant`` on ``hw_id`` with ``strategy``."""
    entry = ctx.taxonomy[hw_id]
    vbase = ptr("variants", vkey)
    tp, tp_where = _tp(doc, hw_id, where_hw, strategy, vkey, variant, entry)
    if not isinstance(tp, int) or isinstance(tp, bool) or not 1 <= tp <= 64:
        ctx.out.diagnostics.append(
            tp_where.diagnostic(f"tp {excerpt(tp)} is not a GPU count", rule="interop/format")
        )
        return None, {}
    conf: dict[str, Any] = {
        "id": config_id(f"{vkey}-{strategy.replace('single_node_', '')}"),
        "hardware": [_hw_name(hw_id)],
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
    layers: list[tuple[_Args, _Env]] = []
    strat = ctx.strategies.get(strategy)
    if strat is not None:
        sdata, sdoc = strat
        layers.append(ctx.layer(sdata, sdoc, "", "vllm_args", "env"))
    layers.append(variant_layer)
    for overrides, base in (
        (doc.data.get("hardware_overrides"), "/hardware_overrides"),
        (variant.get("hardware_overrides"), f"{vbase}/hardware_overrides"),
    ):
        found = _keyed(overrides, hw_id, entry)
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
    args: dict[str, Any] = {}
    env: dict[str, str] = {}
    for (largs, lorigins, lneutral), (lenv, lenv_origins) in layers:
        args.update(largs)
        env.update(lenv)
        for name, where in lorigins.items():
            origins[f"/args/{escape_pointer(name)}"] = where
        for name, where in lenv_origins.items():
            origins[f"/env/{escape_pointer(name)}"] = where
        for field_name, (value, where) in lneutral.items():
            if field_name == "gpus":
                ctx.out.diagnostics.append(
                    no_equivalent(
                        where, "--tensor-parallel-size is set from the strategy; not imported"
                    )
                )
                continue
            conf[field_name] = value
            origins[f"/{field_name}"] = where
    if args:
        conf["args"] = args
    if env:
        conf["env"] = env
    return conf, origins


def _merge(
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
