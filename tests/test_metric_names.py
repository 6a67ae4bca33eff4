"""The metric names aimc's autoscalers and dashboard read exist in the pinned engines.

Every ``vllm:``/``sglang:`` name in what ``--autoscale`` and ``monitoring/`` write (the
ScaledObject's queries, with and without a measured saturation point, the HPA's metrics and
prometheus-adapter's rules for them, the AIMService's, the dashboard's expressions):
for SGLang 0.5.19 against the metrics its ``metrics_collector.py`` defines
(``tests/data/sglang/``, with their source), for vLLM 0.32.0 against a real ``/metrics``
scrape of the CPU server (marked ``server``: the tiny model of :mod:`tests.helpers.vllm`).
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.emit.aim import compile_aim
from aimc.emit.autoscale import SIGNALS, Autoscale
from aimc.emit.k8s import compile_k8s
from aimc.emit.monitoring import METRICS
from aimc.plan.request import Request
from aimc.run.process import alive
from tests.conftest import ROOT
from tests.helpers.bench_results import bench_runs
from tests.helpers.runs import free_port
from tests.helpers.vllm import PROMPT, post_json, server_pids, tiny_model
from tests.helpers.vllm import vllm_python as vllm_python

__all__ = ["tiny_model"]  # a fixture of tests/helpers/vllm.py

CATALOG = Catalog.default()
SGLANG_METRICS = ROOT / "tests/data/sglang/metrics-0.5.19.txt"
#: The files that read the engine's metrics (the others name images, ``lmsysorg/sglang:v0...``).
READERS = (
    "scaledobject.yaml",
    "hpa.yaml",
    "prometheus-adapter.yaml",
    "monitoring/dashboard.yaml",
    "monitoring/podmonitor.yaml",
)
_NAME = re.compile(r"\b(?:vllm|sglang):[A-Za-z0-9_]+")


def used_names(backend: str) -> set[str]:
    """Every engine metric name in the files ``--autoscale`` and ``monitoring/`` write for
    a plan of ``backend`` (KEDA and HPA, and for vLLM the AIMService)."""
    request = Request(model="Qwen/Qwen3-8B", backend=backend)
    plan = make_plan(CATALOG, request, "h100")
    texts: list[str] = []
    for kind in ("keda", "hpa"):
        # With bench results of the configuration: the running requests too.
        for bench in ((), bench_runs(plan)):
            files = compile_k8s(plan, request, "h100", 1, Autoscale(kind, bench=bench))
            texts += [text for name, text in files.items() if name in READERS]
    if backend == "vllm":
        amd = Request(model="Qwen/Qwen3-8B")
        files = compile_aim(make_plan(CATALOG, amd, "mi325x"), amd, "mi325x", 1, Autoscale("keda"))
        texts.append(files["aimservice.yaml"])
    names = {n for text in texts for n in _NAME.findall(text)}
    assert names, "no metric name found"
    return names


def _exposed_sglang() -> set[str]:
    """The sample names SGLang 0.5.19 exposes: a Histogram as NAME_bucket/_sum/_count."""
    names = set()
    for line in SGLANG_METRICS.read_text().splitlines():
        if line.startswith("#"):
            continue
        kind, name = line.split()
        names |= (
            {f"{name}{s}" for s in ("_bucket", "_sum", "_count")} if kind == "histogram" else {name}
        )
    return names


def test_sglang_metric_names_exist_in_sglang_0_5_19() -> None:
    used = used_names("sglang")
    assert set(SIGNALS["sglang"].values()) <= used
    assert used <= _exposed_sglang(), used - _exposed_sglang()
    # The data file is what it says: 141 metrics, none counted twice.
    lines = [x for x in SGLANG_METRICS.read_text().splitlines() if not x.startswith("#")]
    assert len(lines) == len(set(lines)) == 141


def test_the_checked_names_are_the_ones_written() -> None:
    """What the tests here check is what the emitters write: every name in :data:`METRICS`
    (whose histograms the dashboard reads as ``_bucket``) appears in the files."""
    for backend, metrics in METRICS.items():
        used = used_names(backend)
        for name in metrics.values():
            assert name in used or f"{name}_bucket" in used, (backend, name)
        assert all(n.startswith(f"{backend}:") for n in used)


def test_sglang_plans_serve_metrics() -> None:
    """SGLang serves /metrics only with --enable-metrics: every SGLang plan has it."""
    plan = make_plan(CATALOG, Request(model="Qwen/Qwen3-8B", backend="sglang"), "h100")
    assert plan.args["enable-metrics"].value is True
    assert plan.args["enable-metrics"].layer == "backend"


def _scrape(url: str) -> set[str]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        text = response.read().decode()
    return {
        re.split(r"[{ ]", line, maxsplit=1)[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


@pytest.mark.server
def test_vllm_metric_names_exist_in_a_real_scrape(
    cli: Any, tmp_path: Path, tiny_model: Path, vllm_python: Path
) -> None:
    env = {
        "AIM_PYTHON": str(vllm_python),
        "AIMC_STATE_DIR": str(tmp_path / "state"),
        "CACHE_DIR": str(tmp_path / "cache"),
        "HF_HUB_OFFLINE": "1",
    }
    port = free_port()
    result = cli(
        "launch",
        str(tiny_model),
        "--target",
        "cpu",
        "--port",
        str(port),
        "--timeout",
        "400",
        "--set",
        "env.VLLM_CPU_KVCACHE_SPACE=1",
        "--format",
        "json",
        env=env,
        timeout=500,
    )
    pids: list[int] = []
    try:
        assert result.code == 0, result.err + result.out
        url = json.loads(result.out)["data"]["endpoint_url"]
        pids = server_pids(tmp_path / "state")
        body = {"model": "tiny-llama", "prompt": PROMPT, "max_tokens": 4, "temperature": 0}
        post_json(f"{url}/v1/completions", body)
        exposed = _scrape(url)
    finally:
        stopped = cli("stop", "aim-tiny-llama", env=env, timeout=120)
    assert stopped.code == 0, stopped.err
    assert not any(alive(pid) for pid in pids)
    probe = subprocess.run(["pgrep", "-f", str(tiny_model)], capture_output=True, text=True)
    assert probe.stdout.strip() == ""
    used = used_names("vllm")
    assert set(SIGNALS["vllm"].values()) <= used
    assert used <= exposed, sorted(used - exposed)
