"""GPU vendors aimc knows, one module each, registered in one place.

:mod:`aimc.vendors.base` holds the :class:`Vendor` record, the registry and the lookups.
The built-in vendors are the modules imported below (a new vendor is one more module and
one more name here); a program or test may :func:`register` its own.
"""

from __future__ import annotations

# Registration order is the schema's enum and the order detection numbers GPUs in: AMD
# first, then NVIDIA, then the machine without GPUs.
from aimc.vendors import amd

# isort: split
from aimc.vendors import nvidia

# isort: split
from aimc.vendors import cpu

# isort: split
from aimc.vendors.base import (
    VENDORS,
    Vendor,
    Visibility,
    gpu_vendors,
    names,
    register,
    runtimes,
    vendor,
    visibility_variables,
)

__all__ = [
    "VENDORS",
    "Vendor",
    "Visibility",
    "amd",
    "cpu",
    "gpu_vendors",
    "names",
    "nvidia",
    "register",
    "runtimes",
    "vendor",
    "visibility_variables",
]
