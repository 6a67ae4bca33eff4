"""A weights entry's ``dtype`` beyond ``auto`` (issue 25, the last AIM divergences): AIM's
Llama-3.1-405B FP8 profiles launch vLLM with ``--dtype float16``; aimc's recipes can now say
so (``weights.fp8.dtype: float16``, rendered ``--dtype float16``) where vLLM 0.32 runs the
precision in that dtype, and ``lint/dtype`` refuses a pairing it does not run
(``QuantizationConfig.get_supported_act_dtypes``: mxfp4 in bfloat16 only; a bf16 or fp16
precision in its own dtype).
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, run_cli
from tests.helpers.interop import line_of, write

#: One of aim-build 0.9's Llama-3.1-405B-Instruct FP8 profiles, as it is.
AIM_405B_FP8 = """\
aim_id: meta-llama/Llama-3.1-405B-Instruct
model_id: amd/Llama-3.1-405B-Instruct-FP8-KV
metadata:
  engine: vllm
  gpu: MI300X
  gpu_count: 8
  manual_selection_only: false
  metric: latency
  precision: fp8
  type: optimized
engine_args:
  dtype: float16
  gpu-memory-utilization: 0.9
  kv-cache-dtype: fp8
  max-model-len: 32768
  tensor-parallel-size: 8
env_vars:
  VLLM_ROCM_USE_AITER: '1'
"""

AIM_GPT_OSS_FP16 = """\
aim_id: openai/gpt-oss-120b
model_id: openai/gpt-oss-120b
metadata:
  engine: vllm
  gpu: MI300X
  gpu_count: 1
  manual_selection_only: false
  metric: latency
  precision: fp4
  type: optimized
engine_args:
  dtype: float16
  tensor-parallel-size: 1
"""


def _argv(build: Path) -> list[str]:
    """The server's words in a compiled ``launch.sh`` (process launcher)."""
    return shlex.split((build / "launch.sh").read_text().replace("\\\n", " "), comments=True)


def test_aims_fp8_dtype_float16_is_kept(tmp_path: Path) -> None:
    """Failed before: reported ("aimc derives the dtype from the precision") and vLLM given
    no --dtype, so it ran in the checkpoint's bfloat16 where AIM runs float16."""
    write(tmp_path, {"aim-build/profiles/x/vllm-mi300x-fp8-tp8-latency.yaml": AIM_405B_FP8})
    result = run_cli("import", "aim-profiles", "aim-build", "-o", "out", cwd=tmp_path)
    assert result.code == 0, result.err
    assert "dtype" not in result.err
    recipe = yaml.safe_load(
        (tmp_path / "out/models/meta-llama/Llama-3.1-405B-Instruct.yaml").read_text()
    )
    (conf,) = recipe["configurations"]
    weights = conf.get("weights", recipe["weights"])["fp8"]
    assert weights == {"repo": "amd/Llama-3.1-405B-Instruct-FP8-KV", "dtype": "float16"}
    build = tmp_path / "build"
    compiled = run_cli(
        "compile", "meta-llama/Llama-3.1-405B-Instruct", "8", "--target", "mi300x",
        "--precision", "fp8", "--recipes", "out", "-o", str(build), "--launcher", "process",
        cwd=tmp_path,
    )  # fmt: skip
    assert compiled.code == 0, compiled.err
    argv = _argv(build)
    assert argv.count("--dtype") == 1 and argv[argv.index("--dtype") + 1] == "float16"


def test_a_dtype_the_precision_does_not_run_in_is_reported_at_its_line(tmp_path: Path) -> None:
    """mxfp4 runs in bfloat16 only (vllm mxfp4.py: get_supported_act_dtypes): AIM's dtype
    is reported at its line and not imported."""
    profile = "aim-build/profiles/x/vllm-mi300x-fp4-tp1-latency.yaml"
    write(tmp_path, {profile: AIM_GPT_OSS_FP16})
    result = run_cli("validate", "--from", "aim-profiles", "aim-build", cwd=tmp_path)
    at = f"{profile}:{line_of(AIM_GPT_OSS_FP16, 'dtype')}"
    assert (
        f"{at}:3: warning: dtype 'float16' with precision mxfp4: vLLM 0.32 serves mxfp4 "
        "weights in bfloat16" in result.out
    ), result.out


def _recipe(tmp_path: Path, precision: str, dtype: str) -> Path:
    """The shipped Qwen3-8B recipe (gpt-oss-20b for mxfp4) with its ``precision`` weights
    in ``dtype``, in a recipe folder of its own."""
    name = "openai/gpt-oss-20b" if precision == "mxfp4" else "Qwen/Qwen3-8B"
    recipe = yaml.safe_load((ROOT / "recipes/models" / f"{name}.yaml").read_text())
    recipe["weights"][precision]["dtype"] = dtype
    folder = tmp_path / "recipes"
    write(folder, {f"models/{name}.yaml": yaml.safe_dump(recipe, sort_keys=False)})
    return folder


@pytest.mark.parametrize(
    ("precision", "dtype", "allowed"),
    [("bf16", "float16", "bfloat16"), ("mxfp4", "float16", "bfloat16")],
)
def test_lint_dtype_refuses_what_vllm_does_not_run(
    tmp_path: Path, precision: str, dtype: str, allowed: str
) -> None:
    folder = _recipe(tmp_path, precision, dtype)
    result = run_cli("validate", str(folder), "--format", "json", cwd=tmp_path)
    assert result.code == 2
    assert "lint/dtype" in result.out + result.err
    assert (
        f"dtype {dtype} with precision {precision}: vLLM 0.32 serves {precision} weights "
        f"in {allowed}" in result.out + result.err
    )


@pytest.mark.parametrize(("dtype", "backend"), [("float16", "vllm"), ("bfloat16", "sglang")])
def test_an_fp8_dtype_is_rendered_for_each_backend(
    tmp_path: Path, dtype: str, backend: str
) -> None:
    """Failed before: the schema held only auto, and no --dtype was rendered for fp8."""
    folder = _recipe(tmp_path, "fp8", dtype)
    assert run_cli("validate", str(folder), cwd=tmp_path).code == 0
    build = tmp_path / "build"
    result = run_cli(
        "compile", "Qwen/Qwen3-8B", "1", "--target", "mi300x", "--precision", "fp8",
        "--backend", backend, "--recipes", str(folder), "-o", str(build),
        "--launcher", "process", cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 0, result.err
    argv = _argv(build)
    assert argv.count("--dtype") == 1 and argv[argv.index("--dtype") + 1] == dtype
