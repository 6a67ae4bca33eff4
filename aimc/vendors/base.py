"""The :class:`Vendor` record, the registry of vendors and the lookups everything else uses.

A :class:`Vendor` holds all that aimc asks of a kind of accelerator: how Kubernetes asks
for its devices (the device plugin's resource), what a profile derived for one of its GPUs
runs in (container settings and the vLLM image of the shipped profiles), which precisions
a GPU architecture of it serves, which detection methods find its GPUs and which variables
narrow them, how a launch hands the engine its devices, and how a container reserves them.
Each vendor is one module of :mod:`aimc.vendors` that calls :func:`register`; detection,
the derived profiles, the emitters, the plan and the importers ask here. A vendor that is
not registered is an error, never another vendor's defaults. The hardware schema's
``vendor`` enum is the registered names (``tests/test_vendors.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aimc.core.errors import ConfigError
from aimc.core.registry import Registry

__all__ = [
    "VENDORS",
    "Vendor",
    "Visibility",
    "gpu_vendors",
    "names",
    "register",
    "runtimes",
    "vendor",
    "visibility_variables",
]


class Visibility:
    """One step by which a vendor's runtimes narrow the GPUs a process sees, never changed
    (a plain class: a dataclass costs each start-up ~0.6 ms; read by attribute only).

    Attributes:
        variables: The step's variables, first wins: the first one set (and not empty,
            unless ``empty_hides``) narrows what the step before left; its value is a
            comma-separated list of indices or ``GPU-`` UUID prefixes.
        empty_hides: An empty value hides every GPU (else it is ignored, and the next
            variable of the step is read).
    """

    __slots__ = ("empty_hides", "variables")

    def __init__(self, variables: tuple[str, ...], empty_hides: bool = True) -> None:
        self.variables = variables
        self.empty_hides = empty_hides


@dataclass(frozen=True)
class Vendor:
    """One kind of accelerator.

    Attributes:
        name: The hardware profiles' ``vendor`` value.
        device_resource: The Kubernetes device plugin's resource a pod requests its GPUs
            by (None: a machine without GPUs).
        precisions: Architecture (``gfx942``, ``sm90``; "" when unknown) -> the precisions
            a GPU of it serves, for a GPU no profile describes.
        defaults: What a derived profile of its GPUs runs in (``container``, ``backends``);
            its ``container.runtime`` is the hardware schema's name for its software stack.
        detection: The names of the :mod:`aimc.detect` methods that find its GPUs, most
            trusted first (a later one runs only when the earlier ones found none).
        visibility: How its runtimes narrow the detected GPUs, step by step (the caller's
            visibility variables).
        device_tool: The tool whose numbering the device ids of ``--devices`` follow
            (written in the launch script's header).
        device_env: The variable a launch hands the engine its devices in (vLLM's
            ``device_control_env_var`` of the vendor's platform); None: devices are not
            handed on.
        process_env: Variables set before ``device_env`` for a bare process.
        unset_env: The caller's variables ``launch.sh`` unsets before a bare process that
            gets ``device_env``.
        reservation: The Docker device driver a container reserves its GPUs through
            (``docker run --gpus``, Compose's ``deploy.resources.reservations.devices``),
            asked for by a profile's ``container.gpu_reservation``; the runtime then maps
            only those GPUs, numbered from 0 inside, and the container gets no
            ``device_env``. None: its containers map device nodes instead.
        kv_cache_env: The variable that sets the KV cache's size in GiB, with the size
            the fit estimate assumes when it is unset, where that replaces a fraction of
            the device's memory (a machine without GPUs); None otherwise.
    """

    name: str
    device_resource: str | None
    precisions: Callable[[str], list[str]]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    detection: tuple[str, ...] = ()
    visibility: tuple[Visibility, ...] = ()
    device_tool: str = ""
    device_env: str | None = None
    process_env: tuple[tuple[str, str], ...] = ()
    unset_env: tuple[str, ...] = ()
    reservation: str | None = None
    kv_cache_env: tuple[str, float] | None = None


#: The registered vendors by name, in registration order (the order detection numbers
#: their GPUs in).
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


def runtimes() -> tuple[str, ...]:
    """Every registered vendor's container runtime (``defaults.container.runtime``), each
    once: the hardware schema's ``container.runtime`` enum."""
    found = (v.defaults.get("container", {}).get("runtime") for v in VENDORS.values())
    return tuple(dict.fromkeys(r for r in found if r))


def visibility_variables() -> tuple[str, ...]:
    """Every registered vendor's visibility variables, each once, in the order first
    named (``ROCR_VISIBLE_DEVICES``, ``HIP_VISIBLE_DEVICES``, ``CUDA_VISIBLE_DEVICES``)."""
    found = (n for v in VENDORS.values() for step in v.visibility for n in step.variables)
    return tuple(dict.fromkeys(found))
