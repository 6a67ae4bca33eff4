"""Selection policy: which configuration a request gets, and why.

Takes a recipe, a hardware profile, a :class:`~aimc.plan.request.Request` whose GPU count,
precision or backend may be open and, on this machine (``--target auto`` that found GPUs),
the :class:`Pool` of its visible and free GPUs; assesses every candidate configuration on
that hardware (memory estimate -> runnable / low-memory / incompatible) and picks one:

1. the backend asked for, else the recipe's default backend;
2. the precision asked for, else the recipe's default precision, else the highest-quality
   one (fp32 > bf16 > fp16 > fp8 > int8 > nvfp4 > mxfp4 > int4) that has a runnable configuration;
3. the GPU count asked for (GPU_COUNT), else (TP: tensor-parallel size, "fits": runnable at
   the recipe's context length by the memory estimate, F: the GPUs of the :class:`Pool`):

   ======================  =================================  ==============================
   GPU count left open     named target (``--target h100``)   ``--devices``, or this machine
                           without ``--devices``              (``auto`` that found GPUs)
   ======================  =================================  ==============================
   no ``--optimize``       the smallest TP that fits          TP F when the recipe offers F
                                                              and it fits; else the smallest
                                                              TP that fits x F // TP
                                                              data-parallel replicas
   ``--optimize latency``  the largest TP that fits           the largest TP <= F that fits
   ``--optimize            the smallest TP that fits x        the smallest TP that fits x
   throughput``            gpus_per_node // TP replicas       F // TP replicas
   ======================  =================================  ==============================

   With ``--optimize`` and measured figures for configurations that fit (``aim-engine
   bench`` results on this target, else the recipe's published ``measured:``), the
   measured configuration with the most output tokens/s (throughput) or the lowest median
   time to first token (latency) is taken instead, and the decisions say so with the
   figures; unmeasured configurations are then not chosen. Measurements compare
   configurations of the precision chosen by 2., unless neither the request nor the recipe
   sets a precision: then the best measured configuration's precision is taken.

   F counts the GPUs of the :class:`Pool`: ``--devices``, else (this machine) the visible
   GPUs less those detection reports as busy (less than 90% of their memory free; the
   target's notes name them). A named target without ``--devices`` describes no machine's
   GPUs, so it keeps the smallest size that fits (its artifacts do not depend on this
   machine). Replicas are the backend's data parallelism (vLLM ``--data-parallel-size``,
   SGLang ``--dp-size``); replicas x TP never exceeds F.

4. ``--devices`` (or this machine's usable GPUs) names the GPUs: exactly GPU_COUNT of them
   when the count is given; the plan uses the first TP x replicas of them. The decisions
   speak of the devices alone (never of this machine), so that ``aim-engine compile ...
   --target NAME --devices ...`` anywhere gives the same plan.

Every automatic choice is recorded in the plan's ``decisions`` with its reason and numbers.
A request that cannot run is an error with the numbers (``1 x h100 would need 141.2 GiB per
GPU for 32768 tokens, has 72.9 (79.19 x 0.92)``) and what would work instead (the counts
that fit): never a silent fallback. The refusals are written in :mod:`aimc.plan.policy.refusals`,
and only there.
"""

from __future__ import annotations

from dataclasses import replace

from aimc.domain.recipe import Hardware, Recipe, default_backend
from aimc.plan.candidates import Candidate, candidates
from aimc.plan.model import Plan
from aimc.plan.policy.fit import Assessment, Pool, assess, gpus_text
from aimc.plan.policy.measures import measured_precision
from aimc.plan.policy.refusals import (
    cannot_run,
    check_devices,
    check_enough_gpus,
    check_visible,
    count_not_offered,
    not_for_target,
    not_offered,
    nothing_fits,
    refuse_precision,
)
from aimc.plan.policy.sizing import choose_gpus, config_note, multinode_why
from aimc.plan.request import Request
from aimc.plan.resolve import PRECISION_ORDER

__all__ = ["resolve"]


def resolve(recipe: Recipe, hardware: Hardware, request: Request, pool: Pool | None = None) -> Plan:
    """The plan for ``request`` on ``hardware`` (see the module docstring for the policy).

    Args:
        pool: The GPUs the plan may use (``--devices``, or this machine's usable GPUs):
            a GPU count left open fills them. None: any GPUs (a named target without
            ``--devices``: the smallest size that fits).

    Raises:
        ConfigError: Nothing matches, or what was asked for does not fit (with the numbers
            and what would work instead).
    """
    refuse_precision(recipe, request.precision, hardware.name)
    offered = candidates(recipe, hardware.name)
    if not offered:
        raise not_for_target(recipe, hardware.name)
    if request.devices is not None:
        check_devices(request, hardware)
    fill = pool if pool is not None and request.gpus is None else None
    decisions: list[str] = []
    cands, asked = _asked_for(recipe, hardware, request, offered)
    cands = _backend(recipe, request, cands, decisions)  # 1.
    check_enough_gpus(recipe, hardware, request, cands, offered, fill)
    free_gpus = fill.free if fill is not None else None
    assessed = assess(recipe, hardware, request, cands, strict=True, free_gpus=free_gpus)
    if request.gpus is not None and request.precision is not None:
        return _pinned(recipe, hardware, request, assessed, decisions)
    here, runnable = _precision(recipe, hardware, request, assessed, decisions, asked, fill)  # 2.
    return choose_gpus(recipe, hardware, request, runnable, here, decisions, fill)  # 3., 4.


def _asked_for(
    recipe: Recipe, hardware: Hardware, request: Request, offered: list[Candidate]
) -> tuple[list[Candidate], list[str]]:
    """The configurations ``offered`` on the target that match what the request names
    (backend, precision, nodes, GPU count), and those words for the refusals.

    Raises:
        ConfigError: The GPU count is beyond this machine or not offered, or nothing matches.
    """
    cands, asked = offered, []
    if request.backend:
        cands = [c for c in cands if c.backend == request.backend]
        asked.append(request.backend)
    if request.precision:
        cands = [c for c in cands if c.precision == request.precision]
        asked.append(request.precision)
    if request.nodes is not None:
        cands = [c for c in cands if c.nodes == request.nodes]
        asked.append(f"{request.nodes} node{'s' if request.nodes != 1 else ''}")
    if request.gpus is not None:
        check_visible(request, hardware)
        like = cands
        cands = [c for c in cands if c.gpus == request.gpus]
        asked.append(gpus_text(request.gpus))
        if not cands and like:
            raise count_not_offered(recipe, hardware, request, like, offered, asked)
    if not cands:
        raise not_offered(recipe, hardware.name, asked, offered)
    return cands, asked


def _backend(
    recipe: Recipe, request: Request, cands: list[Candidate], decisions: list[str]
) -> list[Candidate]:
    """Step 1: the backend asked for, else the recipe's default one (else the first one
    with a configuration here, and the decision says why)."""
    if request.backend:
        return cands
    backends = sorted({c.backend for c in cands})
    preferred = default_backend(recipe.data)
    backend = preferred if preferred in backends else backends[0]
    if len(backends) > 1 or backend != preferred:
        why = (
            "the recipe's default"
            if backend == preferred
            else f"the recipe's default {preferred} has no configuration here"
        )
        decisions.append(f"backend {backend}: {why} (choose with --backend)")
    return [c for c in cands if c.backend == backend]


def _pinned(
    recipe: Recipe,
    hardware: Hardware,
    request: Request,
    assessed: list[Assessment],
    decisions: list[str],
) -> Plan:
    """GPU count and precision both given: their one configuration (unless a multi-node
    one has the same count: one node first), refused when it does not run."""
    only = min(assessed, key=lambda a: (a.verdict != "runnable", a.candidate.nodes))
    if only.verdict != "runnable" or only.plan is None:
        raise cannot_run(recipe, hardware, request, only)
    decisions += multinode_why(recipe, hardware, request, only)
    return replace(only.plan, decisions=[*decisions, config_note(only, recipe)])


def _precision(
    recipe: Recipe,
    hardware: Hardware,
    request: Request,
    assessed: list[Assessment],
    decisions: list[str],
    asked: list[str],
    fill: Pool | None,
) -> tuple[list[Assessment], list[Assessment]]:
    """Step 2: the first precision in order of preference (:func:`_precision_order`) with a
    runnable configuration; hands on its assessments and its runnable ones (fewest nodes,
    then fewest GPUs, first). The decisions say which precisions were skipped and why this
    one, when there was a choice.

    Raises:
        ConfigError: No precision has a runnable configuration.
    """
    precisions, measured = _precision_order(recipe, hardware, request, assessed)
    for precision in precisions:
        here = [a for a in assessed if a.candidate.precision == precision]
        runnable = sorted(
            (a for a in here if a.verdict == "runnable"),
            key=lambda a: (a.candidate.nodes, a.candidate.gpus),
        )
        if not runnable:
            if len(precisions) > 1:
                decisions.append(_skipped(precision, here))
            continue
        if request.precision is None and len(precisions) > 1:
            why = _precision_why(recipe, precision, measured)
            decisions.append(f"precision {precision}: {why} (choose with --precision)")
        return here, runnable
    raise nothing_fits(recipe, hardware, request, assessed, asked, fill)


def _precision_order(
    recipe: Recipe, hardware: Hardware, request: Request, assessed: list[Assessment]
) -> tuple[list[str], str | None]:
    """The precisions of ``assessed``, preferred first: the best measured one (when
    ``--optimize`` may choose it), the recipe's default, then by quality
    (:data:`~aimc.plan.resolve.PRECISION_ORDER`); and that measured precision (or None)."""
    default = recipe.data.get("defaults", {}).get("precision")
    precisions = sorted(
        {a.candidate.precision for a in assessed},
        key=lambda p: (p != default, PRECISION_ORDER.index(p)),
    )
    measured = measured_precision(recipe, hardware, request, assessed)
    if measured is not None:
        precisions.remove(measured)
        precisions.insert(0, measured)
    return precisions, measured


def _precision_why(recipe: Recipe, precision: str, measured: str | None) -> str:
    """Why ``precision`` was taken when the request left it open."""
    if precision == recipe.data.get("defaults", {}).get("precision"):
        return "the recipe's default precision"
    if precision == measured:
        return (
            "its configuration measured best (neither the request nor the recipe sets a precision)"
        )
    return "the highest-quality precision that fits"


def _skipped(precision: str, here: list[Assessment]) -> str:
    """Why ``precision`` (none of ``here`` runnable) was passed over: its closest
    configuration to fitting, else its smallest count (already too many GPUs)."""
    sized = [a for a in here if a.plan is not None]
    best = (
        max(sized, key=lambda a: a.candidate.gpus)
        if sized
        else min(here, key=lambda a: a.candidate.gpus)
    )
    return f"precision {precision} skipped: on {gpus_text(best.candidate.gpus)} {best.reason}"
