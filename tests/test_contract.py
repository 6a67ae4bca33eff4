"""The AIM Engine API reference's examples, run as written.

Each CLI example of the reference runs through the real CLI (tests/helpers/cli.py), on a stand-in
GPU machine where it needs hardware: eight MI300X reported by a stand-in ``amd-smi``, and a
stand-in ``docker`` whose ``run`` starts the stand-in server (tests/fakes/fake_server.py) with
the environment Docker gives a container (tests/fakes/fake_docker.py).
Every JSON output is validated against ``schemas/output.schema.json``. What the examples
leave to the environment is set through the documented variables, never by editing the
command: ``DEFAULT_PORT`` (a free port instead of 8000), ``CACHE_DIR`` and
``AIMC_STATE_DIR`` (temporary folders), ``HF_ENDPOINT`` (no test reaches the hub: the
download examples fetch from a local stand-in of it, tests/fakes/hub.py; elsewhere it is
unreachable). The one example
port written out (``--port 8001``) is replaced by a free port. The Python integration
example runs as written in a subprocess on the same machine (its ``cache_dir`` and port
replaced by temporary ones); the REST example runs against the real vLLM server in
tests/test_server.py.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Result
from tests.helpers.gpu_tools import BASE_PATH, GPUBox
from tests.helpers.output import validator
from tests.helpers.runs import free_port

#: The reference's CLI examples, in its order: (schema key of the command, the line).
CLI_EXAMPLES = [
    ("launch", "aim-engine launch Qwen/Qwen3-32B"),
    ("launch", "aim-engine launch Qwen/Qwen3-32B 8"),
    ("launch", "aim-engine launch Qwen/Qwen3-32B 8 --precision bf16"),
    ("launch", "aim-engine launch Qwen/Qwen3-32B 8 --port 8001"),
    ("launch", "aim-engine launch Qwen/Qwen3-32B 8 --debug"),
    ("list", "aim-engine list models"),
    ("list", 'aim-engine list recipes --filter "qwen"'),
    ("list", "aim-engine list configs --format json"),
    ("show-config", "aim-engine show-config Qwen/Qwen3-32B"),
    ("show-config", "aim-engine show-config Qwen/Qwen3-32B --gpu-count 8"),
    ("show-config", "aim-engine show-config Qwen/Qwen3-32B --format json"),
    ("cache-stats", "aim-engine cache stats"),
    ("cache-stats", "aim-engine cache stats --format json"),
    ("cache-list", "aim-engine cache list"),
    ("cache-list", 'aim-engine cache list --filter "qwen"'),
    ("cache-download", "aim-engine cache download Qwen/Qwen3-32B"),
    ("cache-download", "aim-engine cache download Qwen/Qwen3-32B --force"),
    ("debug-gpu-info", "aim-engine debug gpu-info"),
    ("debug-gpu-info", "aim-engine debug gpu-info --detailed"),
    ("debug-recipe-info", "aim-engine debug recipe-info Qwen/Qwen3-32B"),
    ("debug-recipe-info", "aim-engine debug recipe-info Qwen/Qwen3-32B --gpu-count 8"),
]

#: The reference's "Python Integration" example, as written.
PYTHON_EXAMPLE = """
from aim_launcher import AIMEngine

# Initialize AIM Engine
aim = AIMEngine(cache_dir="/workspace/model-cache", debug=True)

# Launch model
result = aim.launch_model(
    model_id="Qwen/Qwen3-32B",
    gpu_count=8,
    precision="bf16",
    port=8000
)

if result["success"]:
    print(f"Model launched: {result['data']['endpoint_url']}")
else:
    print(f"Launch failed: {result['error']['message']}")
"""


@pytest.fixture
def box(tmp_path: Path) -> Iterator[GPUBox]:
    machine = GPUBox(tmp_path)
    yield machine
    machine.stop_all()


def _words(line: str, box: GPUBox) -> list[str]:
    words = shlex.split(line)[1:]  # without "aim-engine"
    return [str(free_port()) if w == "8001" else w for w in words]


def _free_gpus(box: GPUBox) -> int:
    """GPUs ``debug gpu-info`` reports with at least 90% of their memory free."""
    gpus = _json(box.run("debug", "gpu-info", "--format", "json"), "debug-gpu-info")["data"]
    free = [g for g in gpus["gpus"] if g["memory_free_mib"] >= 0.9 * g["memory_total_mib"]]
    assert 0 < len(free) < len(gpus["gpus"])
    return len(free)


def _json(result: Result, command: str) -> dict:
    doc: dict = json.loads(result.out)
    validator(command).validate(doc)
    return doc


@pytest.mark.parametrize(("command", "line"), CLI_EXAMPLES, ids=[c[1][11:] for c in CLI_EXAMPLES])
def test_cli_example_as_written(box: GPUBox, command: str, line: str) -> None:
    words = _words(line, box)
    if command == "cache-download":
        _download_example(box, words)
        return
    result = box.run(*words)
    assert "Traceback" not in result.err
    json_words = words if "--format" in words else [*words, "--format", "json"]
    if command.startswith("launch"):
        assert result.code == 0, result.err
        assert "ready: http://localhost:" in result.out
        box.stop_all()
        doc = _json(box.run(*json_words), command)
        data = doc["data"]
        # Given 8, or left open: the free GPUs (the stand-in's GPU 3 is busy: 7 of 8).
        expected = 8 if "8" in words else _free_gpus(box)
        assert (data["gpu_count"], data["precision"], data["backend"]) == (expected, "bf16", "vllm")
        assert data["status"] == "running"
        port = int(data["endpoint_url"].rsplit(":", 1)[1])
        assert port == (int(words[words.index("--port") + 1]) if "--port" in words else box.port)
        box.stop_all()
        return
    assert result.code == 0, result.err
    doc = _json(box.run(*json_words), command)
    assert doc["success"] is True


def _download_example(box: GPUBox, words: list[str]) -> None:
    """``cache download Qwen/Qwen3-32B [--force]`` from a local stand-in of the hub
    (tests/fakes/hub.py) serving a tiny repository under that id."""
    from tests.fakes.hub import FakeHub

    hub = FakeHub().start()
    try:
        commit = hub.add(
            "Qwen/Qwen3-32B",
            {"config.json": b"{}", "tokenizer.json": b"{}", "model.safetensors": b"w" * 64},
        )
        box.env["HF_ENDPOINT"] = hub.url
        result = box.run(*words)
        assert result.code == 0, result.err
        assert result.out.startswith(f"Qwen/Qwen3-32B: {box.tmp / 'cache'}")
        assert "complete" in result.out and "Traceback" not in result.err
        doc = _json(box.run(*words, "--format", "json"), "cache-download")
        assert doc["success"] is True
        assert (doc["data"]["revision"], doc["data"]["complete"]) == (commit, True)
        assert hub.gets("Qwen/Qwen3-32B", "model.safetensors") == (2 if "--force" in words else 1)
    finally:
        hub.stop()


def test_launch_with_debug_makes_the_server_verbose(box: GPUBox) -> None:
    """``launch ... --debug``: the server is started with vLLM's debug logging."""
    result = box.run("launch", "Qwen/Qwen3-32B", "8", "--debug", "--format", "json")
    assert result.code == 0, result.err
    pids = json.loads((box.tmp / "pids.json").read_text())
    environ = Path(f"/proc/{pids['server']}/environ").read_bytes().split(b"\0")
    assert b"VLLM_LOGGING_LEVEL=DEBUG" in environ


def test_show_config_without_gpus_shows_every_configuration(box: GPUBox) -> None:
    """The reference: ``show-config Qwen/Qwen3-32B`` "shows all configurations for model",
    here on a machine without GPUs and without --target."""
    doc = _json(
        box.run("show-config", "Qwen/Qwen3-32B", "--format", "json", gpus=False), "show-config"
    )
    assert doc["success"] is True
    text = json.dumps(doc["data"])
    for target in ("mi300x", "h100", "a100-80gb"):
        assert target in text


def test_python_example_as_written(box: GPUBox) -> None:
    code = PYTHON_EXAMPLE.replace("port=8000", f"port={box.port}")
    code = code.replace('cache_dir="/workspace/model-cache"', f'cache_dir="{box.tmp / "cache"}"')
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIMC_", "AIM_"))},
        **box.env,
        "PATH": f"{box.machine.bin}:{BASE_PATH}",
        "AIMC_KFD_TOPOLOGY": str(box.machine.kfd),
    }
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"Model launched: http://localhost:{box.port}"


def _cached_copy(box: GPUBox) -> Path:
    snapshot = box.tmp / "cache" / "models--Qwen--Qwen3-32B" / "snapshots" / ("ab" * 20)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("ab" * 20)
    return snapshot


@pytest.mark.parametrize(
    "words",
    [
        ("cache", "download", "Qwen/Qwen3-32B", "--force"),
        ("launch", "Qwen/Qwen3-32B", "8", "--no-cache"),
    ],
    ids=["cache-download-force", "launch-no-cache"],
)
def test_forced_downloads_never_pass_off_the_cached_copy(box: GPUBox, words: tuple) -> None:
    """Failed before: both reported success ("downloaded ... afresh") with the hub
    unreachable, handing back the copy already in the cache."""
    snapshot = _cached_copy(box)
    result = box.run(*words)
    assert result.code == 6, result.err
    assert "nothing was downloaded" in result.err
    assert str(snapshot) in result.err  # where the cached copy is, to use it knowingly
    assert not (box.tmp / "pids.json").exists()  # no server was started
    doc = _json(
        box.run(*words, "--format", "json"), words[0] if words[0] == "launch" else "cache-download"
    )
    assert doc["error"]["code"] == "NETWORK_ERROR"
