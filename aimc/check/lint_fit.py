"""Lint rule ``lint/fit``: every configuration fits the hardware it lists, by the estimate.

Takes a schema-valid recipe :class:`~aimc.core.loader.Document` that resolves (known hardware,
weights for every precision: :func:`aimc.check.lint.lint_recipe` runs this rule only when no
other rule found an error) and the hardware profiles by name; hands on one diagnostic per
configuration x hardware x precision that does not fit at its context (the recipe's, or
the ``low_memory.max_context`` it is marked with), naming the GPU counts and the context
that would fit. The judgement is the selection policy's (:func:`aimc.plan.policy.assess`, one
candidate at a time: :func:`~aimc.plan.policy.estimated`), so lint and ``compile`` never
disagree; it asks for the estimates alone, and one
:class:`~aimc.plan.shared.Shared` per recipe makes each layer once for all the hardware,
precisions and GPU counts that read it alike (``tests/test_fit_shared.py`` holds the
verdicts to those of plain :func:`~aimc.plan.resolve.build_plan`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aimc.core.diagnostics import Diagnostic, pointer
from aimc.core.loader import Document
from aimc.domain.recipe import Hardware, Recipe, RecipeRoot
from aimc.plan.candidates import Group, groups
from aimc.plan.estimate import MIN_CONTEXT
from aimc.plan.policy import Assessment, estimated
from aimc.plan.request import Request
from aimc.plan.shared import Profiles, Shared

__all__ = ["lint_fit"]

#: (configuration index, hardware name, precision) -> the failing assessments.
_Failing = dict[tuple[int, str, str], list[Assessment]]


def lint_fit(doc: Document, hardware: Mapping[str, Mapping[str, Any]]) -> list[Diagnostic]:
    """The ``lint/fit`` diagnostics of one recipe (which :func:`aimc.check.lint.lint_recipe` runs
    only when no other rule found an error); the recipe must resolve (known hardware,
    weights for every precision)."""
    recipe = Recipe(doc, RecipeRoot(Path(doc.path).parent, "lint"))
    failing: _Failing = {}
    names = sorted({h for c in doc.data["configurations"] for h in c["hardware"]} & set(hardware))
    shared = Shared(recipe, Request(model=recipe.model_id), _PROFILES)
    every: dict[str, list[Group]] = {}
    for group in groups(recipe):
        every.setdefault(group.hardware, []).append(group)
    smallest_first: dict[tuple[tuple[int, int], ...], list[tuple[int, int]]] = {}
    for name in names:
        target = _PROFILES.hardware(name, hardware[name], _profile)
        _assess_on(recipe, name, every[name], target, failing, shared, smallest_first)
    return [_diagnostic(doc, key, found) for key, found in sorted(failing.items())]


#: What the hardware profiles alone decide, for every recipe linted against them (the
#: profiles by name are plain data, not changed while they serve: a new object is a new one).
_PROFILES = Profiles()


def _profile(name: str, data: Mapping[str, Any]) -> Hardware:
    """The profile ``name`` of ``data``, as lint names it (``<name>``)."""
    doc = Document(path=f"<{name}>", data=dict(data), sha256="")
    return Hardware(doc, RecipeRoot(Path("."), "lint"))


@functools.lru_cache(maxsize=256)
def _asked(model: str, gpus: int) -> Request:
    """The request that asks for a candidate of ``gpus`` GPUs: a low_memory configuration
    at its own context, as its GPU count asks for it (one object per count, which
    :class:`~aimc.plan.shared.Shared` checks once)."""
    return Request(model=model, gpus=gpus)


def _gpus_in_all(size: tuple[int, int]) -> int:
    """The GPUs of a (gpus, nodes) size, on all its nodes."""
    return size[0] * size[1]


def _assess_on(
    recipe: Recipe,
    name: str,
    found_groups: list[Group],
    target: Hardware,
    failing: _Failing,
    shared: Shared,
    smallest_first: dict[tuple[tuple[int, int], ...], list[tuple[int, int]]],
) -> None:
    """Add the candidates of ``found_groups`` (configuration x precision x backend) of
    ``recipe`` on the hardware ``name`` (``target``) that do not fit to ``failing``;
    ``smallest_first``: the (gpus, nodes) sizes of the recipe's groups, each sorted by
    the GPUs in all, kept by the sizes as the groups list them."""

    def verdicts(group: Group, sizes: list[tuple[int, int]]) -> list[Assessment]:
        # Each candidate on its own, as assess judges it (its estimate alone, no plan).
        return [
            estimated(recipe, target, _asked(model, gpus), group.candidate(gpus, nodes), shared)
            for gpus, nodes in sizes
        ]

    model = recipe.model_id
    for group in found_groups:
        # Memory per GPU only falls as GPUs are added: when the smallest count fits,
        # the larger ones do (this keeps validate fast on large repositories); the
        # larger candidates are made only then.
        sizes = smallest_first.get(group.sizes)
        if sizes is None:
            sizes = smallest_first[group.sizes] = sorted(group.sizes, key=_gpus_in_all)
        found = verdicts(group, sizes[:1])
        if found and found[0].verdict != "runnable":
            found += verdicts(group, sizes[1:])
        for a in found:
            if a.verdict != "runnable" and a.estimate is not None:
                key = (a.candidate.index, name, a.candidate.precision)
                failing.setdefault(key, []).append(a)


def _diagnostic(doc: Document, key: tuple[int, str, str], found: list[Assessment]) -> Diagnostic:
    """One configuration x hardware x precision that does not fit, with the context that
    would."""
    index, name, precision = key
    conf = doc.data["configurations"][index]
    counts = ", ".join(str(a.candidate.gpus) for a in found)
    estimate = found[0].estimate or {}
    limit = min(a.estimate["max_context"] for a in found if a.estimate)
    limit = limit // MIN_CONTEXT * MIN_CONTEXT  # as the estimate suggests it
    marked = "low_memory" in conf
    hint = (
        f"lower low_memory.max_context to {limit}"
        if marked and limit
        else f"mark the configuration low_memory: {{max_context: {limit}}} (used only "
        "when its GPU count is asked for), or offer more GPUs"
        if limit
        else "the weights alone do not fit: offer more GPUs or a smaller precision"
    )
    return doc.diagnostic(
        pointer("configurations", index, "low_memory" if marked else "gpus"),
        f"{name} {precision} on {counts} GPU{'s' if counts != '1' else ''} does not fit "
        f"at {estimate.get('context_length')} tokens: {found[0].reason}",
        rule="lint/fit",
        hint=hint,
    )
