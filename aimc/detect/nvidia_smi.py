"""NVIDIA GPUs through the ``nvidia-smi`` command line tool (``--query-gpu``, CSV).

Runs ``nvidia-smi --format=csv,noheader,nounits --query-gpu=index,name,memory.total,
memory.free,pci.device_id,uuid,compute_cap`` and reads one ``, ``-separated line per GPU
(memory in MiB, ``pci.device_id`` as ``0xDDDDVVVV``, ``compute_cap`` as ``9.0``). Drivers
before R510 reject ``compute_cap`` (exit 2): it asks again without it, and the
architecture stays unknown. ``[N/A]`` memory and a UUID not starting with ``GPU-`` read
as unknown.
"""

from __future__ import annotations

import re
import shutil

from aimc.detect.base import GPU, Context, Failed, Method, Unavailable, mib, run

__all__ = ["METHOD", "probe"]

NAME = "nvidia-smi"


def probe(context: Context) -> list[GPU]:
    """The GPUs ``nvidia-smi`` lists, numbered by its ``index`` column."""
    tool = shutil.which("nvidia-smi")
    if not tool:
        raise Unavailable("nvidia-smi not on PATH")
    timeout = context.timeout
    fields = ["index", "name", "memory.total", "memory.free", "pci.device_id", "uuid"]
    query = [tool, "--format=csv,noheader,nounits"]
    try:
        out = run([*query, f"--query-gpu={','.join([*fields, 'compute_cap'])}"], timeout)
        with_cap = True
    except Failed as exc:
        if "timed out" in str(exc):
            raise
        # Drivers before R510 reject the compute_cap field (exit 2): ask without it.
        out = run([*query, f"--query-gpu={','.join(fields)}"], timeout)
        with_cap = False
    gpus = []
    for line in out.splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(", ")]
        if len(parts) != len(fields) + with_cap:
            raise Failed(f"unexpected line: {line[:80]!r}")
        index, name, total, free, pci, uuid = parts[:6]
        cap = parts[6] if with_cap else ""
        try:
            device = f"0x{(int(pci, 16) >> 16) & 0xFFFF:04x}"
            idx = int(index)
        except ValueError:
            raise Failed(f"unexpected line: {line[:80]!r}") from None
        arch = f"sm{cap.replace('.', '')}" if re.fullmatch(r"\d+\.\d+", cap) else None
        gpus.append(
            GPU(
                index=idx,
                vendor="nvidia",
                model=name,
                architecture=arch,
                device_id=device,
                memory_total_mib=mib(total),
                memory_free_mib=mib(free),
                uuid=uuid if uuid.startswith("GPU-") else None,
                source=NAME,
            )
        )
    return gpus


METHOD = Method(NAME, "nvidia", probe)
