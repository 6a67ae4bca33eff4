"""End to end: download from a local hub, then launch by repository id with the hub gone.

The tiny Llama of tests/test_server.py is served by the stand-in hub (tests/fakes/hub.py)
as ``aimc-test/tiny-llama`` (with a ``.bin`` duplicate that must not be fetched);
``cache download`` puts it in a temporary CACHE_DIR; the hub is stopped; ``launch
aimc-test/tiny-llama --target cpu`` derives a recipe from the cached snapshot (no recipe
names the repository), starts vLLM offline on it (aimc sets HF_HUB_OFFLINE=1 itself),
answers one completion and is stopped. Marked ``server`` (real vLLM on the CPU).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aimc.run.process import alive
from tests.fakes.hub import FakeHub
from tests.helpers.runs import free_port
from tests.helpers.vllm import check_serving, reference_tokens, server_pids, tiny_model
from tests.helpers.vllm import vllm_python as vllm_python

pytestmark = pytest.mark.server

REPO = "aimc-test/tiny-llama"
__all__ = ["reference_tokens", "tiny_model"]  # fixtures of tests/helpers/vllm.py


def test_download_then_launch_offline_by_repository_id(
    cli, tiny_model: Path, reference_tokens: list[int], tmp_path: Path, vllm_python: Path
) -> None:
    hub = FakeHub().start()
    files = {
        p.relative_to(tiny_model).as_posix(): p.read_bytes()
        for p in tiny_model.rglob("*")
        if p.is_file()
    }
    hub.add(REPO, {**files, "pytorch_model.bin": b"a duplicate vLLM never reads"})
    env = {
        "AIM_PYTHON": str(vllm_python),
        "AIMC_STATE_DIR": str(tmp_path / "state"),
        "CACHE_DIR": str(tmp_path / "cache"),
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_ENDPOINT": hub.url,
        "LOG_FORMAT": "text",
    }
    try:
        downloaded = cli("cache", "download", REPO, "--format", "json", env=env, timeout=120)
        assert downloaded.code == 0, downloaded.err
        assert json.loads(downloaded.out)["data"]["complete"] is True
        assert hub.gets(REPO, "pytorch_model.bin") == 0
    finally:
        hub.stop()
    listed = json.loads(cli("cache", "list", "--format", "json", env=env).out)["data"]
    assert [(r["model"], r["status"]) for r in listed] == [(REPO, "complete")]

    port = free_port()
    result = cli(
        "launch",
        REPO,
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
        data = json.loads(result.out)["data"]
        assert data["status"] == "running"
        pids = server_pids(tmp_path / "state")
        environ = Path(f"/proc/{pids[0]}/environ").read_bytes().split(b"\0")
        assert b"HF_HUB_OFFLINE=1" in environ  # set by aimc: the model is complete in the cache
        check_serving(data["endpoint_url"], REPO, reference_tokens)
    finally:
        stopped = cli("stop", "--all", env=env, timeout=120)
    assert stopped.code == 0, stopped.err
    assert not any(alive(pid) for pid in pids)
