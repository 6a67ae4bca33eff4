"""NVIDIA GPUs (CUDA) as aimc targets them.

Facts: the device plugin's ``nvidia.com/gpu`` (NVIDIA k8s-device-plugin); a container
reserves its GPUs through the NVIDIA container runtime (``docker run --gpus``, Compose's
device reservation with ``driver: nvidia``), which maps only those, numbered from 0
inside; ``CUDA_VISIBLE_DEVICES`` narrows what a process sees (an empty value hides every
GPU) and is vLLM 0.32's ``device_control_env_var`` on CUDA (vllm/platforms/cuda.py); with
``CUDA_DEVICE_ORDER=PCI_BUS_ID`` CUDA numbers the GPUs as nvidia-smi does.
"""

from __future__ import annotations

from aimc.vendors.base import Vendor, Visibility, register

__all__ = ["NVIDIA"]


def _precisions(arch: str) -> list[str]:
    # NVFP4 from sm100, MXFP4 from sm90, bf16 and FP8 from sm80 (weight-only below sm89:
    # vLLM's Marlin kernels), as the shipped profiles say.
    sm = int(arch[2:]) if arch.startswith("sm") and arch[2:].isdigit() else 0
    if sm >= 100:
        return ["bf16", "fp16", "fp8", "int8", "int4", "mxfp4", "nvfp4"]
    if sm >= 90:
        return ["bf16", "fp16", "fp8", "int8", "int4", "mxfp4"]
    if sm >= 80:
        return ["bf16", "fp16", "fp8", "int8", "int4"]
    return ["fp16", "int8", "int4"]


NVIDIA = register(
    Vendor(
        name="nvidia",
        device_resource="nvidia.com/gpu",
        precisions=_precisions,
        defaults={
            "container": {"runtime": "cuda", "gpu_reservation": True, "ipc": "host"},
            "backends": {"vllm": {"image": "vllm/vllm-openai:v0.32.0"}},
        },
        detection=("nvml", "nvidia-smi"),
        visibility=(Visibility(("CUDA_VISIBLE_DEVICES",)),),
        device_tool="nvidia-smi",
        device_env="CUDA_VISIBLE_DEVICES",
        process_env=(("CUDA_DEVICE_ORDER", "PCI_BUS_ID"),),
        reservation="nvidia",
    )
)
