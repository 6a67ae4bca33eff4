"""NVIDIA GPUs through NVML, the driver's library, via ``nvidia-ml-py`` (``pynvml``).

Reads, per device index, its name, memory info (bytes), PCI info (``pciDeviceId``: device
id in the high 16 bits), CUDA compute capability (architecture ``smXY``) and UUID. Names
and UUIDs may come as bytes (older bindings) or str. ``pynvml`` is imported only when
this method runs; an import failure or an ``nvmlInit`` failure (no driver) means
unavailable.
"""

from __future__ import annotations

import contextlib

from aimc.detect.base import GPU, Context, Failed, Method, Unavailable

__all__ = ["METHOD", "probe"]

NAME = "nvml"


def probe(context: Context) -> list[GPU]:
    """The GPUs NVML reports, numbered by NVML index."""
    try:
        import pynvml  # type: ignore[import-not-found]
    except Exception as exc:
        raise Unavailable(f"not importable ({type(exc).__name__})") from None
    try:
        pynvml.nvmlInit()
    except Exception as exc:
        raise Unavailable(f"NVML not usable: {exc}") from None
    gpus = []
    try:
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            pci = pynvml.nvmlDeviceGetPciInfo(h)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(h)
            uuid = pynvml.nvmlDeviceGetUUID(h)
            uuid = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
            gpus.append(
                GPU(
                    index=i,
                    vendor="nvidia",
                    model=name,
                    architecture=f"sm{major}{minor}",
                    device_id=f"0x{(int(pci.pciDeviceId) >> 16) & 0xFFFF:04x}",
                    memory_total_mib=int(mem.total) // 2**20,
                    memory_free_mib=int(mem.free) // 2**20,
                    uuid=uuid,
                    source=NAME,
                )
            )
    except Exception as exc:
        raise Failed(f"query failed: {type(exc).__name__}: {exc}") from None
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()
    return gpus


METHOD = Method(NAME, "nvidia", probe)
