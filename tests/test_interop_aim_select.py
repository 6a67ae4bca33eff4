"""The AIM import keeps, per GPU, precision and GPU count, the profile AIM's own selector
(aim-build's ``profile_selector.py``) launches, and says in the configuration what AIM does
with it (issue 25: 41 of 57 imported configurations were ones AIM would not pick by
default, while the docs said aimc imports the one AIM picks). Collections written here.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import run_cli
from tests.helpers.interop import AIM_GENERAL, AIM_QWEN_FP8, AIM_QWEN_FP16_TP2, write

Q = "aim-build/profiles/Qwen/Qwen3-32B"


def _descriptions(tmp_path: Path, files: dict[str, str]) -> dict[str, str]:
    write(tmp_path, files)
    env = {"CACHE_DIR": str(tmp_path / "cache")}
    result = run_cli("import", "aim-profiles", "aim-build", "-o", "out", cwd=tmp_path, env=env)
    assert result.code == 0, result.err
    recipe = yaml.safe_load((tmp_path / "out/models/Qwen/Qwen3-32B.yaml").read_text())
    return {c["id"]: c["description"] for c in recipe["configurations"]}


def test_the_profile_aims_selector_launches_is_kept_and_said_so(tmp_path: Path) -> None:
    preview = AIM_QWEN_FP8.replace("type: optimized", "type: preview").replace(
        "max-num-seqs: 512", "max-num-seqs: 8"
    )
    throughput_only = AIM_GENERAL.replace("metadata:", "aim_id: Qwen/Qwen3-32B\nmetadata:")
    throughput_only = throughput_only.replace("metric: latency", "metric: throughput")
    manual = AIM_QWEN_FP16_TP2.replace(
        "manual_selection_only: false", "manual_selection_only: true"
    )
    got = _descriptions(
        tmp_path,
        {
            # Same slot: AIM orders optimized before preview, whatever the file names.
            f"{Q}/a-vllm-mi300x-fp8-tp1-latency-preview.yaml": preview,
            f"{Q}/b-vllm-mi300x-fp8-tp1-latency.yaml": AIM_QWEN_FP8,
            f"{Q}/vllm-mi300x-fp16-tp1-throughput.yaml": throughput_only,
            f"{Q}/vllm-mi300x-fp16-tp2-latency.yaml": manual,
            "aim-build/profiles/general/vllm-mi300x-fp16-tp1-latency.yaml": AIM_GENERAL,
        },
    )
    assert got["b-vllm-mi300x-fp8-tp1-latency"] == (
        "AIM profile b-vllm-mi300x-fp8-tp1-latency (latency, optimized); "
        "AIM's selector picks it by default"
    )
    assert "a-vllm-mi300x-fp8-tp1-latency-preview" not in got
    assert got["vllm-mi300x-fp16-tp1-throughput"].endswith(
        "AIM's selector picks it only with AIM_METRIC=throughput; by default it launches "
        "general/vllm-mi300x-fp16-tp1-latency.yaml here"
    )
    assert got["vllm-mi300x-fp16-tp2-latency"].endswith(
        "AIM's selector picks it only by AIM_PROFILE_ID; by default it launches no profile "
        "of this model here"
    )
