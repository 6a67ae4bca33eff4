"""Selection policy: which configuration a request gets, and why.

Takes a recipe, a hardware profile, a :class:`~aimc.request.Request` whose GPU count,
precision or backend may be open and, on this machine (``--target auto`` that found GPUs),
the :class:`Pool` of its visible and free GPUs; assesses every candidate configuration on
that hardware (memory estimate -> runnable / low-memory / incompatible) and picks one:

1. the backend asked for, else the recipe's default backend;
2. the precision asked for, else the recipe's default precision, else the highest-quality
   one (fp32 > bf16 > fp16 > fp8 > int8 > mxfp4 > int4) that has a runnable configuration;
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
that fit): never a silent fallback. The refusals are written here, and only here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from aimc.backends import BACKENDS
from aimc.candidates import Candidate, candidates, summary
from aimc.errors import ConfigError
from aimc.measured import best, from_recipe
from aimc.plan import Plan, Setting
from aimc.recipe import Hardware, Recipe, default_backend
from aimc.request import Request
from aimc.resolve import PRECISION_ORDER, build_plan
from aimc.safety import format_devices

__all__ = [
    "Assessment",
    "Pool",
    "assess",
    "measurement_for",
    "refuse_precision",
    "resolve",
    "shortfall",
]


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


@dataclass(frozen=True)
class Pool:
    """The GPUs a plan may use, by device id: ``--devices``, or the usable GPUs of this
    machine (``--target auto`` that found GPUs; :func:`aimc.build.for_target`).

    Attributes:
        devices: Their device ids, in the order the server gets them.
        visible: This machine's visible GPUs when the devices are its usable ones (None
            for ``--devices``): for the refusals only.
        busy: One line per visible GPU detection reports busy (less than 90% of its memory
            free), left out of ``devices``: for the refusals only.
    """

    devices: tuple[int, ...]
    visible: int | None = None
    busy: tuple[str, ...] = ()

    @property
    def free(self) -> int:
        """GPUs a GPU count left open may fill."""
        return len(self.devices)

    def text(self) -> str:
        """``the 4 GPUs of --devices 4,5,6,7`` (the words the decisions use)."""
        n = self.free
        return f"the {n} GPU{'s' if n != 1 else ''} of --devices {format_devices(self.devices)}"

    def busy_text(self) -> str:
        """``2 of 8 visible GPUs are busy: GPU 0 (1.2 of 79.6 GiB free), ...``"""
        n = len(self.busy)
        return f"{n} of {self.visible} visible GPUs {'is' if n == 1 else 'are'} busy: " + ", ".join(
            self.busy
        )


def _gpus(n: int) -> str:
    return f"{n} GPU" if n == 1 else f"{n} GPUs"


def assess(
    recipe: Recipe,
    hardware: Hardware,
    request: Request,
    cands: list[Candidate] | None = None,
    strict: bool = False,
    free_gpus: int | None = None,
) -> list[Assessment]:
    """The verdict of every candidate on ``hardware`` (or of ``cands``).

    Args:
        strict: Raise the error of a candidate whose plan cannot be built (an override that
            does not apply to it), instead of reporting it as incompatible.
        free_gpus: Only this many GPUs may be used (the devices of a GPU count left open):
            larger candidates are incompatible.
    """
    out = []
    for c in cands if cands is not None else candidates(recipe, hardware.name):
        # The devices first: their reason reads the same on this machine and for
        # --target NAME --devices (a count beyond them is beyond the visible ones too).
        if free_gpus is not None and c.gpus > free_gpus:
            why = f"needs {_gpus(c.gpus)}, --devices names {free_gpus}"
            out.append(Assessment(c, None, "incompatible", why))
            continue
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


def shortfall(estimate: Mapping[str, Any], gpus: int, hardware: Hardware) -> str:
    """Why a configuration does not fit, with the numbers: ``1 x h100 would need 141.2 GiB
    per GPU for 32768 tokens, has 72.9 (79.19 x 0.92)``, and what the estimate offers
    (a shorter ``--max-model-len``, or the weights alone being too large)."""
    memory = float(hardware.data["memory_gib"])
    util = round(estimate["budget_gib"] / memory, 2) if memory else 0.0
    text = (
        f"{gpus} x {hardware.name} would need {estimate['need_gib']:.1f} GiB per GPU for "
        f"{estimate['context_length']} tokens, has {memory * util:.1f} ({memory:g} x {util:g})"
    )
    if estimate["verdict"] == "low-memory":
        text += f"; fits with --max-model-len {estimate['max_context'] // 1024 * 1024}"
    elif estimate["max_context"] == 0:
        text += (
            f"; the weights alone take {estimate['weights_gib']:.1f} GiB per GPU "
            f"(+ {estimate['overhead_gib']:.1f} overhead)"
        )
    else:
        text += f"; only {estimate['max_context']} tokens of KV cache fit"
    return text


def _why_not(a: Assessment, hardware: Hardware) -> str:
    """Why an assessed candidate cannot run: its memory shortfall, else its reason."""
    if a.plan is None or a.verdict == "runnable":
        return a.reason
    return shortfall(a.plan.estimate, a.candidate.gpus, hardware)


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
    model, target = recipe.model_id, hardware.name
    refuse_precision(recipe, request.precision, target)
    all_here = candidates(recipe, target)
    if not all_here:
        others = sorted({c.hardware for c in candidates(recipe)})
        raise ConfigError(
            f"{model} has no configuration for {target}",
            hint="it has configurations for: " + ", ".join(others),
        )
    defaults = recipe.data.get("defaults", {})
    decisions: list[str] = []
    if request.devices is not None:
        _check_devices(request, hardware)
    fill = pool if pool is not None and request.gpus is None else None
    cands, asked = all_here, []
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
        if request.available_gpus is not None and request.gpus > request.available_gpus:
            raise ConfigError(
                f"{_gpus(request.gpus)} requested, but this machine has "
                f"{request.available_gpus} visible {target} GPU"
                f"{'s' if request.available_gpus != 1 else ''}",
                hint="check CUDA_VISIBLE_DEVICES / ROCR_VISIBLE_DEVICES, or compile for a "
                "named --target",
            )
        like = cands
        cands = [c for c in cands if c.gpus == request.gpus]
        asked.append(_gpus(request.gpus))
        if not cands and like:
            raise _count_not_offered(recipe, hardware, request, like, all_here, asked)
    if not cands:
        raise ConfigError(
            f"no configuration of {model} on {target} for {', '.join(asked)}",
            hint=f"available on {target}: {summary(all_here)}",
        )
    if not request.backend:
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
        cands = [c for c in cands if c.backend == backend]

    limit = fill.free if fill is not None else request.available_gpus
    if request.gpus is None and limit is not None and all(c.gpus > limit for c in cands):
        at_least = _gpus(min(c.gpus for c in cands))
        if fill is not None and fill.busy:
            raise ConfigError(
                f"{model} needs at least {at_least} of {target}; this machine has "
                f"{fill.visible} visible, {fill.free} free",
                hint=f"{fill.busy_text()}; pass GPU_COUNT to use busy GPUs anyway",
            )
        if fill is not None and fill.visible is None:
            raise ConfigError(
                f"{model} needs at least {at_least} of {target}; --devices names "
                f"{_gpus(fill.free)}",
                hint=f"available on {target}: {summary(all_here)}",
            )
        raise ConfigError(
            f"{model} needs at least {at_least} of {target}; this machine has "
            f"{request.available_gpus} visible",
            hint=f"available on {target}: {summary(all_here)}",
        )
    assessed = assess(
        recipe,
        hardware,
        request,
        cands,
        strict=True,
        free_gpus=fill.free if fill is not None else None,
    )
    if request.gpus is not None and request.precision is not None:
        # One configuration, unless a multi-node one has the same count: one node first.
        only = min(assessed, key=lambda a: (a.verdict != "runnable", a.candidate.nodes))
        if only.verdict != "runnable" or only.plan is None:
            raise ConfigError(
                f"{model} {only.candidate.precision} on "
                f"{_gpus(only.candidate.gpus)} of {target} cannot run: "
                f"{_why_not(only, hardware)}",
                hint=_instead(recipe, hardware, request, [only]),
            )
        decisions += _multinode_why(recipe, hardware, request, only)
        return replace(only.plan, decisions=[*decisions, _config_note(only, recipe)])

    precisions = sorted(
        {a.candidate.precision for a in assessed},
        key=lambda p: (p != defaults.get("precision"), PRECISION_ORDER.index(p)),
    )
    measured_precision = _measured_precision(recipe, hardware, request, assessed)
    if measured_precision is not None:
        precisions.remove(measured_precision)
        precisions.insert(0, measured_precision)
    for precision in precisions:
        here = [a for a in assessed if a.candidate.precision == precision]
        runnable = sorted(
            (a for a in here if a.verdict == "runnable"),
            key=lambda a: (a.candidate.nodes, a.candidate.gpus),
        )
        if not runnable:
            if len(precisions) > 1:
                sized = [a for a in here if a.plan is not None]
                best = (
                    max(sized, key=lambda a: a.candidate.gpus)
                    if sized  # the closest to fitting; else the smallest count is too many
                    else min(here, key=lambda a: a.candidate.gpus)
                )
                decisions.append(
                    f"precision {precision} skipped: on {_gpus(best.candidate.gpus)} {best.reason}"
                )
            continue
        if request.precision is None and len(precisions) > 1:
            why = (
                "the recipe's default precision"
                if precision == defaults.get("precision")
                else "its configuration measured best (neither the request nor the recipe "
                "sets a precision)"
                if precision == measured_precision
                else "the highest-quality precision that fits"
            )
            decisions.append(f"precision {precision}: {why} (choose with --precision)")
        return _choose_gpus(recipe, hardware, request, runnable, here, decisions, fill)
    what = f"no configuration of {model} fits {target}"
    what += f" for {', '.join(asked)}" if asked else ""
    what += f": {_closest(assessed, hardware)}"
    hint = _instead(recipe, hardware, request, assessed)
    if fill is not None and fill.busy:
        hint += f"; {fill.busy_text()}: pass GPU_COUNT to use them anyway"
    raise ConfigError(what, hint=hint)


def _check_devices(request: Request, hardware: Hardware) -> None:
    """Refuse ``--devices`` that cannot be the plan's GPUs: on a target without GPUs, more
    than a node of the target has, or not GPU_COUNT of them when the count is given."""
    assert request.devices is not None
    ids, target = format_devices(request.devices), hardware.name
    n = len(request.devices)
    if hardware.data["vendor"] == "cpu":
        raise ConfigError(
            f"--devices {ids} names GPUs; target {target} has none",
            hint="leave --devices out, or name a GPU target",
        )
    per_node = int(hardware.data["gpus_per_node"])
    if n > per_node:
        raise ConfigError(
            f"--devices {ids} names {_gpus(n)}; {target} nodes have {_gpus(per_node)}",
            hint=f"name at most {per_node} devices",
        )
    if request.gpus is not None and request.gpus != n:
        raise ConfigError(
            f"--devices {ids} names {_gpus(n)}, GPU_COUNT is {request.gpus}",
            hint=f"name {request.gpus} devices, or leave GPU_COUNT out to serve on the "
            "devices named",
        )


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
        return _why_not(only, hardware)
    return "; ".join(f"{p}: {_why_not(a, hardware)}" for p, a in by_precision.items())


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


def _count_not_offered(
    recipe: Recipe,
    hardware: Hardware,
    request: Request,
    like: list[Candidate],
    all_here: list[Candidate],
    asked: list[str],
) -> ConfigError:
    """The refusal of a GPU count the recipe does not offer (for the backend and precision
    asked for): what it would need per GPU (estimated as if offered), and what fits."""
    assert request.gpus is not None
    n, target = request.gpus, hardware.name
    what = f"no configuration of {recipe.model_id} on {target} for {', '.join(asked)}"
    heads = recipe.data["model"]["facts"].get("attention_heads")
    per_node = int(hardware.data["gpus_per_node"])
    if n > per_node:
        what += f": {target} nodes have {_gpus(per_node)}"
    elif heads and heads % n:
        what += f": tensor parallelism {n} does not divide the {heads} attention heads"
    else:
        probe = _probe(recipe, hardware, request, _preferred(recipe, like), n)
        if probe is not None and probe.verdict != "runnable":
            what += f": {_why_not(probe, hardware)}"
        elif probe is not None:
            what += f": the recipe does not offer it (by the estimate it would fit: {probe.reason})"
    hint = f"available on {target}: {summary(all_here)}"
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


def _probe(
    recipe: Recipe, hardware: Hardware, request: Request, like: Candidate, gpus: int
) -> Assessment | None:
    """``like`` on ``gpus`` GPUs, a count its configuration does not offer: its estimate
    (None when no plan can be built)."""
    c = replace(like, gpus=gpus)
    if c.precision not in hardware.data["precisions"]:
        return None
    try:
        plan = build_plan(recipe, hardware, replace(request, gpus=gpus), c)
    except ConfigError:
        return None
    return Assessment(c, plan, plan.estimate["verdict"], plan.estimate["reason"])


def _multinode_why(
    recipe: Recipe, hardware: Hardware, request: Request, chosen: Assessment
) -> list[str]:
    """Why ``chosen`` spans several nodes (the one-node estimate's numbers); nothing for a
    one-node configuration."""
    c = chosen.candidate
    if c.nodes == 1 or chosen.plan is None:
        return []
    across = BACKENDS[c.backend].multinode == "tensor"
    text = f"{c.nodes} nodes x {_gpus(c.gpus)} " + (
        f"(tensor parallel {c.gpus * c.nodes} across the nodes): "
        if across
        else f"(tensor parallel {c.gpus} on each node, pipeline parallel {c.nodes} across nodes): "
    )
    one = _probe(recipe, hardware, request, replace(c, nodes=1), c.gpus)
    if one is not None and one.plan is not None and one.verdict != "runnable":
        text += f"one node does not fit: {shortfall(one.plan.estimate, c.gpus, hardware)}; "
    elif one is not None:
        text += "the recipe offers it (one node would fit too); "
    est = chosen.plan.estimate
    layers = recipe.data["model"]["facts"]["layers"]
    kv = (
        f"its tensor-parallel share of the KV cache of all {layers} layers"
        if across
        else f"the KV cache of {layers // c.nodes} of {layers} layers"
    )
    text += (
        f"each GPU holds 1/{c.gpus * c.nodes} of the weights ({est['weights_gib']:.1f} GiB) "
        f"and {kv}: {chosen.reason}"
    )
    return [text]


def _config_note(a: Assessment, recipe: Recipe) -> str:
    path = a.plan.recipe["path"] if a.plan else recipe.path
    return f"configuration {a.candidate.config_id} of {path}"


def _smallest_why(chosen: Assessment, here: list[Assessment]) -> str:
    """Why ``chosen`` is the smallest count that fits (with the next smaller one's verdict)."""
    context = chosen.plan.estimate["context_length"] if chosen.plan else 0
    why = f"the smallest count where {chosen.candidate.precision} fits at {context} tokens"
    smaller = [a for a in here if a.candidate.gpus < chosen.candidate.gpus]
    if smaller:
        s = max(smaller, key=lambda a: a.candidate.gpus)
        why += f" ({_gpus(s.candidate.gpus)}: {s.verdict}, {s.reason})"
    return why


def _choose_gpus(
    recipe: Recipe,
    hardware: Hardware,
    request: Request,
    runnable: list[Assessment],
    here: list[Assessment],
    decisions: list[str],
    fill: Pool | None,
) -> Plan:
    replicas, source = 1, ("cli", "--optimize throughput")
    by_measure = _measured_choice(recipe, hardware, request, runnable)
    if request.gpus is not None:
        chosen = runnable[0]
    elif by_measure is not None:
        chosen, why = by_measure
        decisions.append(why)
        if request.optimize == "throughput":
            replicas = _spread(chosen, hardware, request, fill, decisions)
    elif request.optimize == "latency":
        chosen = runnable[-1]
        decisions.append(
            f"{_gpus(chosen.candidate.gpus)}: --optimize latency takes the most "
            "GPUs the recipe supports here" + (f" within {fill.text()}" if fill is not None else "")
        )
    elif fill is not None and request.optimize is None:
        chosen, replicas = _fill(fill, runnable, here, decisions)
        source = ("cli", f"--devices {format_devices(fill.devices)}")
    else:
        chosen = runnable[0]
        counts = sorted({a.candidate.gpus for a in here})
        if len(counts) > 1:
            decisions.append(
                f"{_gpus(chosen.candidate.gpus)}: {_smallest_why(chosen, here)}; "
                "pass GPU_COUNT to choose"
            )
        if request.optimize == "throughput":
            replicas = _spread(chosen, hardware, request, fill, decisions)
    assert chosen.plan is not None
    decisions += _multinode_why(recipe, hardware, request, chosen)
    plan = chosen.plan
    if replicas > 1:
        plan = _replicated(recipe, hardware, request, chosen, replicas, source)
    return replace(plan, decisions=[*decisions, _config_note(chosen, recipe)])


def _spread(
    chosen: Assessment,
    hardware: Hardware,
    request: Request,
    fill: Pool | None,
    decisions: list[str],
) -> int:
    """``--optimize throughput``: data-parallel replicas of ``chosen`` over the GPUs."""
    if fill is not None:
        available, where = fill.free, fill.text()
    else:
        available = request.available_gpus or int(hardware.data["gpus_per_node"])
        where = f"{available} GPUs"
    replicas = available // chosen.candidate.gpus
    if replicas > 1:
        decisions.append(
            f"{_gpus(chosen.candidate.gpus)} x {replicas} replicas: "
            f"--optimize throughput spreads data-parallel replicas over {where}"
        )
    return replicas


def measurement_for(
    recipe: Recipe, hardware: Hardware, assessed: Assessment, measured: Sequence[Any]
) -> Any:
    """The figures measured on what ``assessed`` serves on ``hardware``, or None: those
    measured here (``measured``, oldest first: :class:`aimc.measured.Measurement`) replace
    the recipe's published ones for the same configuration; figures of another backend
    release or other engine arguments (when they say which) do not count. What
    ``--optimize`` compares and ``list configs`` shows.
    """

    c = assessed.candidate
    if assessed.plan is None:
        return None
    key = (recipe.model_id, hardware.name, c.config_id, c.precision, c.gpus, c.backend)
    every = [*from_recipe(recipe), *measured]  # later wins
    mine = [m for m in every if m.key == key and m.applies_to(assessed.plan)]
    return mine[-1] if mine else None


def _measured_choice(
    recipe: Recipe, hardware: Hardware, request: Request, runnable: list[Assessment]
) -> tuple[Assessment, str] | None:
    """With ``--optimize`` and the GPU count open: the runnable configuration whose
    measured figures are best, and the decision that says so; None without figures.

    Figures measured here (``request.measured``) replace the recipe's published ones for
    the same configuration; figures of another backend release or other engine arguments
    (when they say which) do not count."""

    if request.optimize is None or request.gpus is not None:
        return None
    figures = {
        id(a): m
        for a in runnable
        if (m := measurement_for(recipe, hardware, a, request.measured)) is not None
    }
    found = [(a, figures[id(a)]) for a in runnable if id(a) in figures]
    if not found:
        return None
    top = best([m for _, m in found], request.optimize)
    chosen = next(a for a, m in found if m is top)
    c = chosen.candidate
    metric = (
        "the most output tokens/s"
        if request.optimize == "throughput"
        else ("the lowest median time to first token")
    )
    text = (
        f"configuration {c.config_id} ({c.backend} {c.precision} on {_gpus(c.gpus)}): "
        f"--optimize {request.optimize} chose by measurement, {metric}: {top.text()} "
        f"({top.source})"
    )
    others = [f"{a.candidate.config_id} on {_gpus(a.candidate.gpus)}: {m.text()}"
              for a, m in found if a is not chosen]  # fmt: skip
    if others:
        text += "; measured too: " + "; ".join(others)
    unmeasured = [a for a in runnable if id(a) not in figures]
    if unmeasured:
        text += "; not measured: " + ", ".join(
            f"{a.candidate.config_id} on {_gpus(a.candidate.gpus)}" for a in unmeasured
        )
    return chosen, text


def _measured_precision(
    recipe: Recipe, hardware: Hardware, request: Request, assessed: list[Assessment]
) -> str | None:
    """The precision of the best measured runnable configuration, when ``--optimize`` may
    choose it: neither the request nor the recipe's defaults set a precision, and the GPU
    count is open. None otherwise, or without figures."""
    if request.precision is not None or "precision" in recipe.data.get("defaults", {}):
        return None
    runnable = [a for a in assessed if a.verdict == "runnable"]
    pick = _measured_choice(recipe, hardware, request, runnable)
    return pick[0].candidate.precision if pick is not None else None


def _fill(
    pool: Pool, runnable: list[Assessment], here: list[Assessment], decisions: list[str]
) -> tuple[Assessment, int]:
    """The GPU count open over a pool of ``F`` GPUs: one tensor-parallel group over them
    where the recipe offers ``F`` and it fits; else the smallest size that fits, with
    ``F // size`` data-parallel replicas. Returns (the candidate, replicas)."""
    free = pool.free
    exact = next((a for a in runnable if a.candidate.gpus == free), None)
    if exact is not None:
        decisions.append(
            f"{_gpus(free)}: {pool.text()} in one tensor-parallel group "
            f"(the recipe offers {free} and it fits: {exact.reason}); pass GPU_COUNT or "
            "--optimize throughput to choose"
        )
        return exact, 1
    chosen = runnable[0]
    tp = chosen.candidate.gpus
    replicas = free // tp
    same = [a for a in here if a.candidate.gpus == free]
    if same:
        why = f"tensor parallelism {free} does not fit ({same[0].verdict}: {same[0].reason})"
    else:
        sizes = ",".join(str(g) for g in sorted({a.candidate.gpus for a in here}))
        why = f"the recipe offers no tensor-parallel size {free} here (only {sizes})"
    head = f"{_gpus(tp)} x {replicas} data-parallel replicas" if replicas > 1 else _gpus(tp)
    text = f"{head} on {pool.text()}: {why}; {tp} is " + _smallest_why(chosen, here)
    idle = free - tp * replicas
    if idle:
        text += f"; {_gpus(idle)} left idle"
    decisions.append(text + "; pass GPU_COUNT or --optimize latency to choose")
    return chosen, replicas


def _replicated(
    recipe: Recipe,
    hardware: Hardware,
    request: Request,
    chosen: Assessment,
    replicas: int,
    source: tuple[str, str],
) -> Plan:
    """``chosen``'s plan with ``replicas`` data-parallel replicas; the tensor-parallel size
    keeps its source (the recipe), the replica count gets ``source`` (layer, what)."""
    assert chosen.plan is not None
    c = chosen.candidate
    pinned = replace(request, gpus=c.gpus, precision=c.precision, backend=c.backend)
    plan = build_plan(recipe, hardware, pinned, c, data_parallel=replicas)
    flags = BACKENDS[c.backend].flags
    args = dict(plan.args)
    args[flags["gpus"]] = chosen.plan.args[flags["gpus"]]
    args[flags["data_parallel"]] = Setting(replicas, *source)
    return replace(plan, args=args)
