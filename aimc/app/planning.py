"""Planning: the plan a request gets on a target, the step compile and launch share.

Takes a catalog, a :class:`~aimc.plan.request.Request` and a ``--target`` value (a profile name,
or ``auto`` for this machine, which must have a GPU); hands on a :class:`Resolved`: the
detected or named target, the plan (:func:`aimc.app.pipeline.make_plan`) and the request as
:func:`aimc.app.pipeline.for_target` made it (what the artifacts' header writes). Also the one-line
summary of a plan that ``compile`` and ``show-config`` print.
"""

from __future__ import annotations

from pathlib import Path

from aimc.app.pipeline import for_target, make_plan
from aimc.check.catalog import Catalog
from aimc.check.hardware import Target, resolve_target
from aimc.core.safety import format_devices
from aimc.plan.model import Plan
from aimc.plan.request import Request

__all__ = ["Resolved", "counted", "plan_request", "plan_summary"]


class Resolved:
    """What a command resolved from its arguments, never changed (a plain class: a
    dataclass costs each start-up ~0.5 ms).

    Attributes:
        catalog: The recipes and hardware profiles it read.
        request: The request as :func:`aimc.app.pipeline.for_target` made it for ``target``.
        target: The hardware (detected for ``--target auto``).
        plan: The plan.
    """

    __slots__ = ("catalog", "plan", "request", "target")

    def __init__(self, catalog: Catalog, request: Request, target: Target, plan: Plan) -> None:
        self.catalog = catalog
        self.request = request
        self.target = target
        self.plan = plan


def plan_request(
    catalog: Catalog, request: Request, target: str, cache_dir: Path | None = None
) -> Resolved:
    """The plan for ``request`` on ``target`` (``auto``: this machine, whose GPUs are then
    required; checkpoints in the model cache ``cache_dir`` are sized for the estimate).

    Raises:
        AimcError: The target, the recipe or the policy refuses the request.
    """
    found = resolve_target(catalog, target, gpus_required=True)
    plan = make_plan(catalog, request, found, cache_dir=cache_dir)
    return Resolved(catalog, for_target(request, found)[0], found, plan)


def counted(count: int, noun: str) -> str:
    """``1 GPU``, ``2 GPUs``: a number and its noun, for messages."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def plan_summary(plan: Plan) -> str:
    """One line: ``MODEL on TARGET: BACKEND PRECISION, N GPUs, configuration ID``."""
    replicas = f" x {plan.data_parallel} replicas" if plan.data_parallel > 1 else ""
    devices = f" (devices {format_devices(plan.devices)})" if plan.devices is not None else ""
    nodes = f"{plan.nodes} nodes x " if plan.nodes > 1 else ""
    return (
        f"{plan.model_id} on {plan.hardware['name']}: {plan.backend} {plan.precision}, "
        f"{nodes}{counted(plan.gpus, 'GPU')}{replicas}{devices}, "
        f"configuration {plan.configuration}"
    )
