"""GPU detection: which GPUs this machine has, and how we know.

Takes the machine (tools on PATH, Python libraries, sysfs, visibility variables) and hands
on a :class:`Detection`: the visible GPUs, a record of every method tried, and warnings.
The only stage besides the runner that looks at the machine; it never raises for a broken
tool: a method that crashes, hangs (timeout) or prints garbage is recorded as failed and
the next one is tried.

Order of trust (:func:`~aimc.detect.chain.methods`: each vendor's
:attr:`~aimc.vendors.Vendor.detection`), each tried only when the ones before gave nothing:

- AMD: the ``amdsmi`` Python library; the ``amd-smi`` CLI (``--json``); ``rocm-smi``
  (``--json``); the KFD sysfs topology (``/sys/class/kfd/kfd/topology/nodes``).
- NVIDIA: NVML through ``nvidia-ml-py`` (``pynvml``); ``nvidia-smi --query-gpu``.

Visibility: ``ROCR_VISIBLE_DEVICES`` then ``HIP_VISIBLE_DEVICES`` (else
``CUDA_VISIBLE_DEVICES``) for AMD, ``CUDA_VISIBLE_DEVICES`` for NVIDIA, with the runtimes'
rules (an empty ROCR/CUDA value hides every GPU; an empty HIP value is ignored; the first
invalid entry ends the list).

Layout: :mod:`~aimc.detect.base` (results, the :class:`Method` interface, shared helpers),
one module per method (:mod:`~aimc.detect.amdsmi_lib`, :mod:`~aimc.detect.amd_smi`,
:mod:`~aimc.detect.rocm_smi`, :mod:`~aimc.detect.kfd`, :mod:`~aimc.detect.nvml`,
:mod:`~aimc.detect.nvidia_smi`), :mod:`~aimc.detect.visibility` and
:mod:`~aimc.detect.chain`, which walks :func:`~aimc.detect.chain.methods`.
"""

from __future__ import annotations

from aimc.detect import amd_smi, base, kfd, visibility
from aimc.detect.base import (
    BUSY_FRACTION,
    DEFAULT_TIMEOUT,
    GPU,
    KFD_TOPOLOGY,
    Context,
    Detection,
    Failed,
    Method,
    Probe,
    Unavailable,
)
from aimc.detect.chain import DETECTORS, detect, methods
from aimc.detect.kfd import gfx_name

__all__ = [
    "BUSY_FRACTION",
    "DEFAULT_TIMEOUT",
    "DETECTORS",
    "GPU",
    "KFD_TOPOLOGY",
    "Context",
    "Detection",
    "Failed",
    "Method",
    "Probe",
    "Unavailable",
    "detect",
    "gfx_name",
    "methods",
]

# The shared helpers under their names in the single-module aimc.detect this replaced.
_Failed = Failed
_run = base.run
_json = base.parse_json
_hex_id = base.hex_id
_mib = base.mib
_records = amd_smi.records
_properties = kfd.read_properties
_filter = visibility.apply_list
_visible = visibility.visible
