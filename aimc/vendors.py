"""Vendors: what aimc knows of each kind of accelerator, registered in one place.

A :class:`Vendor` says how Kubernetes asks for its devices (the device plugin's resource),
what a profile derived for one of its GPUs runs in (container settings and the vLLM image
of the shipped profiles) and which precisions a GPU architecture of it serves. Detection,
the derived profiles, the Kubernetes emitter and the importers ask here; a vendor that is
not registered is an error, never another vendor's defaults. The hardware schema's
``vendor`` enum is the registered names (``tests/test_vendors.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aimc.core.errors import ConfigError
from aimc.core.registry import Registry

__all__ = ["VENDORS", "Vendor", "gpu_vendors", "names", "register", "vendor"]


@dataclass(frozen=True)
class Vendor:
    """One kind of accelerator.

    Attributes:
        name: The hardware profiles' ``vendor`` value.
        device_resource: The Kubernetes device plugin's resource a pod requests its GPUs
            by (None: a machine without GPUs).
        precisions: Architecture (``gfx942``, ``sm90``; "" when unknown) -> the precisions
            a GPU of it serves, for a GPU no profile describes.
        defaults: What a derived profile of its GPUs runs in (``container``, ``backends``).
    """

    name: str
    device_resource: str | None
    precisions: Callable[[str], list[str]]
    defaults: Mapping[str, Any] = field(default_factory=dict)


#: The registered vendors by name.
VENDORS: Registry[Vendor] = Registry("vendor")


def register(entry: Vendor) -> Vendor:
    """Add a vendor (a name already taken is refused).

    Raises:
        ValueError: The name is taken.
    """
    return VENDORS.add(entry)


def vendor(name: str) -> Vendor:
    """The vendor called ``name``.

    Raises:
        ConfigError: No vendor has that name.
    """
    if name not in VENDORS:
        raise ConfigError(f"unknown GPU vendor {name!r} (aimc knows: {', '.join(VENDORS)})")
    return VENDORS[name]


def names() -> tuple[str, ...]:
    """Every registered vendor's name: the hardware schema's ``vendor`` enum."""
    return tuple(VENDORS)


def gpu_vendors() -> tuple[str, ...]:
    """The vendors whose machines have GPUs (a device resource to request)."""
    return tuple(n for n, v in VENDORS.items() if v.device_resource)


def _amd_precisions(arch: str) -> list[str]:
    # As the shipped profiles of the same architectures say: MXFP4 and FP8 from gfx942.
    if arch in ("gfx942", "gfx950"):
        return ["bf16", "fp16", "fp8", "int8", "int4", "mxfp4"]
    return ["bf16", "fp16", "int8", "int4"]


def _nvidia_precisions(arch: str) -> list[str]:
    # NVFP4 from sm100, MXFP4 from sm90, bf16 and FP8 from sm80 (weight-only below sm89:
    # vLLM's Marlin kernels), as the shipped profiles say.
    sm = int(arch[2:]) if arch.startswith("sm") and arch[2:].isdigit() else 0
    if sm >= 100:
        return ["bf16", "fp16", "fp8", "int8", "int4", "mxfp4", "nvfp4"]
    if sm >= 90:
        return ["bf16", "fp16", "fp8", "int8", "int4", "mxfp4"]
    if sm >= 80:
        return ["bf16", "fp16", "fp8", "int8", "int4"]
    return ["fp16", "int8", "int4"]


register(
    Vendor(
        "amd",
        "amd.com/gpu",
        _amd_precisions,
        {
            "container": {
                "runtime": "rocm",
                "devices": ["/dev/kfd", "/dev/dri"],
                "group_add": ["video"],
                "security_opt": ["seccomp=unconfined"],
                "ipc": "host",
                "shm_size": "16g",
            },
            "backends": {"vllm": {"image": "vllm/vllm-openai-rocm:v0.32.0"}},
        },
    )
)
register(
    Vendor(
        "nvidia",
        "nvidia.com/gpu",
        _nvidia_precisions,
        {
            "container": {"runtime": "cuda", "gpu_reservation": True, "ipc": "host"},
            "backends": {"vllm": {"image": "vllm/vllm-openai:v0.32.0"}},
        },
    )
)
register(Vendor("cpu", None, lambda arch: []))
