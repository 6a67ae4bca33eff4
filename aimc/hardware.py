"""Hardware stage: which hardware profile a request compiles for.

Takes ``--target`` (a profile name, or ``auto`` for this machine) and hands on a profile
name from the catalog.
"""

from __future__ import annotations

import os
import shutil

from aimc.catalog import Catalog
from aimc.errors import GPUDetectionError

__all__ = ["target_name"]


def target_name(catalog: Catalog, target: str) -> str:
    """The hardware profile for ``target``; ``auto`` looks at this machine.

    Raises:
        ConfigError: Unknown profile name (with "did you mean").
        GPUDetectionError: GPUs are present but cannot be matched to a profile.
    """
    if target != "auto":
        return catalog.hardware(target).name
    if os.path.exists("/dev/kfd") or shutil.which("nvidia-smi"):
        raise GPUDetectionError(
            "GPUs are present but their model was not detected",
            hint="name the target, e.g. --target mi300x",
        )
    return "cpu"
