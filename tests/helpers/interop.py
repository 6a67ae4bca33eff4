"""Small collections of the formats aimc imports (AMD AIM profiles, vLLM Recipes), clean
and broken, written into a folder: the inputs of the interop and JSON output tests."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "AIM_405B_ON_ONE_GPU",
    "AIM_BROKEN_QWEN",
    "AIM_DTYPE_AUTO",
    "AIM_GENERAL",
    "AIM_GPT_OSS",
    "AIM_METADATA",
    "AIM_QWEN_FP8",
    "AIM_QWEN_FP8_THROUGHPUT",
    "AIM_QWEN_FP16_TP2",
    "AIM_STALE",
    "VR_405B",
    "VR_BROKEN_QWEN",
    "VR_QWEN",
    "VR_STALE",
    "VR_STRATEGY_TEP",
    "VR_STRATEGY_TP",
    "VR_TAXONOMY",
    "aim_broken",
    "aim_clean",
    "aim_stale",
    "line_of",
    "vllm_broken",
    "vllm_clean",
    "vllm_stale",
    "write",
]

# --- AMD AIM profiles ---------------------------------------------------------------------

AIM_QWEN_FP8 = """\
# a profile as aim-build writes them
aim_id: Qwen/Qwen3-32B
model_id: Qwen/Qwen3-32B-FP8
metadata:
  engine: vllm
  gpu: MI300X
  gpu_count: 1
  manual_selection_only: false
  metric: latency
  precision: fp8
  type: optimized
engine_args:
  async-scheduling: null
  distributed_executor_backend: mp
  gpu-memory-utilization: 0.9
  kv-cache-dtype: fp8
  max-model-len: 32768
  max-num-seqs: 512
  no-enable-prefix-caching: null
  reasoning-parser: qwen3
  tensor-parallel-size: 1
env_vars:
  HSA_NO_SCRATCH_RECLAIM: '1'
  VLLM_ROCM_USE_AITER: '1'
"""

AIM_QWEN_FP8_THROUGHPUT = AIM_QWEN_FP8.replace("metric: latency", "metric: throughput").replace(
    "max-num-seqs: 512", "max-num-seqs: 1024"
)

AIM_QWEN_FP16_TP2 = """\
aim_id: Qwen/Qwen3-32B
model_id: Qwen/Qwen3-32B
metadata:
  engine: vllm
  gpu: MI300X
  gpu_count: 2
  manual_selection_only: false
  metric: latency
  precision: fp16
  type: unoptimized
engine_args:
  dtype: float16
  max-model-len: 16384
  tensor-parallel-size: 2
env_vars:
  NCCL_MIN_NCHANNELS: '112'
"""

AIM_GENERAL = """\
metadata:
  engine: vllm
  gpu: MI300X
  gpu_count: 1
  manual_selection_only: false
  metric: latency
  precision: fp16
  type: general
engine_args:
  dtype: float16
env_vars:
  VLLM_DO_NOT_TRACK: '1'
"""

AIM_METADATA = """\
com:
  amd:
    aim:
      model:
        canonicalName: "Qwen/Qwen3-32B"
      title: "Qwen3 32B"
"""

#: The failure cases the format allows.
AIM_405B_ON_ONE_GPU = """\
aim_id: meta-llama/Llama-3.1-405B-Instruct
model_id: meta-llama/Llama-3.1-405B-Instruct
metadata:
  engine: vllm
  gpu: MI300X
  gpu_count: 1
  manual_selection_only: false
  metric: latency
  precision: fp16
  type: unoptimized
engine_args:
  max-model-len: 8192
env_vars: {}
"""

AIM_BROKEN_QWEN = """\
aim_id: Qwen/Qwen3-32B
model_id: Qwen/Qwen3-32B
metadata:
  engine: vllm
  gpu: MI250X
  gpu_count: 3
  manual_selection_only: false
  metric: latency
  precision: fp8
  type: unoptimized
engine_args:
  max-num-seqs,: 256
  quantization: ptpc_fp8
  swap-space: 16
  tensor-parallel-size: 3
env_vars:
  VLLM_USE_V1: '0'
"""


#: A profile as aim-build still ships them for vLLM 0.10-era images (issue 25): engine args
#: and variables the pinned vLLM 0.32.0 no longer reads, one renamed.
AIM_STALE = """\
aim_id: Qwen/Qwen3-32B
model_id: Qwen/Qwen3-32B-FP8
metadata:
  engine: vllm
  gpu: MI300X
  gpu_count: 1
  manual_selection_only: false
  metric: latency
  precision: fp8
  type: optimized
engine_args:
  kv-cache-dtype: fp8
  max-model-len: 32768
  max-seq-len-to-capture: 32768
  max-num-seqs: 512
  swap_space: 64
  tensor-parallel-size: 1
env_vars:
  HSA_NO_SCRATCH_RECLAIM: '1'
  VLLM_USE_AITER_TRITON_ROPE: '1'
  VLLM_V1_USE_PREFILL_DECODE_ATTENTION: '1'
  VLLM_USE_V1: '1'
"""

#: A profile whose dtype is left to the checkpoint (AIM passes --dtype auto).
AIM_DTYPE_AUTO = """\
aim_id: Qwen/Qwen3-32B
model_id: Qwen/Qwen3-32B
metadata:
  engine: vllm
  gpu: MI300X
  gpu_count: 2
  metric: latency
  precision: fp16
  type: optimized
engine_args:
  dtype: auto
  tensor-parallel-size: 2
"""

#: gpt-oss-20b in mxfp4 on one GPU of {gpu} (AIM ships MI250X ones beside MI300X ones).
AIM_GPT_OSS = """\
aim_id: openai/gpt-oss-20b
model_id: openai/gpt-oss-20b
metadata:
  engine: vllm
  gpu: {gpu}
  gpu_count: 1
  metric: latency
  precision: fp4
  type: optimized
engine_args:
  max-num-seqs: 256
env_vars:
  VLLM_ROCM_USE_AITER: '1'
"""


def line_of(text: str, needle: str) -> int:
    """The 1-based line of ``text`` that holds ``needle`` first."""
    return next(n for n, ln in enumerate(text.splitlines(), 1) if needle in ln)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def aim_clean(root: Path) -> Path:
    """A small, valid aim-build checkout (two models' worth of warnings, no error)."""
    q = "profiles/Qwen/Qwen3-32B"
    return write(
        root,
        {
            f"{q}/vllm-mi300x-fp8-tp1-latency.yaml": AIM_QWEN_FP8,
            f"{q}/vllm-mi300x-fp8-tp1-throughput.yaml": AIM_QWEN_FP8_THROUGHPUT,
            f"{q}/vllm-mi300x-fp16-tp2-latency.yaml": AIM_QWEN_FP16_TP2,
            "profiles/general/vllm-mi300x-fp16-tp1-latency.yaml": AIM_GENERAL,
            "metadata/Qwen/Qwen3-32B/metadata.yaml": AIM_METADATA,
        },
    )


def aim_stale(root: Path) -> Path:
    """An aim-build checkout with stale settings (issue 25), a dtype left to the
    checkpoint, and gpt-oss-20b profiles on MI300X, MI325X and MI250X."""
    q, g = "profiles/Qwen/Qwen3-32B", "profiles/openai/gpt-oss-20b"
    return write(
        root,
        {
            f"{q}/vllm-mi300x-fp8-tp1-latency.yaml": AIM_STALE,
            f"{q}/vllm-mi300x-fp16-tp2-latency.yaml": AIM_DTYPE_AUTO,
            **{
                f"{g}/vllm-{gpu.lower()}-fp4-tp1-latency.yaml": AIM_GPT_OSS.format(gpu=gpu)
                for gpu in ("MI300X", "MI325X", "MI250X")
            },
        },
    )


def aim_broken(root: Path) -> Path:
    return write(
        root,
        {
            "profiles/meta-llama/Llama-3.1-405B-Instruct/vllm-mi300x-fp16-tp1-latency.yaml": (
                AIM_405B_ON_ONE_GPU
            ),
            "profiles/Qwen/Qwen3-32B/vllm-mi250x-fp8-tp3-latency.yaml": AIM_BROKEN_QWEN,
        },
    )


# --- vLLM Recipes -------------------------------------------------------------------------

VR_TAXONOMY = """\
hardware_profiles:
  h100:
    brand: NVIDIA
    generation: hopper
    display_name: "H100"
    description: "NVIDIA H100 80GB (8-GPU node)"
    gpu_count: 8
    vram_gb: 640
    multi_node: false
  mi300x:
    brand: AMD
    generation: amd
    display_name: "MI300X"
    gpu_count: 8
    vram_gb: 1536
    multi_node: false
  b200:
    brand: NVIDIA
    generation: blackwell
    display_name: "B200"
    gpu_count: 8
    vram_gb: 1440
    multi_node: false
    restricted: true
  trillium:
    brand: Google
    generation: tpu
    display_name: "TPU v6e"
    gpu_count: 8
    vram_gb: 256
    restricted: true
tasks:
  text: {display_name: Text}
"""

VR_STRATEGY_TP = """\
name: single_node_tp
deploy_type: single_node
orientation: latency
hardware_match:
  min_gpus: 1
  max_gpus: 8
  multi_node: false
vllm_args: []
parallel_flag: "--tensor-parallel-size"
"""

VR_STRATEGY_TEP = """\
name: single_node_tep
deploy_type: single_node
hardware_match:
  min_gpus: 2
  multi_node: false
  architecture: moe
vllm_args:
  - "--enable-expert-parallel"
parallel_flag: "--tensor-parallel-size"
"""

VR_QWEN = """\
meta:
  title: "Qwen3-32B"
  description: "Qwen3 32B dense"
  hardware:
    h100: verified
    mi300x: verified
model:
  model_id: "Qwen/Qwen3-32B"
  architecture: dense
  context_length: 40960
  base_args:
    - "--max-num-seqs"
    - "128"
    - "--enable-chunked-prefill"
    - "--no-enable-prefix-caching"
    - "--max-num-batched-tokens=4096"
  base_env: {}
features:
  reasoning:
    description: "Qwen3 reasoning parser"
    args:
      - "--reasoning-parser"
      - "qwen3"
variants:
  default:
    precision: bf16
    vram_minimum_gb: 100
  fp8:
    model_id: "Qwen/Qwen3-32B-FP8"
    precision: fp8
    vram_minimum_gb: 39
    extra_args:
      - "--kv-cache-dtype"
      - "fp8"
compatible_strategies:
  - single_node_tp
hardware_overrides:
  amd:
    extra_env:
      VLLM_ROCM_USE_AITER: "1"
strategy_overrides: {}
"""

VR_BROKEN_QWEN = """\
meta:
  title: "Qwen3-32B"
  hardware:
    h100: verified
    trillium: verified
model:
  model_id: "Qwen/Qwen3-32B"
  base_args: []
variants:
  default:
    precision: bf16
    vram_minimum_gb: 200
    tp: 3
  fp8:
    model_id: "Qwen/Qwen3-32B-FP8"
    precision: fp8
    vram_minimum_gb: 10
    extra_args:
      - "--max-num-seqs,"
      - "64"
  mxfp8:
    model_id: "nvidia/Qwen3-32B-MXFP8"
    precision: mxfp8
    vram_minimum_gb: 20
compatible_strategies:
  - single_node_tp
  - multi_node_tp
hardware_overrides:
  nvidia:
    extra_env:
      VLLM_USE_V1: "0"
"""

VR_405B = """\
meta:
  title: "Llama 3.1 405B"
  hardware:
    mi300x: verified
model:
  model_id: "meta-llama/Llama-3.1-405B-Instruct"
variants:
  default:
    precision: bf16
    vram_minimum_gb: 900
    tp: 1
compatible_strategies:
  - single_node_tp
"""


#: A model file as the recipes site had them for older vLLM: stale base args and a stale
#: override variable, flags aimc derives from recipe fields, the site's opt-out of a GPU,
#: and a restricted GPU the file names (issue 25).
VR_STALE = """\
meta:
  title: "Qwen3-32B"
  hardware:
    h100: unsupported
    b200: verified
model:
  model_id: "Qwen/Qwen3-32B"
  base_args:
    - "--max-model-len"
    - "32768"
    - "--trust-remote-code"
    - "--swap-space"
    - "16"
    - "--dtype"
    - "auto"
variants:
  default:
    precision: bf16
    vram_minimum_gb: 100
  awq:
    model_id: "Qwen/Qwen3-32B-AWQ"
    precision: int4
    vram_minimum_gb: 30
    extra_args:
      - "--quantization"
      - "awq"
      - "--max-seq-len-to-capture=8192"
compatible_strategies:
  - single_node_tp
hardware_overrides:
  amd:
    extra_env:
      VLLM_USE_AITER_TRITON_ROPE: "1"
      VLLM_USE_V1: "1"
  blackwell:
    extra_env:
      VLLM_USE_FLASHINFER_MOE_FP8: "1"
"""


def vllm_stale(root: Path) -> Path:
    """A vLLM Recipes checkout with :data:`VR_STALE`."""
    return write(
        root,
        {
            "taxonomy.yaml": VR_TAXONOMY,
            "strategies/single_node_tp.yaml": VR_STRATEGY_TP,
            "models/Qwen/Qwen3-32B.yaml": VR_STALE,
        },
    )


def vllm_clean(root: Path) -> Path:
    return write(
        root,
        {
            "taxonomy.yaml": VR_TAXONOMY,
            "strategies/single_node_tp.yaml": VR_STRATEGY_TP,
            "strategies/single_node_tep.yaml": VR_STRATEGY_TEP,
            "models/Qwen/Qwen3-32B.yaml": VR_QWEN,
        },
    )


def vllm_broken(root: Path) -> Path:
    return write(
        root,
        {
            "taxonomy.yaml": VR_TAXONOMY,
            "strategies/single_node_tp.yaml": VR_STRATEGY_TP,
            "models/Qwen/Qwen3-32B.yaml": VR_BROKEN_QWEN,
            "models/meta-llama/Llama-3.1-405B-Instruct.yaml": VR_405B,
        },
    )
