"""Refusals: every request the selection policy cannot serve, said with the numbers and
what would work instead.

Takes what :mod:`aimc.plan.policy.select` found wrong (a precision or target the recipe does
not offer, ``--devices`` that cannot be the plan's GPUs, a GPU count beyond the machine or
not offered, nothing that fits); hands on a :class:`~aimc.core.errors.ConfigError` (exit 2)
whose message gives the numbers (``1 x h100 would need 141.2 GiB per GPU for 32768 tokens,
has 72.9 (79.19 x 0.92)``) and whose hint what would work (the counts that fit, a shorter
context, the busy GPUs). ``check_*`` raise; the others return the error for the caller to
raise. Never a silent fallback: the policy refuses here, and only here.
"""

from __future__ import annotations

from dataclasses import replace

from aimc.core.errors import ConfigError
from aimc.core.safety import format_devices
from aimc.domain.recipe import Hardware, Recipe, default_backend
from aimc.plan.candidates import Candidate, candidates, summary
from aimc.plan.policy.fit import Assessment, Pool, assess, gpus_text, probe, why_not
from aimc.plan.request import Request
from aimc.plan.resolve import PRECISION_ORDER
from aimc.vendors import vendor

__all__ = [
    "cannot_run",
    "check_devices",
    "check_enough_gpus",
    "check_visible",
    "count_not_offered",
    "not_for_target",
    "not_offered",
    "nothing_fits",
    "refuse_precision",
]


def refuse_precision(recipe: Recipe, precision: str | None, target: str | None = None) -> None:
    """Refuse a precision that no configuration of the recipe serves, on any target: the
    precisions it offers, and for fp16 why there is none; the hint says what ``target``
    (when given) offers instead.

    fp16 is served only from fp16 weights a model publishes (a recipe's ``weights: fp16``).
    None of the shipped models publishes any: their 16-bit checkpoints are bf16, and vLLM
    0.32 given ``--dtype float16`` for them casts every weight at load (``Casting
    torch.bfloat16 to torch.float16``, ``vllm/config/model.py``, ``_get_and_verify_dtype``),
    the same memory as bf16 but with fp16's narrower range (largest value 65504), where
    bf16-trained models can overflow (vLLM refuses fp16 outright for gemma2/3 and glm4:
    "Numerical instability").

    Raises:
        ConfigError: ``precision`` is not offered (exit 2).
    """
    if precision is None:
        return
    offered = sorted(
        {c.precision for c in candidates(recipe)},
        key=lambda p: PRECISION_ORDER.index(p) if p in PRECISION_ORDER else len(PRECISION_ORDER),
    )
    if precision in offered:
        return
    model, listed = recipe.model_id, ", ".join(offered)
    if precision == "fp16" and "bf16" in offered:
        raise ConfigError(
            f"{model} has no fp16 weights (it offers {listed}): its 16-bit checkpoint is "
            "bf16, which vLLM would cast to fp16 at load, and bf16-trained weights can "
            "overflow fp16's narrower range",
            hint="use --precision bf16: the same checkpoint and memory (2 bytes a parameter)",
        )
    here = candidates(recipe, target) if target else []
    raise ConfigError(
        f"{model} has no {precision} weights: it offers {listed}",
        hint=f"available on {target}: {summary(here)}"
        if here
        else f"choose one with --precision ({listed})",
    )


def not_for_target(recipe: Recipe, target: str) -> ConfigError:
    """The recipe has no configuration for ``target``: the targets it has some for."""
    others = sorted({c.hardware for c in candidates(recipe)})
    return ConfigError(
        f"{recipe.model_id} has no configuration for {target}",
        hint="it has configurations for: " + ", ".join(others),
    )


def check_devices(request: Request, hardware: Hardware) -> None:
    """Refuse ``--devices`` that cannot be the plan's GPUs: on a target without GPUs, more
    than a node of the target has, or not GPU_COUNT of them when the count is given."""
    assert request.devices is not None
    ids, target = format_devices(request.devices), hardware.name
    n = len(request.devices)
    if not vendor(str(hardware.data["vendor"])).device_resource:
        raise ConfigError(
            f"--devices {ids} names GPUs; target {target} has none",
            hint="leave --devices out, or name a GPU target",
        )
    per_node = int(hardware.data["gpus_per_node"])
    if n > per_node:
        raise ConfigError(
            f"--devices {ids} names {gpus_text(n)}; {target} nodes have {gpus_text(per_node)}",
            hint=f"name at most {per_node} devices",
        )
    if request.gpus is not None and request.gpus != n:
        raise ConfigError(
            f"--devices {ids} names {gpus_text(n)}, GPU_COUNT is {request.gpus}",
            hint=f"name {request.gpus} devices, or leave GPU_COUNT out to serve on the "
            "devices named",
        )


def check_visible(request: Request, hardware: Hardware) -> None:
    """Refuse a GPU count beyond the GPUs visible on this machine."""
    available = request.available_gpus
    if request.gpus is not None and available is not None and request.gpus > available:
        raise ConfigError(
            f"{gpus_text(request.gpus)} requested, but this machine has "
            f"{available} visible {hardware.name} GPU{'s' if available != 1 else ''}",
            hint="check CUDA_VISIBLE_DEVICES / ROCR_VISIBLE_DEVICES, or compile for a "
            "named --target",
        )


def not_offered(
    recipe: Recipe, target: str, asked: list[str], offered: list[Candidate]
) -> ConfigError:
    """Nothing the recipe offers on ``target`` matches what was ``asked`` for."""
    return ConfigError(
        f"no configuration of {recipe.model_id} on {target} for {', '.join(asked)}",
        hint=f"available on {target}: {summary(offered)}",
    )


def count_not_offered(
    recipe: Recipe,
    hardware: Hardware,
    request: Request,
    like: list[Candidate],
    offered: list[Candidate],
    asked: list[str],
) -> ConfigError:
    """The refusal of a GPU count the recipe does not offer (for the backend and precision
    asked for, ``like``): what it would need per GPU (estimated as if offered), and what
    fits."""
    assert request.gpus is not None
    n, target = request.gpus, hardware.name
    what = f"no configuration of {recipe.model_id} on {target} for {', '.join(asked)}"
    heads = recipe.data["model"]["facts"].get("attention_heads")
    per_node = int(hardware.data["gpus_per_node"])
    if n > per_node:
        what += f": {target} nodes have {gpus_text(per_node)}"
    elif heads and heads % n:
        what += f": tensor parallelism {n} does not divide the {heads} attention heads"
    else:
        estimated = probe(recipe, hardware, request, _preferred(recipe, like), n)
        if estimated is not None and estimated.verdict != "runnable":
            what += f": {why_not(estimated, hardware)}"
        elif estimated is not None:
            what += (
                f": the recipe does not offer it (by the estimate it would fit: {estimated.reason})"
            )
    hint = f"available on {target}: {summary(offered)}"
    everything = assess(recipe, hardware, replace(request, gpus=None))
    ok = [a for a in everything if a.verdict == "runnable" and a.plan is not None]
    if ok and ok[0].plan is not None:
        context = ok[0].plan.estimate["context_length"]
        if len(ok) == len(everything):
            hint += f" (all runnable at {context} tokens)"
        else:
            hint += f"; runnable at {context} tokens: {summary([a.candidate for a in ok])}"
    return ConfigError(what, hint=hint)


def _preferred(recipe: Recipe, like: list[Candidate]) -> Candidate:
    """The candidate a request would most likely get: the recipe's default backend and
    precision, else the highest-quality precision."""
    defaults = recipe.data.get("defaults", {})
    return min(
        like,
        key=lambda c: (
            c.backend != default_backend(recipe.data),
            c.precision != defaults.get("precision"),
            PRECISION_ORDER.index(c.precision),
            c.gpus,
        ),
    )


def check_enough_gpus(
    recipe: Recipe,
    hardware: Hardware,
    request: Request,
    cands: list[Candidate],
    offered: list[Candidate],
    fill: Pool | None,
) -> None:
    """With the GPU count open, refuse when even the smallest of ``cands`` needs more GPUs
    than the pool (or this machine) has free."""
    limit = fill.free if fill is not None else request.available_gpus
    if request.gpus is not None or limit is None or any(c.gpus <= limit for c in cands):
        return
    model, target = recipe.model_id, hardware.name
    at_least = gpus_text(min(c.gpus for c in cands))
    if fill is not None and fill.busy:
        raise ConfigError(
            f"{model} needs at least {at_least} of {target}; this machine has "
            f"{fill.visible} visible, {fill.free} free",
            hint=f"{fill.busy_text()}; pass GPU_COUNT to use busy GPUs anyway",
        )
    if fill is not None and fill.visible is None:
        raise ConfigError(
            f"{model} needs at least {at_least} of {target}; --devices names "
            f"{gpus_text(fill.free)}",
            hint=f"available on {target}: {summary(offered)}",
        )
    raise ConfigError(
        f"{model} needs at least {at_least} of {target}; this machine has "
        f"{request.available_gpus} visible",
        hint=f"available on {target}: {summary(offered)}",
    )


def cannot_run(
    recipe: Recipe, hardware: Hardware, request: Request, only: Assessment
) -> ConfigError:
    """The one configuration a GPU count and precision given name does not fit."""
    return ConfigError(
        f"{recipe.model_id} {only.candidate.precision} on "
        f"{gpus_text(only.candidate.gpus)} of {hardware.name} cannot run: "
        f"{why_not(only, hardware)}",
        hint=_instead(recipe, hardware, request, [only]),
    )


def nothing_fits(
    recipe: Recipe,
    hardware: Hardware,
    request: Request,
    assessed: list[Assessment],
    asked: list[str],
    fill: Pool | None,
) -> ConfigError:
    """No precision of what was ``asked`` for fits: how far each is from fitting, and what
    would work instead (the busy GPUs too)."""
    what = f"no configuration of {recipe.model_id} fits {hardware.name}"
    what += f" for {', '.join(asked)}" if asked else ""
    what += f": {_closest(assessed, hardware)}"
    hint = _instead(recipe, hardware, request, assessed)
    if fill is not None and fill.busy:
        hint += f"; {fill.busy_text()}: pass GPU_COUNT to use them anyway"
    return ConfigError(what, hint=hint)


def _closest(assessed: list[Assessment], hardware: Hardware) -> str:
    """Per precision, how far its largest candidate is from fitting (with the numbers)."""
    by_precision: dict[str, Assessment] = {}
    for a in assessed:
        best = by_precision.get(a.candidate.precision)
        key = (a.plan is not None, a.candidate.gpus)
        if best is None or key > (best.plan is not None, best.candidate.gpus):
            by_precision[a.candidate.precision] = a
    if len(by_precision) == 1:
        (only,) = by_precision.values()
        return why_not(only, hardware)
    return "; ".join(f"{p}: {why_not(a, hardware)}" for p, a in by_precision.items())


def _instead(
    recipe: Recipe, hardware: Hardware, request: Request, refused: list[Assessment]
) -> str:
    """What would work instead of ``refused``: a shorter context where one fits, and the
    configurations (counts) that fit on this target at the requested context."""
    open_count = replace(request, gpus=None)
    everything = assess(recipe, hardware, open_count)
    ok = [a for a in everything if a.verdict == "runnable" and a.plan is not None]
    parts = [h for h in [_low_memory_hint(refused)] if h]
    if ok:
        assert ok[0].plan is not None
        context = ok[0].plan.estimate["context_length"]
        parts.append(
            f"runnable on {hardware.name} at {context} tokens: {summary([a.candidate for a in ok])}"
        )
    else:
        parts.append(f"see 'aim-engine list configs {recipe.model_id} --target {hardware.name}'")
    return "; ".join(parts)


def _low_memory_hint(assessed: list[Assessment]) -> str | None:
    low = [a for a in assessed if a.verdict == "low-memory" and a.plan is not None]
    if not low:
        return None
    best = max(low, key=lambda a: a.plan.estimate["max_context"] if a.plan else 0)
    assert best.plan is not None
    c, fits = best.candidate, best.plan.estimate["max_context"] // 1024 * 1024
    return (
        f"{c.backend} {c.precision} on {gpus_text(c.gpus)} fits {fits} tokens: "
        f"add --set context_length={fits}"
    )
