"""The args and env layers of one vLLM Recipes configuration, in the order of the recipes
site's ``resolveCommand()`` (``src/lib/command-synthesis.js``).

Takes a model file, the checkout's :class:`~aimc.interop._vllm_site.Context`, a taxonomy
GPU and strategy, a variant and the layers already read of the variant and the strategy;
hands on the layers (args, env) to apply in order, a later flag winning, each hardware
override's other keys reported at their lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aimc.core.loader import Document, escape_pointer
from aimc.interop._common import Origin, no_equivalent, ptr
from aimc.interop._vllm_site import Args, Context, Env, as_mapping

__all__ = ["keyed_exact", "site_layers"]


def _generation_key(mapping: Any, entry: Mapping[str, Any]) -> tuple[Any, str] | None:
    """The entry of a ``hardware_overrides`` map the site applies per generation: the GPU's
    generation, else ``nvidia`` for an NVIDIA GPU (``command-synthesis.js``: never the
    exact id, another brand or ``default`` there)."""
    if not isinstance(mapping, Mapping):
        return None
    generation = entry.get("generation")
    if isinstance(generation, list):
        generation = generation[0] if generation else None
    # JavaScript's `a || b`: an empty mapping is a hit, null and absent are not.
    if isinstance(generation, str) and mapping.get(generation) is not None:
        return mapping[generation], generation
    if entry.get("brand") == "NVIDIA" and mapping.get("nvidia") is not None:
        return mapping["nvidia"], "nvidia"
    return None


def site_layers(
    doc: Document,
    ctx: Context,
    slot: tuple[str, str],
    variant: Mapping[str, Any],
    vbase: str,
    variant_layer: tuple[Args, Env],
    strategy_layer: tuple[Args, Env] | None,
) -> list[tuple[Args, Env]]:
    """The args and env layers of one variant x GPU x strategy in the order of the site's
    ``resolveCommand`` (a later flag winning; the model's base args are the recipe's
    defaults, under all of these): the variant's, its override for this exact GPU, the
    strategy's, the model file's ``strategy_overrides`` of it; then its override for the
    GPU's generation (or ``nvidia``), which replaces the model file's and the variant's
    generation overrides, else those two; last its override for this exact GPU."""
    (hw_id, strategy), entry = slot, ctx.taxonomy[slot[0]]
    own = as_mapping(as_mapping(doc.data.get("strategy_overrides")).get(strategy))
    sbase = ptr("strategy_overrides", strategy)
    found_exact = keyed_exact(variant.get("hardware_overrides"), hw_id)
    layers = [variant_layer]
    layers += _override(doc, ctx, found_exact, f"{vbase}/hardware_overrides")
    if strategy_layer is not None:
        layers.append(strategy_layer)
    if own:
        layers.append(ctx.layer(own, doc, sbase, "extra_args", "env"))
        layers.append(ctx.layer(own, doc, sbase, "vllm_args", "extra_env"))
    by_strategy = _generation_key(own.get("hardware_overrides"), entry)
    if by_strategy is not None:
        layers += _override(doc, ctx, by_strategy, f"{sbase}/hardware_overrides")
    else:
        for overrides, base in (
            (doc.data.get("hardware_overrides"), "/hardware_overrides"),
            (variant.get("hardware_overrides"), f"{vbase}/hardware_overrides"),
        ):
            layers += _override(doc, ctx, _generation_key(overrides, entry), base)
    exact = keyed_exact(own.get("hardware_overrides"), hw_id)
    layers += _override(doc, ctx, exact, f"{sbase}/hardware_overrides")
    return layers


def keyed_exact(mapping: Any, hw_id: str) -> tuple[Any, str] | None:
    """The entry of a ``hardware_overrides`` map for exactly the GPU ``hw_id``."""
    if isinstance(mapping, Mapping) and hw_id in mapping:
        return mapping[hw_id], hw_id
    return None


def _override(
    doc: Document, ctx: Context, found: tuple[Any, str] | None, base: str
) -> list[tuple[Args, Env]]:
    """The args and env of one hardware override (``found``: its value and key under
    ``base``); its other keys reported."""
    if found is None or not isinstance(found[0], Mapping):
        return []
    hbase = f"{base}/{escape_pointer(found[1])}"
    for other in sorted(set(found[0]) - {"extra_args", "extra_env"}):
        ctx.out.diagnostics.append(
            no_equivalent(
                Origin.of(doc, f"{hbase}/{escape_pointer(other)}", key=True),
                f"hardware override {other!r} has no aimc equivalent; not imported",
            )
        )
    return [ctx.layer(found[0], doc, hbase, "extra_args", "extra_env")]
