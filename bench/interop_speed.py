"""`aim-engine import` + `aim-engine validate --from` on a generated 200-file collection of
each format (AMD AIM profiles, vLLM Recipes).

    .venv/bin/python bench/interop_speed.py [--files 200] [--runs 3] [--stale]

The collections are written here, in each format's field names: AIM profiles for 50 models
x 4 (GPU, precision, TP, metric) profiles; vLLM Recipes with one model file each plus
``taxonomy.yaml`` and two strategies. Their model facts come from a ``--recipes`` folder of
the shipped Qwen3-8B under the generated ids. Each run is a fresh process; prints the
median seconds of import and of validate, per format. ``--stale`` adds settings vLLM 0.32
no longer reads (``swap-space``, ``VLLM_USE_AITER_TRITON_ROPE``) to every file and runs
``import --fix`` and ``validate --from --fix`` (the migration path). ``--hub``: the facts
come from a stand-in hub on 127.0.0.1 instead (``tests/fakes/hub.py``: each model's
``config.json`` and safetensors index, the shipped Qwen3-8B's figures), with an empty model
cache: the time of reading facts from the hub (two requests a model). Asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FACTS = ROOT / "recipes" / "models" / "Qwen" / "Qwen3-8B.yaml"

PROFILE = """\
aim_id: bench-org/model-{m}
model_id: bench-org/model-{m}
metadata:
  engine: vllm
  gpu: {gpu}
  gpu_count: {tp}
  manual_selection_only: false
  metric: {metric}
  precision: {precision}
  type: optimized
engine_args:
  gpu-memory-utilization: 0.9
  max-model-len: 32768
  max-num-seqs: 512
  no-enable-prefix-caching: null
  tensor-parallel-size: {tp}
env_vars:
  HSA_NO_SCRATCH_RECLAIM: '1'
  VLLM_ROCM_USE_AITER: '1'
"""

TAXONOMY = """\
hardware_profiles:
  h100: {brand: NVIDIA, generation: hopper, gpu_count: 8, vram_gb: 640, multi_node: false}
  mi300x: {brand: AMD, generation: amd, gpu_count: 8, vram_gb: 1536, multi_node: false}
"""
STRATEGY = "name: {name}\ndeploy_type: single_node\nvllm_args: {args}\n"
MODEL = """\
meta:
  title: "model {m}"
  hardware: {{h100: verified, mi300x: verified}}
model:
  model_id: "bench-org/model-{m}"
  base_args: ["--max-num-seqs", "256"]
variants:
  default: {{precision: bf16, vram_minimum_gb: 20}}
  fp8: {{precision: fp8, model_id: "bench-org/model-{m}-FP8", vram_minimum_gb: 14,
         extra_args: ["--kv-cache-dtype", "fp8"]}}
compatible_strategies: [single_node_tp, single_node_tep]
hardware_overrides:
  amd: {{extra_env: {{VLLM_ROCM_USE_AITER: "1"}}}}
"""


#: The shipped Qwen3-8B's config.json and index figures, served for every model by --hub.
HUB_CONFIG = {
    "architectures": ["Qwen3ForCausalLM"],
    "hidden_size": 4096,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "num_hidden_layers": 36,
    "head_dim": 128,
    "max_position_embeddings": 40960,
    "vocab_size": 151936,
    "torch_dtype": "bfloat16",
}
HUB_INDEX = {"metadata": {"total_size": 16381470720}, "weight_map": {}}


@contextlib.contextmanager
def _hub(base: Path, models: int) -> Iterator[str]:
    """A stand-in hub serving the facts of ``models`` generated models; its URL."""
    files = {
        "config.json": json.dumps(HUB_CONFIG),
        "model.safetensors.index.json": json.dumps(HUB_INDEX),
    }
    spec = base / "hub.json"
    spec.write_text(json.dumps({f"bench-org/model-{m}": files for m in range(models)}))
    hub = subprocess.Popen(
        [sys.executable, str(ROOT / "tests/fakes/hub.py"), str(spec)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert hub.stdout is not None
        yield hub.stdout.readline().strip()
    finally:
        hub.terminate()
        hub.wait(10)


def _facts(folder: Path, models: int) -> None:
    text = FACTS.read_text()
    for m in range(models):
        path = folder / "models" / "bench-org" / f"model-{m}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("id: Qwen/Qwen3-8B", f"id: bench-org/model-{m}", 1))


def _aim(folder: Path, files: int) -> int:
    shapes = [
        (gpu, precision, tp, metric)
        for gpu in ("MI300X", "MI325X")
        for precision in ("fp16", "fp8")
        for tp in (1, 2)
        for metric in ("latency", "throughput")
    ][:4]
    models = -(-files // len(shapes))
    n = 0
    for m in range(models):
        for gpu, precision, tp, metric in shapes:
            if n == files:
                break
            name = f"vllm-{gpu.lower()}-{precision}-tp{tp}-{metric}.yaml"
            path = folder / "profiles" / "bench-org" / f"model-{m}" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            fields = dict(m=m, gpu=gpu, tp=tp, metric=metric, precision=precision)
            path.write_text(PROFILE.format(**fields))
            n += 1
    return models


def _vllm(folder: Path, files: int) -> int:
    folder.mkdir(parents=True)
    (folder / "taxonomy.yaml").write_text(TAXONOMY)
    (folder / "strategies").mkdir()
    for name, args in (
        ("single_node_tp", "[]"),
        ("single_node_tep", '["--enable-expert-parallel"]'),
    ):
        (folder / "strategies" / f"{name}.yaml").write_text(STRATEGY.format(name=name, args=args))
    models = files - 3
    for m in range(models):
        path = folder / "models" / "bench-org" / f"model-{m}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(MODEL.format(m=m))
    return models


def _time(cmd: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd[3:6])} failed ({done.returncode}): {done.stderr[-800:]}")
    return elapsed


def _stale(src: Path) -> None:
    """Settings vLLM 0.32 no longer reads, in every file (for ``--fix``)."""
    for path in src.rglob("*.yaml"):
        text = path.read_text()
        text = text.replace("engine_args:\n", "engine_args:\n  swap-space: 16\n")
        text = text.replace("env_vars:\n", "env_vars:\n  VLLM_USE_AITER_TRITON_ROPE: '1'\n")
        text = text.replace(
            'base_args: ["--max-num-seqs"', 'base_args: ["--swap-space", "16", "--max-num-seqs"'
        )
        path.write_text(text)


def _runs(source: str, src: Path, base: Path, runs: int, extra: list[str], env: Any) -> None:
    """Time ``runs`` imports and validations of ``src``; print the medians."""
    aimc = [sys.executable, "-m", "aimc"]
    imports, validates = [], []
    for run in range(runs):
        out = base / f"{source}-out-{run}"
        imports.append(_time([*aimc, "import", source, str(src), "-o", str(out), *extra], env))
        validates.append(_time([*aimc, "validate", "--from", source, str(src), *extra], env))
    read = len([p for p in src.rglob("*.yaml")])
    print(
        f"{source}: {read} files: import {statistics.median(imports):.2f} s, "
        f"validate --from {statistics.median(validates):.2f} s "
        f"(median of {runs}, fresh process each{', --fix' if '--fix' in extra else ''}"
        f"{', facts from a stand-in hub' if env else ''})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stale", action="store_true", help="stale settings, and --fix")
    parser.add_argument("--hub", action="store_true", help="facts from a stand-in hub")
    options = parser.parse_args()
    fix = ["--fix"] if options.stale else []
    with tempfile.TemporaryDirectory(prefix="aimc-interop-bench-") as tmp:
        base = Path(tmp)
        for source, make in (("aim-profiles", _aim), ("vllm-recipes", _vllm)):
            src, facts = base / source, base / f"{source}-facts"
            models = make(src, options.files)
            if options.stale:
                _stale(src)
            if not options.hub:
                _facts(facts, models)
                _runs(source, src, base, options.runs, ["--recipes", str(facts), *fix], None)
                continue
            with _hub(base, models) as url:
                env = {**os.environ, "HF_ENDPOINT": url, "CACHE_DIR": str(base / "empty")}
                env.pop("HF_HUB_OFFLINE", None)
                _runs(source, src, base, options.runs, fix, env)


if __name__ == "__main__":
    main()
