"""AMD GPUs through the older ``rocm-smi`` command line tool (``--json``).

Runs ``rocm-smi --showproductname --showmeminfo vram --showid --json`` and reads its one
shape: an object with a ``cardN`` entry per GPU (other keys, such as ``system``, are
ignored) holding ``Card Series`` / ``Card series`` / ``Device Name``, ``Device ID`` (or
``GPU ID`` in older releases) and ``VRAM Total Memory (B)`` / ``VRAM Total Used Memory
(B)`` in bytes. ``GFX Version`` (ROCm 6.2 on) is not used: it misprints gfx90a as
gfx9010, so the architecture stays unknown.
"""

from __future__ import annotations

import re
import shutil

from aimc.detect.base import GPU, Context, Failed, Method, Unavailable, hex_id, mib, parse_json, run

__all__ = ["METHOD", "probe"]

NAME = "rocm-smi"


def probe(context: Context) -> list[GPU]:
    """The GPUs ``rocm-smi`` lists, numbered by their ``cardN`` keys."""
    tool = shutil.which("rocm-smi")
    if not tool:
        raise Unavailable("rocm-smi not on PATH")
    data = parse_json(
        run(
            [tool, "--showproductname", "--showmeminfo", "vram", "--showid", "--json"],
            context.timeout,
        )
    )
    if not isinstance(data, dict):
        raise Failed("unexpected JSON layout")
    cards = sorted(
        (
            (int(k[4:]), v)
            for k, v in data.items()
            if re.fullmatch(r"card\d+", k) and isinstance(v, dict)
        )
    )
    gpus = []
    for index, card in cards:
        total = mib(card.get("VRAM Total Memory (B)"))
        used = mib(card.get("VRAM Total Used Memory (B)"))
        device = hex_id(card.get("Device ID", card.get("GPU ID")))
        model = card.get("Card Series") or card.get("Card series") or card.get("Device Name")
        # "GFX Version" exists only from ROCm 6.2 and misprints gfx90a as gfx9010: unused.
        gpus.append(
            GPU(
                index=index,
                vendor="amd",
                model=str(model or "AMD GPU"),
                architecture=None,
                device_id=device,
                memory_total_mib=total // 2**20 if total else None,
                memory_free_mib=(total - used) // 2**20 if total and used is not None else None,
                uuid=None,
                source=NAME,
            )
        )
    return gpus


METHOD = Method(NAME, "amd", probe)
