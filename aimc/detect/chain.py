"""The detection chain: every method in the order of trust, then visibility and warnings.

Reads nothing itself: it walks :func:`methods` (each registered vendor's
:attr:`~aimc.vendors.Vendor.detection`, by name in :data:`DETECTORS`), asking each method
of a vendor in turn until one finds GPUs (the rest of that vendor's methods are recorded
as ``skipped``), and records every outcome as a :class:`~aimc.detect.base.Probe`. A
method that is not installed is ``unavailable``; one that crashes, hangs or prints
garbage is ``failed`` (with a warning) and the next one is tried. Then it applies the
visibility variables and warns about hidden and busy GPUs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from aimc.core.errors import ConfigError
from aimc.core.registry import Registry
from aimc.detect.amd_smi import METHOD as AMD_SMI
from aimc.detect.amdsmi_lib import METHOD as AMDSMI_LIB
from aimc.detect.base import BUSY_FRACTION, GPU, Context, Detection, Failed, Method, Probe
from aimc.detect.kfd import METHOD as KFD
from aimc.detect.nvidia_smi import METHOD as NVIDIA_SMI
from aimc.detect.nvml import METHOD as NVML
from aimc.detect.rocm_smi import METHOD as ROCM_SMI
from aimc.detect.visibility import variables_set, visible
from aimc.vendors import VENDORS

__all__ = ["DETECTORS", "detect", "methods", "walk"]

#: Every detection method by name: the built-in ones are registered here, a program or
#: test may add its own (``DETECTORS.add``); a vendor names its own, most trusted first.
DETECTORS: Registry[Method] = Registry("detection method")
for _method in (AMDSMI_LIB, AMD_SMI, ROCM_SMI, KFD, NVML, NVIDIA_SMI):
    DETECTORS.add(_method)


def methods() -> tuple[Method, ...]:
    """Every registered vendor's detection methods, vendor by vendor in registration order
    (AMD GPUs are numbered before NVIDIA ones), each vendor's most trusted first: a
    vendor's later methods run only when the earlier ones found nothing.

    Raises:
        ConfigError: A vendor names a method no module registered.
    """
    for v in VENDORS.values():
        unknown = [n for n in v.detection if n not in DETECTORS]
        if unknown:
            raise ConfigError(
                f"vendor {v.name!r} names unknown detection method {unknown[0]!r} "
                f"(aimc knows: {', '.join(DETECTORS)})"
            )
    return tuple(DETECTORS[n] for v in VENDORS.values() for n in v.detection)


def walk(
    methods: Sequence[Method], context: Context, probes: list[Probe], warnings: list[str]
) -> dict[str, list[GPU]]:
    """Run ``methods`` in order; each vendor's GPUs from its first method that found any."""
    found: dict[str, list[GPU]] = {m.vendor: [] for m in methods}
    for method in methods:
        name = method.name
        if found[method.vendor]:
            probes.append(Probe(name, "skipped", "an earlier method answered"))
            continue
        try:
            gpus = method.probe(context)
        except LookupError as exc:  # Unavailable
            probes.append(Probe(name, "unavailable", str(exc)))
            continue
        except Failed as exc:
            probes.append(Probe(name, "failed", str(exc)))
            warnings.append(f"{name} failed: {exc}")
            continue
        except Exception as exc:  # a broken tool must not break aimc
            probes.append(Probe(name, "failed", f"{type(exc).__name__}: {exc}"))
            warnings.append(f"{name} failed: {type(exc).__name__}")
            continue
        if gpus:
            probes.append(Probe(name, "found", f"{len(gpus)} GPU{'s' if len(gpus) != 1 else ''}"))
            found[method.vendor] = gpus
        else:
            probes.append(Probe(name, "none", "ran, reported no GPUs"))
    return found


def detect(environ: Mapping[str, str] | None = None) -> Detection:
    """Detect this machine's GPUs (never raises for a broken or missing tool)."""
    env = os.environ if environ is None else environ
    probes: list[Probe] = []
    warnings: list[str] = []
    found = walk(methods(), Context.from_environ(env), probes, warnings)
    visible_gpus = [gpu for vendor, gpus in found.items() for gpu in visible(gpus, vendor, env)]
    hidden = sum(len(gpus) for gpus in found.values()) - len(visible_gpus)
    visibility = variables_set(env)
    if hidden:
        warnings.append(
            f"{hidden} GPU{'s are' if hidden != 1 else ' is'} hidden by "
            + ", ".join(f"{k}={v!r}" for k, v in visibility.items())
        )
    for gpu in visible_gpus:
        total, free = gpu.memory_total_mib, gpu.memory_free_mib
        if total and free is not None and free < BUSY_FRACTION * total:
            warnings.append(
                f"GPU {gpu.index} ({gpu.model}) is busy: {free / 1024:.1f} of "
                f"{total / 1024:.1f} GiB free; another process may hold its memory"
            )
    return Detection(
        gpus=visible_gpus, probes=probes, warnings=warnings, hidden=hidden, visibility=visibility
    )
