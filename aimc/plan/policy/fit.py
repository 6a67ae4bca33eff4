"""Fit: whether each candidate configuration can run on the hardware, and why not.

Takes a recipe, a hardware profile, a :class:`~aimc.plan.request.Request` and candidate
configurations (:func:`aimc.plan.candidates.candidates`); hands on an :class:`Assessment` per
candidate: its plan and the memory estimate's verdict (``runnable``, ``low-memory``,
``incompatible``) with the reason, or why it was ruled out before memory was estimated (more
GPUs than ``--devices`` or the machine has, a precision the hardware lacks, an override that
does not apply). :func:`shortfall` says with the numbers why a configuration does not fit.
Also the :class:`Pool` of GPUs a plan may use, and the words the policy counts GPUs in.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from aimc.core.errors import ConfigError
from aimc.core.safety import format_devices
from aimc.domain.recipe import Hardware, Recipe
from aimc.plan.candidates import Candidate, candidates
from aimc.plan.estimate import REFUSED_UTILIZATION, Estimate
from aimc.plan.model import Plan
from aimc.plan.request import Request
from aimc.plan.resolve import build_plan, estimate_for
from aimc.plan.shared import Shared

__all__ = [
    "Assessment",
    "Pool",
    "assess",
    "estimated",
    "gpus_text",
    "probe",
    "shortfall",
    "why_not",
]


class Assessment:
    """A candidate configuration and whether it can run, never changed once made (a plain
    class, not a dataclass: building one costs each start-up ~0.5 ms; read by attribute
    only, never compared, hashed, printed or replaced).

    Attributes:
        candidate: The configuration (hardware x precision x GPU count x backend).
        plan: Its plan (None when it was ruled out before memory was estimated, or when
            only its estimate was asked for: :func:`assess` with ``plans`` false).
        verdict: ``runnable``, ``low-memory`` or ``incompatible``.
        reason: Why, with the numbers.
        estimate: Its memory estimate (the plan's JSON; None when ruled out before it;
            with :func:`assess`'s ``plans`` false, a read-only mapping of the same keys and
            values, made on its first read: ``lint/fit`` reads only the failing ones').
    """

    __slots__ = ("candidate", "estimate", "plan", "reason", "verdict")

    def __init__(
        self,
        candidate: Candidate,
        plan: Plan | None,
        verdict: str,
        reason: str,
        estimate: Mapping[str, Any] | None = None,
    ) -> None:
        self.candidate, self.plan, self.verdict = candidate, plan, verdict
        self.reason, self.estimate = reason, estimate


class Pool:
    """The GPUs a plan may use, by device id: ``--devices``, or the usable GPUs of this
    machine (``--target auto`` that found GPUs; :func:`aimc.app.pipeline.for_target`).
    Never changed once made (a plain class, not a dataclass: building one costs each
    start-up ~0.5 ms; read by attribute only, never compared, hashed, printed or replaced).

    Attributes:
        devices: Their device ids, in the order the server gets them.
        visible: This machine's visible GPUs when the devices are its usable ones (None
            for ``--devices``): for the refusals only.
        busy: One line per visible GPU detection reports busy (less than 90% of its memory
            free), left out of ``devices``: for the refusals only.
    """

    __slots__ = ("busy", "devices", "visible")

    def __init__(
        self, devices: tuple[int, ...], visible: int | None = None, busy: tuple[str, ...] = ()
    ) -> None:
        self.devices, self.visible, self.busy = devices, visible, busy

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


def gpus_text(n: int) -> str:
    """``1 GPU``, ``4 GPUs``."""
    return f"{n} GPU" if n == 1 else f"{n} GPUs"


def assess(
    recipe: Recipe,
    hardware: Hardware,
    request: Request,
    cands: list[Candidate] | None = None,
    strict: bool = False,
    free_gpus: int | None = None,
    shared: Shared | None = None,
    plans: bool = True,
) -> list[Assessment]:
    """The verdict of every candidate on ``hardware`` (or of ``cands``).

    Args:
        strict: Raise the error of a candidate whose plan cannot be built (an override that
            does not apply to it), instead of reporting it as incompatible.
        free_gpus: Only this many GPUs may be used (the devices of a GPU count left open):
            larger candidates are incompatible.
        shared: The work shared with other calls for the same recipe and request (any GPU
            count, any profile: :class:`~aimc.plan.shared.Shared`); the candidates of one
            call share it anyway.
        plans: False: the estimates alone, no plan put together (``lint/fit``).
    """
    shared = shared or Shared(recipe, request)
    out = []
    for c in cands if cands is not None else candidates(recipe, hardware.name):
        ruled_out = _ruled_out(c, hardware, request, free_gpus)
        if ruled_out is not None:
            out.append(Assessment(c, None, "incompatible", ruled_out))
            continue
        if not plans:
            out.append(_estimated(recipe, hardware, request, c, shared, strict))
            continue
        try:
            plan = build_plan(recipe, hardware, request, c, shared=shared)
        except ConfigError as exc:
            if strict:
                raise
            out.append(Assessment(c, None, "incompatible", exc.message))
            continue
        estimate = plan.estimate
        out.append(Assessment(c, plan, estimate["verdict"], estimate["reason"], estimate))
    return out


def estimated(
    recipe: Recipe, hardware: Hardware, request: Request, c: Candidate, shared: Shared
) -> Assessment:
    """:func:`assess` of the one candidate ``c`` with ``plans`` false (its estimate alone),
    without the list :func:`assess` builds: ``lint/fit`` asks for each candidate on its
    own (the same steps: :func:`assess` makes each of its verdicts here)."""
    ruled_out = _ruled_out(c, hardware, request, None)
    if ruled_out is not None:
        return Assessment(c, None, "incompatible", ruled_out)
    return _estimated(recipe, hardware, request, c, shared, False)


def _estimated(
    recipe: Recipe,
    hardware: Hardware,
    request: Request,
    c: Candidate,
    shared: Shared,
    strict: bool,
) -> Assessment:
    """The verdict of ``c``, not ruled out, by its estimate alone (no plan put together)."""
    try:
        made = estimate_for(recipe, hardware, request, c, shared)
    except ConfigError as exc:
        if strict:
            raise
        return Assessment(c, None, "incompatible", exc.message)
    return Assessment(c, None, made.verdict, made.reason, _EstimateJson(made))


class _EstimateJson(Mapping[str, Any]):
    """An estimate's JSON form (:meth:`~aimc.plan.estimate.Estimate.to_json`), made when
    it is first read: the estimates :func:`assess` hands on without plans, most of which
    nothing reads (``lint/fit`` reads the failing ones'). Equal to that dict."""

    __slots__ = ("_estimate", "_json")

    def __init__(self, estimate: Estimate):
        self._estimate = estimate
        self._json: dict[str, Any] | None = None

    def _data(self) -> dict[str, Any]:
        if self._json is None:
            self._json = self._estimate.to_json()
        return self._json

    def __getitem__(self, key: str) -> Any:
        return self._data()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data())

    def __len__(self) -> int:
        return len(self._data())

    def __repr__(self) -> str:
        return repr(self._data())


def _ruled_out(
    c: Candidate, hardware: Hardware, request: Request, free_gpus: int | None
) -> str | None:
    """Why ``c`` cannot run before its memory is estimated, or None."""
    # The devices first: their reason reads the same on this machine and for
    # --target NAME --devices (a count beyond them is beyond the visible ones too).
    if free_gpus is not None and c.gpus > free_gpus:
        return f"needs {gpus_text(c.gpus)}, --devices names {free_gpus}"
    if request.available_gpus is not None and c.gpus > request.available_gpus:
        return f"needs {gpus_text(c.gpus)}, {request.available_gpus} visible"
    if c.precision not in hardware.data["precisions"]:
        return f"precision {c.precision} unsupported on {hardware.name}"
    return None


def shortfall(estimate: Mapping[str, Any], gpus: int, hardware: Hardware) -> str:
    """Why a configuration does not fit, with the numbers: ``1 x h100 would need 141.2 GiB
    per GPU for 32768 tokens, has 72.9 (79.19 x 0.92)``, and what the estimate offers
    (a shorter ``--max-model-len``, or the weights alone being too large), and the caveat
    of a verdict near the edge (:attr:`aimc.plan.estimate.Estimate.caveat`)."""
    memory = float(hardware.data["memory_gib"])
    if str(estimate.get("reason", "")).startswith(REFUSED_UTILIZATION):
        return f"{gpus} x {hardware.name}: {estimate['reason']}"
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
    if estimate.get("caveat"):
        text += f"; {estimate['caveat']}"
    return text


def why_not(a: Assessment, hardware: Hardware) -> str:
    """Why an assessed candidate cannot run: its memory shortfall, else its reason."""
    if a.plan is None or a.verdict == "runnable":
        return a.reason
    return shortfall(a.plan.estimate, a.candidate.gpus, hardware)


def probe(
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
    return Assessment(c, plan, plan.estimate["verdict"], plan.estimate["reason"], plan.estimate)
