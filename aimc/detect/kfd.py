"""AMD GPUs from the amdgpu driver's KFD topology in sysfs, needing no ROCm tools.

Reads ``<root>/N/properties`` for each numeric node ``N`` (in numeric order), where
``root`` is ``/sys/class/kfd/kfd/topology/nodes`` or ``AIMC_KFD_TOPOLOGY``. The files are
``name value`` lines; only integer values are used. A node with ``simd_count`` and
``gfx_target_version`` above zero is a GPU (the others are CPUs); its architecture comes
from ``gfx_target_version`` (major*10000 + minor*100 + step), its memory from the
``mem_banks/*/properties`` of heap type 1 or 2 (``size_in_bytes``) and their
``used_memory``, and its UUID from ``unique_id``. A node the container may not read
(PermissionError) is left out.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from aimc.detect.base import GPU, Context, Failed, Method, Unavailable, hex_id

__all__ = ["METHOD", "gfx_name", "probe", "read_properties"]

NAME = "kfd"


def gfx_name(target_version: int) -> str:
    """KFD ``gfx_target_version`` (major*10000 + minor*100 + step) -> ``gfx942``."""
    major, rest = divmod(target_version, 10000)
    minor, step = divmod(rest, 100)
    return f"gfx{major}{minor:x}{step:x}"


def read_properties(path: Path) -> dict[str, int]:
    """The integer entries of a KFD ``properties`` file."""
    props = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            props[name] = int(value)
    return props


def probe(context: Context) -> list[GPU]:
    """The GPU nodes of the topology, numbered in node order as the runtimes do."""
    root = context.kfd_root
    base = Path(root)
    if not base.is_dir():
        raise Unavailable(f"{root} not found (no amdgpu driver)")
    nodes = sorted((p for p in base.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    gpus: list[GPU] = []
    for node in nodes:
        try:
            props = read_properties(node / "properties")
        except PermissionError:
            continue  # a GPU the container's device cgroup does not allow
        except OSError as exc:
            raise Failed(f"cannot read {node / 'properties'}: {exc.strerror}") from None
        if props.get("simd_count", 0) <= 0 or props.get("gfx_target_version", 0) <= 0:
            continue  # CPU node
        total = used = 0
        for bank in sorted((node / "mem_banks").glob("*")):
            try:
                bank_props = read_properties(bank / "properties")
            except OSError:
                continue
            if bank_props.get("heap_type") in (1, 2):
                total += bank_props.get("size_in_bytes", 0)
                with contextlib.suppress(OSError, ValueError):
                    used += int((bank / "used_memory").read_text().strip() or 0)
        unique = props.get("unique_id", 0)
        device = hex_id(props.get("device_id"))
        gpus.append(
            GPU(
                index=len(gpus),
                vendor="amd",
                model=f"AMD GPU {device}",
                architecture=gfx_name(props["gfx_target_version"]),
                device_id=device,
                memory_total_mib=total // 2**20 if total else None,
                memory_free_mib=(total - used) // 2**20 if total else None,
                uuid=f"GPU-{unique:016X}" if unique else None,
                source=NAME,
            )
        )
    return gpus


METHOD = Method(NAME, "amd", probe)
