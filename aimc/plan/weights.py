"""Weights input of the estimate: how many bytes of a checkpoint the GPUs hold.

Takes a recipe's weights entry and, when the checkpoint is on this machine, the sum of its
safetensors headers' tensor sizes; hands on the total that
:func:`aimc.plan.estimate.estimate` divides by tensor x pipeline parallel size (so that
each GPU gets its share plus, in full, what the engine keeps whole on every rank) and
where the size came from. Pure arithmetic, no I/O.

The size is the checkpoint's, never a run's: a run's "Model loading took" includes the
kernels' padding of one GPU architecture, which would leak into every other GPU. In the
order of trust: the local checkpoint's headers, then the recipe's ``bytes`` (the published
checkpoint's tensor bytes, with its ``source``), then its older ``size_gib``; without any,
the estimate falls back on parameters x bytes per parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["GIB", "checkpoint_total"]

GIB = 2**30


def checkpoint_total(
    weights: Mapping[str, Any], measured: int | None, tp: int
) -> tuple[float | None, str]:
    """(bytes to spread over ``tp`` GPUs, basis) of a weights entry; (None, "parameters")
    when neither the checkpoint nor the recipe gives a size.

    ``unloaded_bytes`` (tensors the engine skips, e.g. DeepSeek's multi-token-prediction
    layer) are left out; ``replicated_bytes`` (tensors every tensor-parallel rank holds
    whole, e.g. vLLM's ``ReplicatedLinear`` layers) count ``tp`` times, so that the total
    divided by ``tp`` is ``(rest / tp) + replicated`` per GPU.

    Args:
        weights: The chosen weights entry of the recipe (or its configuration).
        measured: Tensor bytes read from the local checkpoint's headers, if present.
        tp: GPUs one layer is split over (tensor-parallel size).
    """
    if measured is not None:
        total, basis = float(measured), "checkpoint"
    elif "bytes" in weights:
        total, basis = float(weights["bytes"]), "recipe"
    elif "size_gib" in weights:
        total, basis = float(weights["size_gib"]) * GIB, "recipe"
    else:
        return None, "parameters"
    replicated = float(weights.get("replicated_bytes", 0))
    rest = total - float(weights.get("unloaded_bytes", 0))
    return max(rest, replicated) + replicated * (max(tp, 1) - 1), basis
