"""Measured choice: the configuration ``--optimize`` takes by measured figures.

Takes the runnable assessments of a request whose GPU count is open, the recipe's published
``measured:`` figures and those measured on this machine (:class:`aimc.plan.measured.Measurement`,
``request.measured``); hands on the configuration with the most output tokens/s
(``--optimize throughput``) or the lowest median time to first token (``latency``) and the
decision that says so with the figures, or None without figures (the count policy of
:mod:`aimc.plan.policy.select` decides then). Figures of another backend release or other engine
arguments (when they say which) do not count. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from aimc.domain.recipe import Hardware, Recipe
from aimc.plan.policy.fit import Assessment, gpus_text
from aimc.plan.request import Request

if TYPE_CHECKING:
    from aimc.plan.measured import Measurement

__all__ = ["measured_choice", "measured_precision", "measurement_for"]


def measurement_for(
    recipe: Recipe, hardware: Hardware, assessed: Assessment, measured: Sequence[Measurement]
) -> Measurement | None:
    """The figures measured on what ``assessed`` serves on ``hardware``, or None: those
    measured here (``measured``, oldest first: :class:`aimc.plan.measured.Measurement`) replace
    the recipe's published ones for the same configuration; figures of another backend
    release or other engine arguments (when they say which) do not count. What
    ``--optimize`` compares and ``list configs`` shows.
    """
    from aimc.plan.measured import from_recipe  # deferred: only --optimize and list configs

    c = assessed.candidate
    if assessed.plan is None:
        return None
    key = (recipe.model_id, hardware.name, c.config_id, c.precision, c.gpus, c.backend)
    every = [*from_recipe(recipe), *measured]  # later wins
    mine = [m for m in every if m.key == key and m.applies_to(assessed.plan)]
    return mine[-1] if mine else None


def measured_choice(
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
    from aimc.plan.measured import best  # loaded by measurement_for

    top = best([m for _, m in found], request.optimize)
    chosen = next(a for a, m in found if m is top)
    unmeasured = [a for a in runnable if id(a) not in figures]
    return chosen, _decision(request.optimize, chosen, top, found, unmeasured)


def _decision(
    optimize: str,
    chosen: Assessment,
    top: Measurement,
    found: list[tuple[Assessment, Measurement]],
    unmeasured: list[Assessment],
) -> str:
    """The decision of a measured choice: the figures of the chosen configuration, of the
    others measured, and which were not measured."""
    c = chosen.candidate
    metric = (
        "the most output tokens/s"
        if optimize == "throughput"
        else ("the lowest median time to first token")
    )
    text = (
        f"configuration {c.config_id} ({c.backend} {c.precision} on {gpus_text(c.gpus)}): "
        f"--optimize {optimize} chose by measurement, {metric}: {top.text()} "
        f"({top.source})"
    )
    others = [f"{a.candidate.config_id} on {gpus_text(a.candidate.gpus)}: {m.text()}"
              for a, m in found if a is not chosen]  # fmt: skip
    if others:
        text += "; measured too: " + "; ".join(others)
    if unmeasured:
        text += "; not measured: " + ", ".join(
            f"{a.candidate.config_id} on {gpus_text(a.candidate.gpus)}" for a in unmeasured
        )
    return text


def measured_precision(
    recipe: Recipe, hardware: Hardware, request: Request, assessed: list[Assessment]
) -> str | None:
    """The precision of the best measured runnable configuration, when ``--optimize`` may
    choose it: neither the request nor the recipe's defaults set a precision, and the GPU
    count is open. None otherwise, or without figures."""
    if request.precision is not None or "precision" in recipe.data.get("defaults", {}):
        return None
    runnable = [a for a in assessed if a.verdict == "runnable"]
    pick = measured_choice(recipe, hardware, request, runnable)
    return pick[0].candidate.precision if pick is not None else None
