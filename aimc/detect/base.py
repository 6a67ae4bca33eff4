"""What every detection method shares: the results, the method interface, the helpers.

Reads nothing itself. Holds the dataclasses detection hands on (:class:`GPU`,
:class:`Probe`, :class:`Detection`), the interface each method implements
(:class:`Method`, called with a :class:`Context`), the two ways a method says it has no
answer (:class:`Unavailable`, :class:`Failed`), and the helpers for running a tool with a
timeout and reading its numbers and JSON.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from aimc.core.settings import DEFAULT_DETECT_TIMEOUT, DEFAULT_KFD_TOPOLOGY

__all__ = [
    "BUSY_FRACTION",
    "DEFAULT_TIMEOUT",
    "GPU",
    "KFD_TOPOLOGY",
    "Context",
    "Detection",
    "Failed",
    "Method",
    "Probe",
    "Unavailable",
    "hex_id",
    "mib",
    "parse_json",
    "run",
]

#: Where the KFD topology lives and how long a tool may run (``AIMC_KFD_TOPOLOGY``,
#: ``AIMC_DETECT_TIMEOUT``): defaults written once, in :mod:`aimc.core.settings`.
KFD_TOPOLOGY = DEFAULT_KFD_TOPOLOGY
DEFAULT_TIMEOUT = DEFAULT_DETECT_TIMEOUT
#: A GPU with less than this fraction of its memory free is reported as busy.
BUSY_FRACTION = 0.9


@dataclass(frozen=True)
class GPU:
    """One GPU as detected.

    Attributes:
        index: The GPU's index as the vendor tool numbers it (before visibility filters).
        vendor: ``amd`` or ``nvidia``.
        model: Product name as reported (or derived from the device id).
        architecture: ``gfx942``, ``sm90``...; None when unknown.
        device_id: PCI device id, ``0x74a1``.
        memory_total_mib: Total memory in MiB, when known.
        memory_free_mib: Free memory in MiB, when known.
        uuid: ``GPU-...`` identifier used by visibility variables, when known.
        source: The method that found it.
    """

    index: int
    vendor: str
    model: str
    architecture: str | None
    device_id: str | None
    memory_total_mib: int | None
    memory_free_mib: int | None
    uuid: str | None
    source: str

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


@dataclass(frozen=True)
class Probe:
    """One detection method and what came of it.

    Attributes:
        method: ``amdsmi``, ``amd-smi``, ``rocm-smi``, ``kfd``, ``nvml``, ``nvidia-smi``.
        status: ``found`` (GPUs), ``none`` (ran, no GPUs), ``unavailable`` (not installed),
            ``failed`` (crashed, timed out, unreadable output) or ``skipped`` (an earlier
            method already answered).
        detail: Why, in a few words.
    """

    method: str
    status: str
    detail: str


@dataclass(frozen=True)
class Detection:
    """What detection found.

    Attributes:
        gpus: Visible GPUs, in the order the runtimes number them.
        probes: Every method, in order of trust, with its outcome.
        warnings: Busy GPUs, hidden GPUs, failed tools.
        hidden: GPUs present but hidden by visibility variables.
        visibility: The visibility variables that were set.
    """

    gpus: list[GPU] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    hidden: int = 0
    visibility: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "gpus": [g.to_json() for g in self.gpus],
            "probes": [asdict(p) for p in self.probes],
            "warnings": list(self.warnings),
            "hidden": self.hidden,
            "visibility": dict(self.visibility),
        }


class Unavailable(LookupError):
    """The method cannot run here (tool not on PATH, library not importable, no driver)."""


class Failed(Exception):
    """A method ran but its answer cannot be used."""


@dataclass(frozen=True)
class Context:
    """What a method may use besides the machine itself.

    Attributes:
        timeout: Seconds a tool may run (``AIMC_DETECT_TIMEOUT``).
        kfd_root: The KFD topology folder (``AIMC_KFD_TOPOLOGY``).
        environ: The environment :func:`~aimc.detect.detect` was given.
    """

    timeout: float
    kfd_root: str
    environ: Mapping[str, str]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Context:
        """The context for ``environ``: ``AIMC_DETECT_TIMEOUT`` and ``AIMC_KFD_TOPOLOGY``
        through :func:`aimc.core.settings.setting` (an invalid timeout warns and is the default)."""
        from aimc.core.settings import setting

        timeout = setting("detect_timeout", environ)
        return cls(timeout, str(setting("kfd_topology", environ)), environ)


@dataclass(frozen=True)
class Method:
    """One way of finding GPUs.

    Attributes:
        name: As recorded in :attr:`Probe.method` and :attr:`GPU.source`.
        vendor: ``amd`` or ``nvidia``: a method is skipped once one of its vendor answered.
        probe: The GPUs it finds (possibly none). Raises :class:`Unavailable` when it
            cannot run here and :class:`Failed` when it ran but its answer is unusable;
            any other exception is recorded as a failure too, never passed on.
    """

    name: str
    vendor: str
    probe: Callable[[Context], list[GPU]]


def run(argv: Sequence[str], timeout: float) -> str:
    """Run a detection tool; its stdout, or Failed (exit code, timeout, no such file)."""
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise Failed(f"timed out after {timeout:g} s") from None
    except OSError as exc:
        raise Failed(f"could not run: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()
        raise Failed(f"exit code {proc.returncode}" + (f": {last[-1][:120]}" if last else ""))
    return proc.stdout


def parse_json(text: str) -> Any:
    """A tool's JSON output, skipping any warnings printed before it; or Failed."""
    try:
        return json.loads(text)
    except ValueError:
        # Some amd-smi builds print warnings before the JSON on stdout.
        start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
        if start > 0:
            try:
                return json.loads(text[start:])
            except ValueError:
                pass
        raise Failed("output is not valid JSON") from None


def hex_id(value: Any) -> str | None:
    """``0x74a1`` from an int, ``"0x74A1"``, ``"29857"``; None for N/A."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return f"0x{value:04x}"
    text = str(value).strip().lower()
    try:
        number = int(text, 16) if text.startswith("0x") else int(text)
    except ValueError:
        return None
    return f"0x{number:04x}"


def mib(value: Any) -> int | None:
    """MiB from amd-smi's ``{"value": N, "unit": "MB"}`` (really MiB) or a plain number."""
    if isinstance(value, dict):
        value = value.get("value")
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    try:
        return int(float(str(value)))
    except ValueError:
        return None
