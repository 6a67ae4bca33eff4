"""AMD GPUs through the ``amd-smi`` command line tool (``--json``).

Runs ``amd-smi static --asic --vram --json`` for the facts and ``amd-smi metric
--mem-usage --json`` for free memory (a failing metric call only loses free memory).
Understands the JSON shapes of:

- ROCm 6.0: one GPU as a bare object; no ``target_graphics_version`` (architecture
  unknown); VRAM size as ``vram.size`` or ``vram.vram_size_mb``.
- ROCm 6.1-6.4: a list of objects, one per GPU, each with ``gpu``, ``asic`` and ``vram``.
- ROCm 7.x: ``{"gpu_data": [...]}`` around the same objects.

Sizes come as ``{"value": N, "unit": "MB"}`` (really MiB) or plain numbers; some builds
print warnings before the JSON, which are skipped.
"""

from __future__ import annotations

import shutil
from typing import Any

from aimc.detect.base import GPU, Context, Failed, Method, Unavailable, hex_id, mib, parse_json, run

__all__ = ["METHOD", "probe", "records"]

NAME = "amd-smi"


def records(data: Any) -> list[dict[str, Any]]:
    """amd-smi JSON in any of its shapes -> one dict per GPU."""
    if isinstance(data, dict) and "gpu_data" in data:
        data = data["gpu_data"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise Failed("unexpected JSON layout")
    return data


def probe(context: Context) -> list[GPU]:
    """The GPUs ``amd-smi static`` lists, with free memory from ``amd-smi metric``."""
    tool = shutil.which("amd-smi")
    if not tool:
        raise Unavailable("amd-smi not on PATH")
    timeout = context.timeout
    static = records(parse_json(run([tool, "static", "--asic", "--vram", "--json"], timeout)))
    free: dict[int, int | None] = {}
    try:
        metric = records(parse_json(run([tool, "metric", "--mem-usage", "--json"], timeout)))
        for rec in metric:
            usage = rec.get("mem_usage", {})
            free[int(rec.get("gpu", -1))] = mib(usage.get("free_vram"))
    except Failed:
        pass  # free memory is a nicety; static facts are enough to match a profile
    gpus = []
    for pos, rec in enumerate(static):
        asic = rec.get("asic")
        if not isinstance(asic, dict):
            raise Failed("no 'asic' section")
        vram = rec.get("vram", {}) if isinstance(rec.get("vram"), dict) else {}
        index = int(rec.get("gpu", pos))
        arch = asic.get("target_graphics_version")
        gpus.append(
            GPU(
                index=index,
                vendor="amd",
                model=str(asic.get("market_name") or "AMD GPU"),
                architecture=arch if isinstance(arch, str) and arch.startswith("gfx") else None,
                device_id=hex_id(asic.get("device_id")),
                memory_total_mib=mib(vram.get("size", vram.get("vram_size_mb"))),
                memory_free_mib=free.get(index),
                uuid=None,
                source=NAME,
            )
        )
    return gpus


METHOD = Method(NAME, "amd", probe)
