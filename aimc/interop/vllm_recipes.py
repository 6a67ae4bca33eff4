"""vLLM Recipes (vllm-project/recipes) -> aimc recipes and hardware profiles.

Takes the loaded files of a checkout (``models/<org>/<model>.yaml``, ``strategies/*.yaml``,
``taxonomy.yaml``, ``platforms.yaml``) and hands on a
:class:`~aimc.interop._common.Conversion`: one recipe per model file, one configuration per
variant x GPU x single-node strategy (merged when they differ only in GPU), one hardware
profile per taxonomy GPU used, and a diagnostic at the original line for everything that
has no aimc equivalent. Args and env are layered as the recipes site's command builder
does (strategy, base, variant, hardware overrides; a later flag wins): the checkout as the
site reads it is :mod:`aimc.interop._vllm_site`, the configurations of a model file
:mod:`aimc.interop._vllm_variants`. ``vram_minimum_gb`` claims are collected
for :mod:`aimc.interop._check`. The mapping is in ``docs/interop.md``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aimc import vendors
from aimc.core.diagnostics import Diagnostic, excerpt
from aimc.core.loader import Document, escape_pointer
from aimc.interop._collection import Collected
from aimc.interop._common import (
    MODEL_ID,
    NO_FACTS,
    Conversion,
    Facts,
    Origin,
    RecipeOut,
    hardware_from_shipped,
    no_equivalent,
    ptr,
)
from aimc.interop._vllm_site import (
    GENERATIONS,
    SINGLE_NODE,
    Context,
    as_mapping,
    hardware_list,
    hw_name,
    shared,
)
from aimc.interop._vllm_variants import (
    PRECISIONS,
    Fields,
    Variants,
    merge,
    recipe_fields,
    set_neutral,
)

__all__ = ["FOLDER", "PATTERNS", "PRECISIONS", "convert", "shared"]

PATTERNS = ("models/**/*.yaml", "strategies/*.yaml", "taxonomy.yaml", "platforms.yaml")
#: The format's own folder: a DIR of that name is read as its checkout's (the parent).
FOLDER = "models"


def convert(
    docs: Iterable[Document],
    catalog: Any,
    diagnostics: Collected | None = None,
    cache_dir: Path | None = None,
    hub: Any = None,
) -> Conversion:
    """Convert the loaded files of a vLLM Recipes checkout (:data:`PATTERNS`), one by one.

    Args:
        docs: Model, strategy, taxonomy and platform files, loaded with positions; the
            :func:`shared` ones first (a sequence is put in that order here).
        catalog: Where model facts (layers, heads, parameters) and GPUs are looked up.
        diagnostics: Where the problems go (a new :class:`Collected` when not given).
        cache_dir, hub: Where a model's facts the catalog lacks are looked for (:class:`Facts`).
    """
    out = Conversion(diagnostics=Collected() if diagnostics is None else diagnostics)
    ctx = Context(out)
    facts_for = Facts(catalog, cache_dir, hub)
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


def _profile(ctx: Context, name: str, catalog: Any) -> tuple[dict[str, Any], Origin]:
    """The aimc profile of taxonomy GPU ``name`` (aimc's own facts when it has them)."""
    taxonomy_id = next(k for k in ctx.taxonomy if hw_name(str(k)) == name)
    entry = ctx.taxonomy[taxonomy_id]
    assert ctx.taxonomy_doc is not None
    where = Origin.of(ctx.taxonomy_doc, ptr("hardware_profiles", taxonomy_id), key=True)
    description = str(entry.get("description") or entry.get("display_name") or name)
    shipped = hardware_from_shipped(name, description, catalog)
    if shipped is not None:
        return shipped, where
    vendor = str(entry.get("brand", "")).lower()
    maker = vendors.vendor(vendor)  # gpu_problem let only a GPU vendor through
    arch = GENERATIONS[str(entry.get("generation"))]
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


def _model(doc: Document, ctx: Context, facts_for: Facts) -> RecipeOut | None:
    """The recipe of model file ``doc``, or None when nothing of it converts (reported):
    the model and its facts, the defaults (:func:`_defaults`), one configuration per
    variant x GPU x strategy (:class:`~aimc.interop._vllm_variants.Variants`), merged."""
    known = _known(doc, ctx.out, facts_for)
    if known is None:
        return None
    model_id, facts, architecture, lint_only = known
    model, meta = as_mapping(doc.data.get("model")), as_mapping(doc.data.get("meta"))
    recipe: dict[str, Any] = {"apiVersion": "aimc/v1", "kind": "Recipe", "model": {"id": model_id}}
    if meta.get("description"):
        recipe["model"]["description"] = str(meta["description"])[:200]
    if architecture:
        recipe["model"]["architecture"] = architecture
    recipe["model"]["facts"] = facts
    result = RecipeOut(
        recipe, {"": Origin.of(doc, ""), "/model/id": Origin.of(doc, "/model/model_id")}
    )
    result.lint_only = lint_only
    if model_id in facts_for.sources:
        result.note = f"model.facts from {facts_for.sources[model_id]}"
    defaults, base = _defaults(doc, ctx, model, facts, result)
    _report_features(doc, ctx.out)
    found = Variants(
        doc, ctx, model_id, result, hardware_list(doc, meta, ctx), _strategies(doc, ctx.out)
    )
    found.base = base
    found.read(as_mapping(doc.data.get("variants")))
    if not found.configurations:
        why = "; ".join(f"{k}: {v}" for k, v in found.why.items()) or "the file has none"
        ctx.out.diagnostics.append(
            no_equivalent(
                Origin.of(doc, "/variants", key=True),
                f"no variant of {model_id!r} converts to an aimc configuration ({why}); "
                "not imported",
            )
        )
        return None
    weights = found.weights
    recipe["weights"] = dict(sorted(weights.items()))
    defaults["precision"] = next((q for q in ("bf16", "fp16") if q in weights), min(weights))
    recipe["defaults"] = defaults
    recipe["configurations"] = []
    for conf, origins in merge(found.configurations):
        index = len(recipe["configurations"])
        recipe["configurations"].append(conf)
        for pointer, where in origins.items():
            result.origins[f"{ptr('configurations', index)}{pointer}"] = where
    return result


def _known(
    doc: Document, out: Conversion, facts_for: Facts
) -> tuple[str, dict[str, Any], str | None, bool] | None:
    """The model file's id, aimc's facts of it, its architecture and whether it is only
    linted (aimc has no facts of it: reported, :data:`NO_FACTS` stand in); None (reported)
    when the id is not one."""
    model_id = as_mapping(doc.data.get("model")).get("model_id")
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
                f"aimc knows no facts (layers, heads, parameters) for {model_id!r}; "
                "linted, not imported",
                rule="interop/facts",
                severity="warning",
                hint=facts_for.hint(model_id),
            )
        )
        return model_id, dict(NO_FACTS), None, True
    return model_id, known[0], known[1], False


def _defaults(
    doc: Document,
    ctx: Context,
    model: Mapping[str, Any],
    facts: Mapping[str, Any],
    result: RecipeOut,
) -> tuple[dict[str, Any], Fields]:
    """The recipe's defaults: vLLM, the model's whole context, and the model file's
    ``base_args`` and ``base_env`` (the neutral fields they set as fields); and the recipe
    fields the base args set (``--trust-remote-code`` is the model's here, the weights'
    are each configuration's)."""
    defaults: dict[str, Any] = {"backend": "vllm", "context_length": facts["max_context"]}
    base_args, base_origins, base_neutral = ctx.args(
        model.get("base_args"), doc, "/model/base_args"
    )
    set_neutral(ctx, base_neutral, defaults, result.origins, "/defaults/")
    base = recipe_fields(base_neutral)
    trust = base.pop("trust_remote_code", None)
    if trust is not None and trust[0] is True:
        result.data["model"]["trust_remote_code"] = True
        result.origins["/model/trust_remote_code"] = trust[1]
    if base_args:
        defaults["args"] = base_args
        for name, where in base_origins.items():
            result.origins[f"/defaults/args/{escape_pointer(name)}"] = where
    env, env_origins = ctx.env(model.get("base_env"), doc, "/model/base_env")
    if env:
        defaults["env"] = env
        for name, where in env_origins.items():
            result.origins[f"/defaults/env/{escape_pointer(name)}"] = where
    return defaults, base


def _report_features(doc: Document, out: Conversion) -> None:
    """The site's per-deployment features: no aimc equivalent (one warning each kind)."""
    for key, what in (
        ("features", "optional features (chosen per deployment)"),
        ("opt_in_features", "opt-in features"),
        ("kv_offload_support", "KV-cache offloading"),
    ):
        if doc.data.get(key):
            out.diagnostics.append(
                no_equivalent(
                    Origin.of(doc, f"/{key}", key=True),
                    f"{what} have no aimc equivalent; not imported",
                    "add the args of the ones you use with --set or --config",
                )
            )


def _strategies(doc: Document, out: Conversion) -> list[str]:
    """The model file's single-node strategies (``single_node_tp`` when it names none);
    every other one reported."""
    strategies = doc.data.get("compatible_strategies") or ["single_node_tp"]
    strategies = strategies if isinstance(strategies, list) else []
    for i, name in enumerate(strategies):
        if name not in SINGLE_NODE:
            out.diagnostics.append(
                no_equivalent(
                    Origin.of(doc, ptr("compatible_strategies", i)),
                    f"strategy {excerpt(name)} has no aimc equivalent yet; not imported",
                    "aimc imports single_node_tp and single_node_tep",
                )
            )
    return [s for s in strategies if s in SINGLE_NODE]
