"""Hardware stage: which hardware profile a request compiles for.

Takes ``--target`` (a profile name, or ``auto`` for this machine) and hands on a
:class:`~aimc.check.catalog.Hardware` profile plus how many GPUs are available. For ``auto`` it
runs detection (:mod:`aimc.detect`), matches each GPU to a profile by PCI device id and,
for a GPU no profile knows, derives a generic profile from its vendor, architecture and
memory (and says so). The visible GPUs' device ids, and those detection reports as busy,
are handed on too: the plan names the GPUs it uses (:func:`aimc.app.pipeline.for_target`), and a
GPU count left open on this machine fills only the free ones (:mod:`aimc.plan.policy`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aimc.check.catalog import Catalog
from aimc.core.digest import sha256
from aimc.core.errors import ConfigError, GPUDetectionError
from aimc.core.loader import Document
from aimc.domain.recipe import Hardware, RecipeRoot
from aimc.vendors import vendor

if TYPE_CHECKING:
    from aimc.detect import GPU, Detection

__all__ = [
    "Target",
    "busy_gpus",
    "generic_profile",
    "match_profiles",
    "resolve_target",
]


class Target:
    """The hardware a plan is made for, never changed (a plain class: a dataclass costs each
    start-up ~0.6 ms; read by attribute only, never compared, hashed, printed or replaced).

    Attributes:
        hardware: The profile (from the catalog, or derived for an unknown GPU).
        available_gpus: GPUs visible on this machine (None for a named target).
        notes: What detection decided and why.
        detection: The detection behind ``auto`` (None for a named target).
        busy: One line per visible GPU that detection reports busy (less than 90% of its
            memory free, :data:`aimc.detect.base.BUSY_FRACTION`): not counted when the GPU
            count is left open.
        devices: The visible GPUs' device ids (as the vendor tool numbers them), in the
            order the runtimes number them; empty for a named target.
        busy_devices: The device ids of the busy ones.
        narrowed: Visibility variables hide some GPUs, or choose their order.
    """

    __slots__ = (
        "available_gpus",
        "busy",
        "busy_devices",
        "detection",
        "devices",
        "hardware",
        "narrowed",
        "notes",
    )

    def __init__(
        self,
        hardware: Hardware,
        available_gpus: int | None = None,
        notes: list[str] | None = None,
        detection: Detection | None = None,
        busy: tuple[str, ...] = (),
        devices: tuple[int, ...] = (),
        busy_devices: tuple[int, ...] = (),
        narrowed: bool = False,
    ) -> None:
        self.hardware = hardware
        self.available_gpus = available_gpus
        self.notes: list[str] = [] if notes is None else notes
        self.detection = detection
        self.busy = busy
        self.devices = devices
        self.busy_devices = busy_devices
        self.narrowed = narrowed

    @property
    def free_gpus(self) -> int | None:
        """Visible GPUs that are not busy (None for a named target or no GPU)."""
        return None if self.available_gpus is None else self.available_gpus - len(self.busy)


def match_profiles(gpus: Sequence[GPU], catalog: Catalog) -> list[str | None]:
    """For each GPU, the catalog profile whose PCI device ids include its device id."""
    by_id: dict[tuple[str, str], str] = {}
    for hw in catalog.all_hardware():
        for device in hw.data.get("pci_device_ids", []):
            by_id.setdefault((hw.data["vendor"], device.lower()), hw.name)
    return [by_id.get((g.vendor, (g.device_id or "").lower())) for g in gpus]


def generic_profile(gpus: Sequence[GPU]) -> Hardware:
    """A profile derived from detected GPUs that no shipped or user profile matches."""
    first = gpus[0]
    maker = vendor(first.vendor)
    arch = first.architecture or (first.device_id or "unknown").replace("0x", "dev")
    totals = [g.memory_total_mib for g in gpus if g.memory_total_mib]
    memory = round(min(totals) / 1024, 1) if totals else 1.0
    data: dict[str, Any] = {
        "apiVersion": "aimc/v1",
        "kind": "HardwareProfile",
        "name": f"generic-{first.vendor}-{arch}",
        "description": f"{first.model} (derived from detection: no profile matches device "
        f"{first.device_id})",
        "vendor": first.vendor,
        "architecture": arch,
        "memory_gib": memory,
        "gpus_per_node": len(gpus),
        "precisions": maker.precisions(first.architecture or ""),
        **copy.deepcopy(dict(maker.defaults)),
    }
    text = json.dumps(data, sort_keys=True).encode()
    doc = Document(path="<detected>", data=data, sha256=sha256(text).hexdigest())
    return Hardware(doc, RecipeRoot(Path("."), "detected"))


def _describe(gpus: Sequence[GPU]) -> str:
    return f"{len(gpus)} x {gpus[0].model}"


def busy_gpus(gpus: Sequence[GPU]) -> list[GPU]:
    """The GPUs detection reports as busy: less than :data:`~aimc.detect.base.BUSY_FRACTION`
    of their memory free (a GPU whose free memory is unknown counts as free)."""
    # Deferred on purpose: detection is imported only when --target auto detects, so that
    # compiling for a named target does not import it.
    from aimc.detect.base import BUSY_FRACTION

    return [
        g
        for g in gpus
        if g.memory_total_mib
        and g.memory_free_mib is not None
        and g.memory_free_mib < BUSY_FRACTION * g.memory_total_mib
    ]


def _busy_line(gpu: GPU) -> str:
    total, free = gpu.memory_total_mib or 0, gpu.memory_free_mib or 0
    return f"GPU {gpu.index} ({free / 1024:.1f} of {total / 1024:.1f} GiB free)"


def local_target(catalog: Catalog, detection: Detection, gpus_required: bool) -> Target:
    """The profile for this machine's visible GPUs.

    Args:
        gpus_required: The caller makes a plan for this machine (``launch``, ``compile``,
            the Python API): without a GPU that is an error, never a silent fallback to the
            ``cpu`` profile. False for the commands that only describe this machine
            (``debug gpu-info``, ``show-config``'s list of every target): they get the
            ``cpu`` profile with ``available_gpus`` None and a note saying no GPU was found.

    Raises:
        GPUDetectionError: GPUs were required but none was detected.
        ConfigError: The machine mixes GPU models (choose one with ``--target``).
    """
    if not detection.gpus:
        return _no_gpu(catalog, detection, gpus_required)
    hw, gpus, note = _profile(catalog, detection.gpus)
    busy = busy_gpus(gpus)
    notes = [note]
    if busy:
        n = len(busy)
        notes.append(
            f"{n} of {len(gpus)} visible GPUs {'is' if n == 1 else 'are'} busy: "
            + ", ".join(_busy_line(g) for g in busy)
            + "; a GPU count left open uses only the free ones, a GPU count given the free "
            "ones first"
        )
    return Target(
        hw,
        len(gpus),
        notes,
        detection,
        busy=tuple(_busy_line(g) for g in busy),
        devices=tuple(g.index for g in gpus),
        busy_devices=tuple(g.index for g in busy),
        narrowed=bool(detection.visibility or detection.hidden),
    )


def _no_gpu(catalog: Catalog, detection: Detection, gpus_required: bool) -> Target:
    """No GPU detected: an error when GPUs are required, else the ``cpu`` profile with a
    note (see :func:`local_target`)."""
    targets = ", ".join(n for n in catalog.hardware_names() if n != "cpu")
    if gpus_required:
        tried = "; ".join(f"{p.method}: {p.status} ({p.detail})" for p in detection.probes)
        raise GPUDetectionError(
            "no GPU detected on this machine, so --target auto has nothing to use",
            hint="see what detection tried with 'aim-engine debug gpu-info --detailed', "
            f"or name a hardware profile with --target NAME ({targets}; cpu serves on "
            "this machine's CPU)",
            details=tried,
        )
    note = f"no GPU detected: name a target with --target NAME ({targets}, cpu)"
    return Target(catalog.hardware("cpu"), None, [note], detection)


def _profile(catalog: Catalog, detected: Sequence[GPU]) -> tuple[Hardware, list[GPU], str]:
    """The profile of the detected GPUs (all one model: a catalog profile, else one derived
    from detection), the GPUs, and the note that says which.

    Raises:
        ConfigError: The machine mixes GPU models.
    """
    names = match_profiles(detected, catalog)
    groups: dict[str, list[GPU]] = {}
    for gpu, name in zip(detected, names, strict=True):
        key = name or f"unknown {gpu.vendor} {gpu.device_id} ({gpu.model})"
        groups.setdefault(key, []).append(gpu)
    if len(groups) > 1:
        found = ", ".join(f"{_describe(g)} ({k})" for k, g in groups.items())
        raise ConfigError(
            f"this machine has different GPU models: {found}",
            hint="choose one with --target NAME (and limit the GPUs with "
            "CUDA_VISIBLE_DEVICES / ROCR_VISIBLE_DEVICES)",
        )
    ((key, gpus),) = groups.items()
    if names[0] is None:
        hw = generic_profile(gpus)
        return (
            hw,
            gpus,
            (
                f"detected {_describe(gpus)}, device {gpus[0].device_id}: no profile matches; "
                f"using derived profile {hw.name} ({hw.data['memory_gib']} GiB per GPU)"
            ),
        )
    return catalog.hardware(key), gpus, f"detected {_describe(gpus)}: target {key}"


def resolve_target(catalog: Catalog, target: str, gpus_required: bool = False) -> Target:
    """The :class:`Target` for ``--target`` (``auto`` detects this machine; see
    :func:`local_target` for ``gpus_required``)."""
    if target != "auto":
        return Target(catalog.hardware(target))
    from aimc.detect import detect

    return local_target(catalog, detect(), gpus_required)
