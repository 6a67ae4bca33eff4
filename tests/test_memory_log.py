"""vLLM's startup memory lines, parsed (aimc.run.memory_log) and collected by
bench/gpu_memory_probe.py: on every published log line of the bench data, on the real CPU
server's log, and (marked ``server``) on a probe run of the real vLLM CPU server."""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from aimc.run.memory_log import FIGURES, memory_figures
from tests.conftest import ROOT
from tests.helpers.vllm import tiny_model, vllm_python

__all__ = ["tiny_model", "vllm_python"]  # fixtures of tests/helpers/vllm.py

DATA = [
    ROOT / "bench/data/vllm_startup_logs.yaml",
    ROOT / "bench/data/vllm_startup_logs_unversioned.yaml",
    ROOT / "bench/data/vllm_019_h100_startup_logs.yaml",
]
PROBE = ROOT / "bench/gpu_memory_probe.py"


def _probe_module():
    """bench/gpu_memory_probe.py (a script, not a package module), loaded once."""
    if "gpu_memory_probe" not in sys.modules:
        spec = importlib.util.spec_from_file_location("gpu_memory_probe", PROBE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["gpu_memory_probe"] = module  # its dataclass looks itself up there
        spec.loader.exec_module(module)
    return sys.modules["gpu_memory_probe"]


@pytest.mark.parametrize("path", DATA, ids=lambda p: p.name)
def test_every_published_figure_is_parsed_from_its_raw_lines(path: Path) -> None:
    points = YAML(typ="safe").load(path.read_text())
    checked = 0
    for p in points:
        if all(line.startswith("|") for line in p["raw_lines"]):
            continue  # a table transcribed from a PR, not log lines
        parsed = memory_figures("\n".join(p["raw_lines"]))
        for key in FIGURES:
            if p["figures"].get(key) is not None:
                assert parsed.get(key) == pytest.approx(p["figures"][key]), (p["id"], key)
                checked += 1
    assert checked >= 10


def test_the_real_cpu_servers_log() -> None:
    """tests/data/vllm-0.32-cpu-startup.log: the tiny Llama (2 layers, 2 KV heads of 32,
    float32: 1 KiB a token) with VLLM_CPU_KVCACHE_SPACE=1."""
    got = memory_figures((ROOT / "tests/data/vllm-0.32-cpu-startup.log").read_text())
    assert got["vllm_version"] == "0.32.0"
    assert got["cpu_kv_cache_space_gib"] == 1.0
    assert got["gpu_kv_cache_tokens"] == 2**30 // (2 * 2 * 2 * 32 * 4) == 1_048_576
    assert got["max_concurrency"] == 512.0
    assert "model_loading_gib" not in got  # the CPU runner does not print it


def test_model_runner_v2_captures_twice_and_workers_are_cut_to_the_smallest() -> None:
    """Lines as vLLM 0.32 formats them (v1/worker/gpu/model_runner.py, gpu_worker.py,
    kv_cache_utils.py): V2 prints the profiling capture before the budget."""
    w0, w1, core = (
        "(Worker_TP0 pid=1) INFO 12-01 10:00:00",
        "(Worker_TP1 pid=2) INFO 12-01 10:00:10",
        "(EngineCore pid=0) INFO 12-01 10:00:10",
    )
    text = "\n".join(
        [
            f"{w0} [model_runner.py:425] Model loading took 7.51 GiB memory and 12.0 seconds",
            f"{w0} [model_runner.py:1128] Graph capturing finished in 4 secs, took 0.62 GiB",
            f"{w1} [gpu_worker.py:760] Available KV cache memory: 61.20 GiB",
            f"{w0} [gpu_worker.py:760] Available KV cache memory: 61.18 GiB",
            f"{core} [kv_cache_utils.py:2328] GPU KV cache size: 1,002,496 tokens, "
            "Maximum concurrency for 8,192 tokens per request: 122.38x",
            f"{w0} [model_runner.py:1128] Graph capturing finished in 5 secs, took 0.58 GiB",
            f"{w0} [gpu_worker.py:972] CUDA graph pool memory: 0.58 GiB (actual), 0.62 GiB "
            "(estimated), difference: 0.04 GiB (6.9%).",
        ]
    )
    got = memory_figures(text)
    assert got["model_loading_gib"] == 7.51
    assert got["available_kv_cache_gib"] == 61.18
    assert (got["gpu_kv_cache_tokens"], got["max_concurrency"]) == (1_002_496, 122.38)
    assert (got["graph_profile_capture_gib"], got["graph_capture_took_gib"]) == (0.62, 0.58)
    assert (got["cuda_graph_pool_actual_gib"], got["cuda_graph_pool_estimated_gib"]) == (0.58, 0.62)
    assert len(got["raw_lines"]) == 7 and got["raw_lines"][0].startswith("[model_runner.py:425]")


def test_the_probe_builds_a_point_from_a_log(tmp_path: Path) -> None:
    probe = _probe_module()
    run = probe.Run("Qwen/Qwen3-8B", 1, 2048)
    text = (ROOT / "tests/data/vllm-0.32-cpu-startup.log").read_text()
    point = probe.point_from_log(text, run, {"name": "CPU", "total_gib": None}, 5)
    assert point["figures"]["gpu_kv_cache_tokens"] == 1_048_576
    assert (point["vllm_version"], point["split"], point["max_model_len"]) == (
        "0.32.0",
        "test",
        2048,
    )
    out = tmp_path / "points.yaml"
    out.write_text("# comment kept\n- id: first\n")
    probe.append(out, [point])
    assert out.read_text().startswith("# comment kept\n")
    assert [p["id"] for p in YAML(typ="safe").load(out.read_text())] == ["first", point["id"]]


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=400))
def test_hostile_log_text_parses_and_round_trips_through_the_data_file(text: str) -> None:
    got = memory_figures(text + "\nAvailable KV cache memory: 1.5 GiB\n" + text)
    assert got["available_kv_cache_gib"] == 1.5
    probe = _probe_module()
    point = {"id": "x", "raw_lines": [*got["raw_lines"], text], "note": text}
    buffer = io.StringIO()
    probe.dump([point], buffer)  # what probe.append writes
    loaded = YAML(typ="safe").load(buffer.getvalue())
    assert loaded == [probe.clean(point)]
    if text.isprintable():
        assert loaded[0]["note"] == text  # printable text is kept as it is
    assert all(c.isprintable() for c in loaded[0]["note"])


@pytest.mark.server
def test_the_probe_on_the_real_cpu_server(
    tiny_model: Path, vllm_python: Path, tmp_path: Path
) -> None:
    """One run of bench/gpu_memory_probe.py --cpu: the real server starts, its log is
    parsed, the point appended, and no process of it is left."""
    out = tmp_path / "points.yaml"
    result = subprocess.run(
        [
            sys.executable,
            str(PROBE),
            "--cpu",
            "--python",
            str(vllm_python),
            "--model",
            str(tiny_model),
            "--context",
            "2048",
            "--max-runs",
            "1",
            "--budget",
            "400",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=500,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (point,) = YAML(typ="safe").load(out.read_text())
    assert point["vllm_version"] == "0.32.0"
    assert point["figures"]["gpu_kv_cache_tokens"] == 2**30 // (2 * 2 * 2 * 32 * 4)
    assert point["figures"]["cpu_kv_cache_space_gib"] == 1.0
    left = subprocess.run(["pgrep", "-f", str(tiny_model)], capture_output=True, text=True)
    assert left.stdout.strip() == ""
