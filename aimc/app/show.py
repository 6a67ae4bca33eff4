"""Show: the plan a request resolves to with every configuration on its target, or, with
no target to resolve for, every configuration on every target.

Takes a catalog, a :class:`~aimc.plan.request.Request`, a ``--target`` value and the emitter
asked for (``--emit``); hands on what ``show-config`` shows (:class:`Shown`): on a target
(a named one, or this machine's GPUs) the plan, one row per configuration on that target
with its memory verdict and, for an emitter that previews, its files (the Kubernetes
manifests); with ``--target auto`` and no GPU detected (``cpu`` is a target only when
named), no plan but every configuration on every target, and how to choose one. Also the
candidate rows ``list configs`` and the refusal ``debug recipe-info`` share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aimc.app.pipeline import for_target, load_recipe, make_plan
from aimc.app.planning import counted, plan_summary
from aimc.check.catalog import Catalog
from aimc.check.hardware import Target, resolve_target
from aimc.core.errors import ConfigError
from aimc.domain.recipe import Hardware, Recipe
from aimc.emit.autoscale import Autoscale
from aimc.emit.emitters import emitter
from aimc.plan.candidates import candidates, summary
from aimc.plan.measured import Measurement
from aimc.plan.model import Plan
from aimc.plan.policy import assess, measurement_for, refuse_precision
from aimc.plan.request import Request

__all__ = [
    "CANDIDATE_COLUMNS",
    "NO_GPU",
    "Shown",
    "all_targets_rows",
    "candidate_rows",
    "how_to_choose",
    "nowhere",
    "show",
]

#: The fields of a candidate row, in the order tables show them (``reason`` aside).
CANDIDATE_COLUMNS = [
    "config",
    "backend",
    "precision",
    "nodes",
    "gpus_per_node",
    "weights_gib",
    "kv_gib",
    "need_gib",
    "budget_gib",
    "max_context",
    "verdict",
]

#: Why there is no plan: the note of ``--target auto`` on a machine without a GPU.
NO_GPU = "no GPU detected"


@dataclass(frozen=True)
class Shown:
    """What ``show-config`` shows.

    Attributes:
        target: The target resolved (the ``cpu`` profile with a note when no GPU was
            detected).
        recipe: The recipe of the model.
        rows: One row per configuration (:func:`candidate_rows`, with its ``hardware``).
        plan: The plan; None when no GPU was detected (``rows`` then span every target).
        choose: How to pick a configuration without a plan (None with one).
        manifests: The emitter's preview (the Kubernetes manifests by file name), or None.
    """

    target: Target
    recipe: Recipe
    rows: list[dict[str, Any]]
    plan: Plan | None = None
    choose: str | None = None
    manifests: dict[str, str] | None = None

    @property
    def notes(self) -> list[str]:
        """What target detection decided (and that no GPU was detected, without a plan)."""
        return self.target.notes if self.plan is not None else [*self.target.notes, NO_GPU]

    def to_json(self) -> dict[str, Any]:
        """The JSON data of ``show-config`` (its ``--help`` lists the fields)."""
        data: dict[str, Any] = {
            "target": self.target.hardware.name if self.plan is not None else None,
            "notes": self.notes,
            "plan": self.plan.to_json() if self.plan is not None else None,
            "candidates": self.rows,
            "choose": self.choose,
        }
        if self.manifests is not None:
            data["manifests"] = self.manifests
        return data

    def message(self) -> str:
        """One line: the plan's summary, else how many configurations were listed and how
        to choose one."""
        if self.plan is not None:
            return plan_summary(self.plan)
        targets = len({r["hardware"] for r in self.rows})
        return (
            f"{counted(len(self.rows), 'configuration')} of {self.recipe.model_id} on "
            f"{counted(targets, 'target')}; {NO_GPU}: {self.choose}"
        )


def show(
    catalog: Catalog,
    request: Request,
    target: str,
    emit: str = "local",
    replicas: int = 1,
    cache_dir: Path | None = None,
    autoscale: Autoscale | None = None,
) -> Shown:
    """What ``request`` resolves to on ``target`` (see the module docstring); ``emit``
    names the emitter whose preview (with ``replicas``) is shown, ``cache_dir`` the model
    cache whose checkpoints are sized for the estimate.

    Raises:
        ConfigError: Without a target, an emitter other than ``local`` is asked for, or no
            configuration on any target matches; the policy's refusals with one.
    """
    found = resolve_target(catalog, target, gpus_required=request.devices is not None)
    recipe = load_recipe(catalog, request.model, found.hardware)
    if found.detection is not None and found.available_gpus is None:
        return _every_target(catalog, recipe, request, found, emit)
    name = found.hardware.name
    plan = make_plan(catalog, request, found, cache_dir=cache_dir)
    request, _ = for_target(request, found)  # as the plan was made: the header's command
    here = replace(request, available_gpus=found.available_gpus)
    rows = [{"hardware": name, **row} for row in candidate_rows(recipe, found.hardware, here)]
    preview = emitter(emit).preview
    manifests = preview(plan, request, name, replicas, autoscale) if preview else None
    return Shown(found, recipe, rows, plan, manifests=manifests)


def _every_target(
    catalog: Catalog, recipe: Recipe, request: Request, found: Target, emit: str
) -> Shown:
    """No GPU detected: every configuration on every target that matches the request.

    Raises:
        ConfigError: ``emit`` needs a target, the precision is not offered, or nothing
            matches on any target.
    """
    if emit != "local":
        raise ConfigError(
            f"--emit {emit} needs a target to compile for", hint="name one with --target NAME"
        )
    refuse_precision(recipe, request.precision)
    rows = all_targets_rows(catalog, recipe, request, request.gpus)
    if not rows:
        raise nowhere(recipe, request, request.gpus)
    return Shown(found, recipe, rows, choose=how_to_choose(recipe.model_id, rows))


def candidate_rows(
    recipe: Recipe,
    hardware: Hardware,
    request: Request,
    measured: Sequence[Measurement] | None = None,
) -> list[dict[str, Any]]:
    """Every configuration the recipe offers on ``hardware``, with its memory verdict;
    with ``measured`` (figures measured here), also the figures that apply to it
    (:func:`aimc.plan.policy.measurement_for`): tokens_per_s, ttft_p50_ms, measured (the source),
    null where none does."""
    rows = []
    for a in assess(recipe, hardware, request):
        c, est = a.candidate, (a.plan.estimate if a.plan else {})
        row = {
            "config": c.config_id,
            "backend": c.backend,
            "precision": c.precision,
            "nodes": c.nodes,
            "gpus_per_node": c.gpus,
            # GPUs per node under its earlier name (the JSON before nodes were shown).
            "gpus": c.gpus,
            "weights_gib": est.get("weights_gib"),
            "kv_gib": est.get("kv_gib"),
            "need_gib": est.get("need_gib"),
            "budget_gib": est.get("budget_gib"),
            "max_context": est.get("max_context"),
            "verdict": a.verdict,
            "reason": a.reason,
        }
        if measured is not None:
            m = measurement_for(recipe, hardware, a, measured)
            row["tokens_per_s"] = m.output_tokens_per_s if m else None
            row["ttft_p50_ms"] = m.ttft_p50_ms if m else None
            row["measured"] = m.source if m else None
        rows.append(row)
    return rows


def all_targets_rows(
    catalog: Catalog, recipe: Recipe, request: Request, gpu_count: int | None
) -> list[dict[str, Any]]:
    """Every configuration of ``recipe`` on every target it names (each as a named target:
    no GPU limit), with its memory verdict; only ``gpu_count`` GPUs, and the precision and
    backend of ``request``, when given."""
    open_request = replace(request, gpus=None, available_gpus=None)
    rows = []
    for name in sorted({c.hardware for c in candidates(recipe)}):
        for row in candidate_rows(recipe, catalog.hardware(name), open_request):
            if (
                (gpu_count is None or row["gpus"] == gpu_count)
                and (request.precision is None or row["precision"] == request.precision)
                and (request.backend is None or row["backend"] == request.backend)
            ):
                rows.append({"hardware": name, **row})
    return rows


def how_to_choose(model: str, rows: list[dict[str, Any]]) -> str:
    """How to pick one of ``rows``: the options, and an example that fits."""
    targets = ", ".join(dict.fromkeys(r["hardware"] for r in rows))
    text = f"choose with --target NAME ({targets}) and --gpu-count N"
    ok = next((r for r in rows if r["verdict"] == "runnable"), None)
    if ok is not None:
        text += (
            f", e.g. aim-engine show-config {model} --target {ok['hardware']} "
            f"--gpu-count {ok['gpus']}"
        )
    return text


def nowhere(recipe: Recipe, request: Request, gpu_count: int | None) -> ConfigError:
    """The refusal of a request no configuration of ``recipe`` matches on any target
    (``show-config`` and ``debug recipe-info`` without a target): what it offers."""
    asked = [x for x in (request.backend, request.precision) if x]
    asked += [counted(gpu_count, "GPU")] if gpu_count is not None else []
    return ConfigError(
        f"no configuration of {recipe.model_id} on any target for {', '.join(asked)}",
        hint=f"it offers: {summary(candidates(recipe))}",
    )
