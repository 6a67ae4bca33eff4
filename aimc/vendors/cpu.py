"""A machine without GPUs: the ``cpu`` profile serves on the host's CPU (vLLM's CPU backend).

No device to request, detect, narrow or reserve; its containers' runtime is ``cpu``
(vLLM's CPU build). The KV cache gets
``VLLM_CPU_KVCACHE_SPACE`` GiB (vLLM 0.32's CPU platform, vllm/platforms/cpu.py: it sets
``kv_cache_memory_bytes`` from it) instead of a fraction of the device's memory; the fit
estimate assumes 4 GiB when it is unset.
"""

from __future__ import annotations

from aimc.vendors.base import Vendor, register

__all__ = ["CPU"]


def _precisions(arch: str) -> list[str]:
    return []


CPU = register(
    Vendor(
        name="cpu",
        device_resource=None,
        precisions=_precisions,
        defaults={"container": {"runtime": "cpu"}},
        kv_cache_env=("VLLM_CPU_KVCACHE_SPACE", 4.0),
    )
)
