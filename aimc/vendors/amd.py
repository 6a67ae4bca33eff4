"""AMD Instinct GPUs (ROCm) as aimc targets them.

- Kubernetes: the ROCm device plugin's ``amd.com/gpu``.
- Containers: AMD's vLLM Docker guide (``/dev/kfd``, ``/dev/dri``, group ``video``,
  unconfined seccomp); no Docker device reservation, so ``CUDA_VISIBLE_DEVICES`` narrows
  the GPUs inside, the whole ``/dev/dri`` mapped. AMD's container guide narrows a
  container by mapping only the chosen ``/dev/dri/renderD<minor>`` nodes (ROCm install
  guide, "Restricting GPU access"). Not chosen: the minors are a property of the machine,
  not ``128 + index`` (the driver creates 8 render nodes per MI300A/MI300X, so GPU 1 is
  renderD136: ROCm rocDecode pull request 38), so artifacts compiled for a named target
  could not name them; and vLLM reads the ids as physical ids for amdsmi, which
  visibility variables do not renumber (vllm/platforms/rocm.py), so the container keeps
  the host's numbering. ROCm's "GPU isolation techniques" gives the variables for a
  program's own choice of GPUs (device nodes are for isolating untrusted programs).
- Visibility: ``ROCR_VISIBLE_DEVICES`` first (an empty value hides every GPU), then
  ``HIP_VISIBLE_DEVICES``, else ``CUDA_VISIBLE_DEVICES``, on what ROCr left, numbered anew
  (an empty HIP or CUDA value is ignored).
- Launch: vLLM 0.32's ROCm platform reads its devices from ``CUDA_VISIBLE_DEVICES``
  (``device_control_env_var`` in vllm/platforms/rocm.py; HIP reads it as
  ``HIP_VISIBLE_DEVICES``), holding device ids as amd-smi numbers them. A bare process has
  the caller's ``ROCR_VISIBLE_DEVICES`` and ``HIP_VISIBLE_DEVICES`` unset: ROCr would
  number the GPUs anew under it, and vLLM refuses a ``HIP_VISIBLE_DEVICES`` that differs
  from ``CUDA_VISIBLE_DEVICES`` (``_sync_hip_cuda_env_vars`` there).
"""

from __future__ import annotations

from aimc.vendors.base import Vendor, Visibility, register

__all__ = ["AMD"]


def _precisions(arch: str) -> list[str]:
    # As the shipped profiles of the same architectures say: MXFP4 and FP8 from gfx942.
    if arch in ("gfx942", "gfx950"):
        return ["bf16", "fp16", "fp8", "int8", "int4", "mxfp4"]
    return ["bf16", "fp16", "int8", "int4"]


AMD = register(
    Vendor(
        name="amd",
        device_resource="amd.com/gpu",
        precisions=_precisions,
        defaults={
            "container": {
                "runtime": "rocm",
                "devices": ["/dev/kfd", "/dev/dri"],
                "group_add": ["video"],
                "security_opt": ["seccomp=unconfined"],
                "ipc": "host",
                "shm_size": "16g",
            },
            "backends": {"vllm": {"image": "vllm/vllm-openai-rocm:v0.32.0"}},
        },
        detection=("amdsmi", "amd-smi", "rocm-smi", "kfd"),
        visibility=(
            Visibility(("ROCR_VISIBLE_DEVICES",)),
            Visibility(("HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"), empty_hides=False),
        ),
        device_tool="amd-smi",
        device_env="CUDA_VISIBLE_DEVICES",
        unset_env=("ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES"),
    )
)
