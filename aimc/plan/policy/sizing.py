"""Sizing: how many GPUs the chosen precision gets, and how many data-parallel replicas.

Takes the runnable assessments of one precision (smallest first), the request and the
:class:`~aimc.plan.policy.fit.Pool` a GPU count left open fills; hands on the plan of the chosen
configuration with its decisions: the count asked for, else (step 3 of
:mod:`aimc.plan.policy.select`) the measured best with ``--optimize``, the largest count for
``--optimize latency``, the pool filled (one tensor-parallel group, else replicas of the
smallest size that fits), or the smallest size that fits (with replicas for ``--optimize
throughput``). Also why a multi-node configuration spans its nodes. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import replace

from aimc.backends import BACKENDS
from aimc.core.safety import format_devices
from aimc.domain.recipe import Hardware, Recipe
from aimc.plan.model import Plan, Setting
from aimc.plan.policy.fit import Assessment, Pool, gpus_text, probe, shortfall
from aimc.plan.policy.measures import measured_choice
from aimc.plan.request import Request
from aimc.plan.resolve import build_plan

__all__ = ["choose_gpus", "config_note", "multinode_why"]


def multinode_why(
    recipe: Recipe, hardware: Hardware, request: Request, chosen: Assessment
) -> list[str]:
    """Why ``chosen`` spans several nodes (the one-node estimate's numbers); nothing for a
    one-node configuration."""
    c = chosen.candidate
    if c.nodes == 1 or chosen.plan is None:
        return []
    across = BACKENDS[c.backend].multinode == "tensor"
    text = f"{c.nodes} nodes x {gpus_text(c.gpus)} " + (
        f"(tensor parallel {c.gpus * c.nodes} across the nodes): "
        if across
        else f"(tensor parallel {c.gpus} on each node, pipeline parallel {c.nodes} across nodes): "
    )
    one = probe(recipe, hardware, request, replace(c, nodes=1), c.gpus)
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


def config_note(a: Assessment, recipe: Recipe) -> str:
    """The last decision of every plan: ``configuration ID of PATH``."""
    path = a.plan.recipe["path"] if a.plan else recipe.path
    return f"configuration {a.candidate.config_id} of {path}"


def _smallest_why(chosen: Assessment, here: list[Assessment]) -> str:
    """Why ``chosen`` is the smallest count that fits (with the next smaller one's verdict)."""
    context = chosen.plan.estimate["context_length"] if chosen.plan else 0
    why = f"the smallest count where {chosen.candidate.precision} fits at {context} tokens"
    smaller = [a for a in here if a.candidate.gpus < chosen.candidate.gpus]
    if smaller:
        s = max(smaller, key=lambda a: a.candidate.gpus)
        why += f" ({gpus_text(s.candidate.gpus)}: {s.verdict}, {s.reason})"
    return why


def choose_gpus(
    recipe: Recipe,
    hardware: Hardware,
    request: Request,
    runnable: list[Assessment],
    here: list[Assessment],
    decisions: list[str],
    fill: Pool | None,
) -> Plan:
    """The plan of the chosen count of ``runnable`` (one precision, smallest first; ``here``:
    every candidate of that precision), ``decisions`` and the count's decision first."""
    replicas, source = 1, ("cli", "--optimize throughput")
    by_measure = measured_choice(recipe, hardware, request, runnable)
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
            f"{gpus_text(chosen.candidate.gpus)}: --optimize latency takes the most "
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
                f"{gpus_text(chosen.candidate.gpus)}: {_smallest_why(chosen, here)}; "
                "pass GPU_COUNT to choose"
            )
        if request.optimize == "throughput":
            replicas = _spread(chosen, hardware, request, fill, decisions)
    assert chosen.plan is not None
    decisions += multinode_why(recipe, hardware, request, chosen)
    plan = chosen.plan
    if replicas > 1:
        plan = _replicated(recipe, hardware, request, chosen, replicas, source)
    return replace(plan, decisions=[*decisions, config_note(chosen, recipe)])


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
            f"{gpus_text(chosen.candidate.gpus)} x {replicas} replicas: "
            f"--optimize throughput spreads data-parallel replicas over {where}"
        )
    return replicas


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
            f"{gpus_text(free)}: {pool.text()} in one tensor-parallel group "
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
    head = f"{gpus_text(tp)} x {replicas} data-parallel replicas" if replicas > 1 else gpus_text(tp)
    text = f"{head} on {pool.text()}: {why}; {tp} is " + _smallest_why(chosen, here)
    idle = free - tp * replicas
    if idle:
        text += f"; {gpus_text(idle)} left idle"
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
