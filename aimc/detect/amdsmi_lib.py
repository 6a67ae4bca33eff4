"""AMD GPUs through the ``amdsmi`` Python library (ROCm's ``amd_smi`` bindings).

Reads, per processor handle, ``amdsmi_get_gpu_asic_info`` (``market_name``, ``device_id``,
``target_graphics_version``) and the VRAM total and usage in bytes. ``device_id`` may be an
int or a hex/decimal string; a ``target_graphics_version`` that is not ``gfx...`` (older
ROCm, ``N/A``) leaves the architecture unknown. The library is imported only when this
method runs; importing it fails with ImportError, or OSError when ``libamd_smi.so`` is
missing: both mean unavailable.
"""

from __future__ import annotations

import contextlib

from aimc.detect.base import GPU, Context, Failed, Method, Unavailable, hex_id

__all__ = ["METHOD", "probe"]

NAME = "amdsmi"


def probe(context: Context) -> list[GPU]:
    """The GPUs the library reports, numbered in its handle order."""
    try:
        import amdsmi  # type: ignore[import-not-found]
    except Exception as exc:  # ImportError, or OSError when libamd_smi.so is missing
        raise Unavailable(f"not importable ({type(exc).__name__})") from None
    try:
        amdsmi.amdsmi_init()
    except Exception as exc:
        raise Failed(f"amdsmi_init failed: {exc}") from None
    gpus = []
    try:
        for i, handle in enumerate(amdsmi.amdsmi_get_processor_handles()):
            asic = amdsmi.amdsmi_get_gpu_asic_info(handle)
            vram = amdsmi.AmdSmiMemoryType.VRAM
            total = amdsmi.amdsmi_get_gpu_memory_total(handle, vram)
            used = amdsmi.amdsmi_get_gpu_memory_usage(handle, vram)
            arch = asic.get("target_graphics_version")
            gpus.append(
                GPU(
                    index=i,
                    vendor="amd",
                    model=str(asic.get("market_name") or "AMD GPU"),
                    architecture=arch if isinstance(arch, str) and arch.startswith("gfx") else None,
                    device_id=hex_id(asic.get("device_id")),
                    memory_total_mib=int(total) // 2**20 if total else None,
                    memory_free_mib=(int(total) - int(used)) // 2**20 if total else None,
                    uuid=None,
                    source=NAME,
                )
            )
    except Exception as exc:
        raise Failed(f"query failed: {type(exc).__name__}: {exc}") from None
    finally:
        with contextlib.suppress(Exception):
            amdsmi.amdsmi_shut_down()
    return gpus


METHOD = Method(NAME, "amd", probe)
