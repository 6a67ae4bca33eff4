"""Selection policy: which configuration a request gets, and why.

Takes a recipe, a hardware profile and a :class:`~aimc.resolve.Request` whose GPU count,
precision or backend may be open; assesses every candidate configuration on that hardware
(memory estimate -> runnable / low-memory / incompatible) and picks one:

1. the backend asked for, else the recipe's default backend;
2. the precision asked for, else the recipe's default precision, else the highest-quality
   one (fp32 > bf16 > fp16 > fp8 > int8 > mxfp4 > int4) that has a runnable configuration;
3. the GPU count asked for, else the smallest tensor-parallel size that is runnable at the
   recipe's context length; ``--optimize latency`` takes the most GPUs instead, and
   ``--optimize throughput`` the smallest size with data-parallel replicas over the rest.

Every automatic choice is recorded in the plan's ``decisions`` with its reason. A request
that cannot run is an error with the numbers and what would work instead: never a silent
fallback.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from aimc.catalog import Hardware, Recipe
from aimc.errors import ConfigError
from aimc.plan import Plan
from aimc.resolve import PRECISION_ORDER, Candidate, Request, build_plan, candidates, summary

__all__ = ["Assessment", "assess", "resolve"]


@dataclass(frozen=True)
class Assessment:
    """A candidate configuration and whether it can run.

    Attributes:
        candidate: The configuration (hardware x precision x GPU count x backend).
        plan: Its plan (None when it was ruled out before memory was estimated).
        verdict: ``runnable``, ``low-memory`` or ``incompatible``.
        reason: Why, with the numbers.
    """

    candidate: Candidate
    plan: Plan | None
    verdict: str
    reason: str


def _gpus(n: int) -> str:
    return f"{n} GPU" if n == 1 else f"{n} GPUs"


def assess(
    recipe: Recipe,
    hardware: Hardware,
    request: Request,
    cands: list[Candidate] | None = None,
    strict: bool = False,
) -> list[Assessment]:
    """The verdict of every candidate on ``hardware`` (or of ``cands``).

    Args:
        strict: Raise the error of a candidate whose plan cannot be built (an override that
            does not apply to it), instead of reporting it as incompatible.
    """
    out = []
    for c in cands if cands is not None else candidates(recipe, hardware.name):
        if request.available_gpus is not None and c.gpus > request.available_gpus:
            out.append(
                Assessment(
                    c,
                    None,
                    "incompatible",
                    f"needs {_gpus(c.gpus)}, {request.available_gpus} visible",
                )
            )
            continue
        if c.precision not in hardware.data["precisions"]:
            out.append(
                Assessment(
                    c,
                    None,
                    "incompatible",
                    f"precision {c.precision} unsupported on {hardware.name}",
                )
            )
            continue
        try:
            plan = build_plan(recipe, hardware, request, c)
        except ConfigError as exc:
            if strict:
                raise
            out.append(Assessment(c, None, "incompatible", exc.message))
            continue
        out.append(Assessment(c, plan, plan.estimate["verdict"], plan.estimate["reason"]))
    return out


def _runnable_summary(assessed: list[Assessment]) -> str:
    ok = [a.candidate for a in assessed if a.verdict == "runnable"]
    return summary(ok) if ok else "nothing at this context length"


def _low_memory_hint(assessed: list[Assessment]) -> str | None:
    low = [a for a in assessed if a.verdict == "low-memory" and a.plan is not None]
    if not low:
        return None
    best = max(low, key=lambda a: a.plan.estimate["max_context"] if a.plan else 0)
    assert best.plan is not None
    c, fits = best.candidate, best.plan.estimate["max_context"] // 1024 * 1024
    return (
        f"{c.backend} {c.precision} on {_gpus(c.gpus)} fits {fits} tokens: "
        f"add --set context_length={fits}"
    )


def resolve(recipe: Recipe, hardware: Hardware, request: Request) -> Plan:
    """The plan for ``request`` on ``hardware`` (see the module docstring for the policy).

    Raises:
        ConfigError: Nothing matches, or what was asked for does not fit.
    """
    model, target = recipe.model_id, hardware.name
    all_here = candidates(recipe, target)
    if not all_here:
        others = sorted({c.hardware for c in candidates(recipe)})
        raise ConfigError(
            f"{model} has no configuration for {target}",
            hint="it has configurations for: " + ", ".join(others),
        )
    defaults = recipe.data.get("defaults", {})
    decisions: list[str] = []
    pool, asked = all_here, []
    if request.backend:
        pool = [c for c in pool if c.backend == request.backend]
        asked.append(request.backend)
    if request.precision:
        pool = [c for c in pool if c.precision == request.precision]
        asked.append(request.precision)
    if request.gpus is not None:
        pool = [c for c in pool if c.gpus == request.gpus]
        asked.append(_gpus(request.gpus))
        if request.available_gpus is not None and request.gpus > request.available_gpus:
            raise ConfigError(
                f"{_gpus(request.gpus)} requested, but this machine has "
                f"{request.available_gpus} visible {target} GPU"
                f"{'s' if request.available_gpus != 1 else ''}",
                hint="check CUDA_VISIBLE_DEVICES / ROCR_VISIBLE_DEVICES, or compile for a "
                "named --target",
            )
    if not pool:
        raise ConfigError(
            f"no configuration of {model} on {target} for {', '.join(asked)}",
            hint=f"available on {target}: {summary(all_here)}",
        )
    if not request.backend:
        backends = sorted({c.backend for c in pool})
        preferred = defaults.get("backend", "vllm")
        backend = preferred if preferred in backends else backends[0]
        if len(backends) > 1 or backend != preferred:
            why = (
                "the recipe's default"
                if backend == preferred
                else f"the recipe's default {preferred} has no configuration here"
            )
            decisions.append(f"backend {backend}: {why} (choose with --backend)")
        pool = [c for c in pool if c.backend == backend]

    if (
        request.gpus is None
        and request.available_gpus is not None
        and all(c.gpus > request.available_gpus for c in pool)
    ):
        raise ConfigError(
            f"{model} needs at least {_gpus(min(c.gpus for c in pool))} of {target}; this "
            f"machine has {request.available_gpus} visible",
            hint=f"available on {target}: {summary(all_here)}",
        )
    assessed = assess(recipe, hardware, request, pool, strict=True)
    if request.gpus is not None and request.precision is not None:
        (only,) = assessed
        if only.verdict != "runnable" or only.plan is None:
            everything = assess(recipe, hardware, request)
            hint = (
                _low_memory_hint([only]) or f"runnable on {target}: {_runnable_summary(everything)}"
            )
            raise ConfigError(
                f"{model} {only.candidate.precision} on "
                f"{_gpus(only.candidate.gpus)} of {target} cannot run: "
                f"{only.reason}",
                hint=hint,
            )
        return replace(only.plan, decisions=[*decisions, _config_note(only, recipe)])

    precisions = sorted(
        {a.candidate.precision for a in assessed},
        key=lambda p: (p != defaults.get("precision"), PRECISION_ORDER.index(p)),
    )
    for precision in precisions:
        here = [a for a in assessed if a.candidate.precision == precision]
        runnable = sorted(
            (a for a in here if a.verdict == "runnable"), key=lambda a: a.candidate.gpus
        )
        if not runnable:
            if len(precisions) > 1:
                sized = [a for a in here if a.plan is not None] or here
                best = max(sized, key=lambda a: a.candidate.gpus)
                decisions.append(
                    f"precision {precision} skipped: on {_gpus(best.candidate.gpus)} {best.reason}"
                )
            continue
        if request.precision is None and len(precisions) > 1:
            why = (
                "the recipe's default precision"
                if precision == defaults.get("precision")
                else "the highest-quality precision that fits"
            )
            decisions.append(f"precision {precision}: {why} (choose with --precision)")
        return _choose_gpus(recipe, hardware, request, runnable, here, decisions)
    what = f"no configuration of {model} fits {target}"
    what += f" for {', '.join(asked)}" if asked else ""
    what += f": {assessed[0].reason}" if len(assessed) == 1 else ""
    raise ConfigError(
        what,
        hint=_low_memory_hint(assessed)
        or f"see 'aim-engine list configs {model} --target {target}'",
    )


def _config_note(a: Assessment, recipe: Recipe) -> str:
    path = a.plan.recipe["path"] if a.plan else recipe.path
    return f"configuration {a.candidate.config_id} of {path}"


def _choose_gpus(
    recipe: Recipe,
    hardware: Hardware,
    request: Request,
    runnable: list[Assessment],
    here: list[Assessment],
    decisions: list[str],
) -> Plan:
    if request.gpus is not None:
        chosen = runnable[0]
    elif request.optimize == "latency":
        chosen = runnable[-1]
        decisions.append(
            f"{_gpus(chosen.candidate.gpus)}: --optimize latency takes the most "
            "GPUs the recipe supports here"
        )
    else:
        chosen = runnable[0]
        smaller = [a for a in here if a.candidate.gpus < chosen.candidate.gpus]
        counts = sorted({a.candidate.gpus for a in here})
        if len(counts) > 1:
            why = (
                f"the smallest count where {chosen.candidate.precision} fits at "
                f"{chosen.plan.estimate['context_length'] if chosen.plan else 0} tokens"
            )
            if smaller:
                s = max(smaller, key=lambda a: a.candidate.gpus)
                why += f" ({_gpus(s.candidate.gpus)}: {s.verdict}, {s.reason})"
            decisions.append(f"{_gpus(chosen.candidate.gpus)}: {why}; pass GPU_COUNT to choose")
    assert chosen.plan is not None
    plan = chosen.plan
    if request.optimize == "throughput" and request.gpus is None:
        available = request.available_gpus or int(hardware.data["gpus_per_node"])
        replicas = available // chosen.candidate.gpus
        if replicas > 1:
            pinned = replace(
                request,
                gpus=chosen.candidate.gpus,
                precision=chosen.candidate.precision,
                backend=chosen.candidate.backend,
            )
            plan = build_plan(recipe, hardware, pinned, chosen.candidate, data_parallel=replicas)
            decisions.append(
                f"{_gpus(chosen.candidate.gpus)} x {replicas} replicas: "
                f"--optimize throughput spreads data-parallel replicas over "
                f"{available} GPUs"
            )
    return replace(plan, decisions=[*decisions, _config_note(chosen, recipe)])
