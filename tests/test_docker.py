"""The Docker launcher for real: a Docker engine, a container of vLLM, the published port.

The engine is the private one of ``scripts/docker-engine.sh`` (its own socket, reached
through ``DOCKER_SOCKET`` as the AIM Engine reference documents), started for this module
and stopped after it by its pid when this module started it. The image ``aimc/vllm-cpu:
0.32.0`` (the ``cpu`` target's) is built locally by ``scripts/setup-docker.sh``: nothing is
pulled. The tiny Llama of tests/test_server.py is served from a container and must answer
with transformers' greedy tokens. Marked ``server`` and ``docker``; ``.ci/run`` runs them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from aimc.run.process import alive
from tests.conftest import ROOT, Result
from tests.fakes.hub import FakeHub
from tests.helpers.runs import free_port
from tests.helpers.vllm import PROMPT, check_serving, reference_tokens, server_pids, tiny_model
from tests.helpers.vllm import vllm_python as vllm_python

pytestmark = [pytest.mark.server, pytest.mark.docker]
__all__ = ["reference_tokens", "tiny_model"]  # fixtures of tests/helpers/vllm.py

IMAGE = "aimc/vllm-cpu:0.32.0"
ENGINE = ROOT / "scripts" / "docker-engine.sh"
KEY = "sk-test-1b2e7c0d9a"


def _docker(socket: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "-H", f"unix://{socket}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _engine(action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ENGINE), action], capture_output=True, text=True, timeout=180
    )


@pytest.fixture(scope="module")
def docker_socket() -> Iterator[str]:
    """The private engine's socket: started here unless it runs already, then stopped."""
    socket = _engine("socket").stdout.strip()
    was_running = bool(socket) and _docker(socket, "version", timeout=15).returncode == 0
    started = _engine("start")
    if started.returncode != 0:
        pytest.fail(f"no Docker engine: {started.stderr.strip()} (run scripts/setup-docker.sh)")
    socket = started.stdout.strip()
    if _docker(socket, "image", "inspect", IMAGE).returncode != 0:
        pytest.fail(f"the image {IMAGE} is missing: run scripts/setup-docker.sh")
    try:
        yield socket
    finally:
        if not was_running:
            _engine("stop")


@pytest.fixture
def env(
    tmp_path: Path, docker_socket: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    # DOCKER_SOCKET is the way in: a DOCKER_HOST of the caller's would win over it.
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    for name in ("VLLM_API_KEY", "HF_TOKEN", "HF_HUB_OFFLINE", "VLLM_LOGGING_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    yield {
        "DOCKER_SOCKET": docker_socket,
        "AIMC_STATE_DIR": str(tmp_path / "state"),
        "CACHE_DIR": str(tmp_path / "cache"),
        "LOG_FORMAT": "text",
    }


@pytest.fixture
def containers(docker_socket: str) -> Iterator[list[str]]:
    """Names of the containers a test creates: removed after it, whatever happened."""
    names: list[str] = []
    yield names
    for name in names:
        _docker(docker_socket, "rm", "-f", name)


def _container_ids(socket: str, name: str) -> list[str]:
    found = _docker(socket, "ps", "-a", "--no-trunc", "-q", "--filter", f"name=^/{name}$")
    return found.stdout.split()


def _environ(socket: str, name: str) -> dict[str, str]:
    """The environment of the container's main process, read inside the container."""
    raw = _docker(socket, "exec", name, "cat", "/proc/1/environ").stdout
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def _launch(cli, env: dict[str, str], *args: str) -> Result:
    result: Result = cli(
        "launch",
        *args,
        "--target",
        "cpu",
        "--launcher",
        "docker",
        "--timeout",
        "400",
        "--set",
        "env.VLLM_CPU_KVCACHE_SPACE=1",
        "--format",
        "json",
        env=env,
        timeout=500,
    )
    return result


def test_launch_in_a_container_then_status_logs_stop(
    cli, env, tiny_model, reference_tokens, docker_socket, containers
) -> None:
    name, port = "aim-docker-one", free_port()
    containers.append(name)
    env = {**env, "HF_HUB_OFFLINE": "1"}
    result = _launch(cli, env, str(tiny_model), "--name", name, "--port", str(port))
    try:
        assert result.code == 0, result.err + result.out
        data = json.loads(result.out)["data"]
        [full_id] = _container_ids(docker_socket, name)
        assert (data["container_name"], data["status"]) == (name, "running")
        assert len(data["container_id"]) == 12 and full_id.startswith(data["container_id"])
        # Through the port docker published, answered by vLLM inside the container.
        check_serving(f"http://localhost:{port}", "tiny-llama", reference_tokens)
        inside = _environ(docker_socket, name)
        assert inside["HF_HUB_OFFLINE"] == "1"  # the caller's, passed through by name
        assert inside["VLLM_CPU_KVCACHE_SPACE"] == "1"  # --set env.…, via aim.env and -e
        assert inside["HF_HUB_CACHE"] == "/workspace/model-cache"
        assert "HF_TOKEN" not in inside and "VLLM_API_KEY" not in inside  # not set: not passed
        label = _docker(
            docker_socket, "inspect", "--format", '{{index .Config.Labels "dev.aimc.run"}}', name
        ).stdout.strip()
        record = json.loads((Path(env["AIMC_STATE_DIR"]) / "runs" / f"{name}.json").read_text())
        assert len(label) == 32 and record["run_id"] == label
        shown = json.loads(cli("status", "--format", "json", env=env).out)["data"]
        assert [(s["name"], s["status"], s["container_id"]) for s in shown] == [
            (name, "running", data["container_id"])
        ]
        logs = cli("logs", name, "--tail", "200", env=env, timeout=60)
        assert logs.code == 0, logs.err
        assert "POST /v1/completions HTTP/1.1" in logs.out  # docker logs of the container
        pids = server_pids(Path(env["AIMC_STATE_DIR"]))
    finally:
        stopped = cli("stop", name, env=env, timeout=120)
    assert stopped.code == 0, stopped.err
    assert _container_ids(docker_socket, name) == []  # gone (not merely stopped)
    assert not any(alive(pid) for pid in pids)
    assert cli("status", env=env).out.strip() == "no server running"


def _fill_cache(cli, env: dict[str, str], tiny_model: Path, repo: str) -> None:
    hub = FakeHub().start()
    files = {
        p.relative_to(tiny_model).as_posix(): p.read_bytes()
        for p in tiny_model.rglob("*")
        if p.is_file()
    }
    hub.add(repo, files)
    try:
        hub_env = {**env, "HF_ENDPOINT": hub.url, "HF_HOME": env["CACHE_DIR"] + "-home"}
        downloaded = cli("cache", "download", repo, env=hub_env, timeout=120)
        assert downloaded.code == 0, downloaded.err
    finally:
        hub.stop()


def _status_of(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:  # nothing listens yet (docker's proxy accepts, then resets)
        return 0


def test_offline_start_from_the_cache_mount_with_an_api_key_and_debug(
    cli, env, tiny_model, reference_tokens, docker_socket, containers, tmp_path
) -> None:
    """By repository id from CACHE_DIR (mounted into the container), offline; the caller's
    VLLM_API_KEY reaches vLLM by name and aimc's own requests carry it; --debug reaches the
    server's environment inside the container."""
    repo, name, port = "aimc-test/tiny-llama", "aim-docker-key", free_port()
    containers.append(name)
    _fill_cache(cli, env, tiny_model, repo)
    env = {**env, "VLLM_API_KEY": KEY, "HF_ENDPOINT": "http://127.0.0.1:9"}  # no hub at all
    result = _launch(cli, env, repo, "--name", name, "--port", str(port), "--debug")
    outputs = [result.out, result.err]
    try:
        assert result.code == 0, result.err + result.out
        inside = _environ(docker_socket, name)
        assert inside["HF_HUB_OFFLINE"] == "1"  # set by aimc: the model is complete in the cache
        assert inside["VLLM_API_KEY"] == KEY
        assert inside["VLLM_LOGGING_LEVEL"] == "DEBUG"
        mounts = json.loads(
            _docker(docker_socket, "inspect", "--format", "{{json .Mounts}}", name).stdout
        )
        assert {(m["Source"], m["Destination"]) for m in mounts} == {
            (env["CACHE_DIR"], "/workspace/model-cache")
        }
        endpoint = f"http://localhost:{port}"
        assert _status_of(f"{endpoint}/v1/models", {}) == 401  # the key is required
        assert _status_of(f"{endpoint}/v1/models", {"Authorization": f"Bearer {KEY}"}) == 200
        status = cli("status", "--format", "json", env=env)
        outputs += [status.out, status.err]
        assert [s["status"] for s in json.loads(status.out)["data"]] == ["running"]
        request = urllib.request.Request(
            f"{endpoint}/v1/completions",
            data=json.dumps(
                {
                    "model": repo,
                    "prompt": PROMPT,
                    "max_tokens": 8,
                    "temperature": 0,
                    "return_token_ids": True,
                }
            ).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        assert answer["choices"][0]["token_ids"] == reference_tokens
        logs = cli("logs", name, "--tail", "400", env=env, timeout=60)
        outputs += [logs.out, logs.err]
        assert "DEBUG" in logs.out  # vLLM logs at debug level
        record_dir = Path(env["AIMC_STATE_DIR"]) / "runs"
        folder = Path(json.loads((record_dir / f"{name}.json").read_text())["folder"])
        written = [
            p.read_bytes()
            for p in [*folder.iterdir(), *record_dir.iterdir()]
            if p.is_file() and p.name != "server.log"
        ]
    finally:
        stopped = cli("stop", name, env=env, timeout=120)
    assert stopped.code == 0, stopped.err
    assert _container_ids(docker_socket, name) == []
    assert not any(KEY.encode() in data for data in written)
    assert not any(KEY in text for text in outputs)


def test_compose_file_up_completion_down(
    cli, env, tiny_model, reference_tokens, docker_socket, containers, tmp_path
) -> None:
    """compose.yaml of the cpu target, as compiled (launch.sh stays a bare process), run by
    Debian's docker-compose against the engine."""
    port, folder = free_port(), tmp_path / "build"
    compiled = cli(
        "compile",
        str(tiny_model),
        "--target",
        "cpu",
        "--port",
        str(port),
        "--set",
        "env.VLLM_CPU_KVCACHE_SPACE=1",
        "-o",
        str(folder),
        env=env,
    )
    assert compiled.code == 0, compiled.err
    containers.append("aim-tiny-llama")
    compose_env = {
        **os.environ,
        "DOCKER_HOST": f"unix://{docker_socket}",
        "CACHE_DIR": env["CACHE_DIR"],
    }

    def compose(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker-compose", "-p", "aimc-test-compose", "-f", "compose.yaml", *args],
            cwd=folder,
            env=compose_env,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )

    up = compose("up", "-d")
    try:
        assert up.returncode == 0, up.stderr
        deadline = time.monotonic() + 400
        while _status_of(f"http://localhost:{port}/v1/models", {}) != 200:
            assert time.monotonic() < deadline, compose("logs", "--tail", "30").stdout
            time.sleep(2)
        check_serving(f"http://localhost:{port}", "tiny-llama", reference_tokens)
        inside = _environ(docker_socket, "aim-tiny-llama")
        assert inside["VLLM_CPU_KVCACHE_SPACE"] == "1"  # from aim.env (env_file)
    finally:
        down = compose("down")
    assert down.returncode == 0, down.stderr
    assert _container_ids(docker_socket, "aim-tiny-llama") == []


def test_a_container_of_the_same_name_is_refused_and_left_alone(
    cli, env, tiny_model, docker_socket, containers
) -> None:
    name = "aim-docker-taken"
    containers.append(name)
    made = _docker(
        docker_socket, "run", "-d", "--name", name, "--entrypoint", "sleep", IMAGE, "600"
    )
    assert made.returncode == 0, made.stderr
    theirs = made.stdout.strip()
    result = cli(
        "launch",
        str(tiny_model),
        "--target",
        "cpu",
        "--launcher",
        "docker",
        "--name",
        name,
        "--port",
        str(free_port()),
        "--timeout",
        "60",
        env=env,
        timeout=120,
    )
    assert result.code == 2, result.err
    assert f"error: a container named {name} already exists" in result.err
    assert _container_ids(docker_socket, name) == [theirs]  # still there, untouched
    running = _docker(docker_socket, "inspect", "--format", "{{.State.Running}}", name)
    assert running.stdout.strip() == "true"
    assert not list((Path(env["AIMC_STATE_DIR"]) / "runs").glob("*.json"))


def test_socket_without_permission_is_exit_7(cli, env, tiny_model, docker_socket) -> None:
    """The socket refuses this user (as for a user outside the docker group): root's
    override of file permissions is dropped for the command, the socket's mode is 000."""
    mode = os.stat(docker_socket).st_mode & 0o7777
    os.chmod(docker_socket, 0)
    try:
        result = subprocess.run(
            [
                "setpriv",
                "--bounding-set=-dac_override,-dac_read_search",
                "--inh-caps=-dac_override,-dac_read_search",
                "env",
                *(f"{k}={v}" for k, v in env.items()),
                sys.executable,
                "-m",
                "aimc",
                "launch",
                str(tiny_model),
                "--target",
                "cpu",
                "--launcher",
                "docker",
                "--port",
                str(free_port()),
                "--timeout",
                "60",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
    finally:
        os.chmod(docker_socket, mode)
    assert result.returncode == 7, result.stderr
    assert "error: no permission to use the Docker engine" in result.stderr
    assert f"hint: this user may not use unix://{docker_socket}; check its owner" in result.stderr
    assert not (Path(env["AIMC_STATE_DIR"]) / "runs").exists() or not list(
        (Path(env["AIMC_STATE_DIR"]) / "runs").glob("*.json")
    )


def test_engine_stopped_while_the_server_starts_is_exit_4(
    cli, env, tiny_model, docker_socket, containers
) -> None:
    """The engine goes away mid-start: exit 4 saying so, no record left. The engine is
    started again for whatever runs next."""
    name = "aim-docker-gone"
    containers.append(name)
    outcome: dict[str, Result] = {}

    def launch() -> None:
        outcome["result"] = _launch(
            cli, env, str(tiny_model), "--name", name, "--port", str(free_port())
        )

    thread = threading.Thread(target=launch)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while not _container_ids(docker_socket, name):
            assert time.monotonic() < deadline and thread.is_alive(), outcome
            time.sleep(0.5)
        assert _engine("stop").returncode == 0
        thread.join(300)
        assert not thread.is_alive()
    finally:
        restarted = _engine("start")
        thread.join(300)
    assert restarted.returncode == 0, restarted.stderr
    result = outcome["result"]
    assert result.code == 4, result.err
    error = json.loads(result.out)["error"]
    assert error["code"] == "MODEL_LAUNCH_FAILED"
    assert "the Docker engine" in error["message"] and "stopped answering" in error["message"]
    assert not list((Path(env["AIMC_STATE_DIR"]) / "runs").glob("*.json"))
