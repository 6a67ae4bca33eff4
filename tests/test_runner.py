"""The runner with a stand-in server: fast failure, timeouts, late readiness, busy ports,
state records, Docker errors. The real vLLM server is in test_server.py."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from aimc.run.process import alive
from tests.conftest import ROOT, default_stop_signals
from tests.helpers.runs import FAKE, Lab


@pytest.fixture
def lab(tmp_path: Path, cli) -> Lab:
    lab = Lab(tmp_path, cli)
    yield lab
    lab.stop_recorded()
    if lab.pids.exists():  # never leave a stand-in behind, whatever a test did
        for pid in lab.started_pids().values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_server_that_exits_at_once_is_reported_with_its_log(lab) -> None:
    result = lab.run("run", str(lab.folder), "--timeout", "60", FAKE_MODE="exit")
    assert result.code == 4
    assert "error: the server exited with code 3 after" in result.err
    assert "cannot allocate KV cache, giving up" in result.err
    assert f"its log: {lab.folder / 'server.log'}" in result.err
    assert "Traceback" not in result.err
    assert lab.run("status").out.strip() == "no server running"


def test_server_that_never_becomes_healthy_is_stopped_at_the_timeout(lab) -> None:
    start = time.monotonic()
    # 10 s: the stand-in must have started (and written its pids) before it is stopped,
    # also on a loaded machine.
    result = lab.run(
        "run", str(lab.folder), "--timeout", "10", "--format", "json", FAKE_MODE="never"
    )
    assert result.code == 4
    body = json.loads(result.out)
    assert body["error"]["code"] == "MODEL_LAUNCH_FAILED"
    assert body["error"]["message"] == "the server was not ready after 10 s; stopped it"
    assert time.monotonic() - start < 60
    pids = lab.started_pids()
    assert not alive(pids["server"]) and not alive(pids["child"])


def test_server_that_becomes_healthy_late(lab) -> None:
    result = lab.run(
        "run",
        str(lab.folder),
        "--timeout",
        "30",
        "--format",
        "json",
        FAKE_MODE="late",
        FAKE_DELAY="1.5",
    )
    assert result.code == 0, result.err
    body = json.loads(result.out)
    assert body["success"] is True and body["message"] == "Model launched successfully"
    data = body["data"]
    assert set(data) == {
        "container_id",
        "container_name",
        "endpoint_url",
        "gpu_count",
        "precision",
        "backend",
        "status",
    }
    assert data["endpoint_url"] == f"http://localhost:{lab.port}"
    assert (data["container_name"], data["status"], data["precision"]) == (
        "aim-tiny-llama",
        "running",
        "fp32",
    )
    status = json.loads(lab.run("status", "--format", "json").out)["data"]
    assert [s["name"] for s in status] == ["aim-tiny-llama"]
    assert status[0]["status"] == "running"
    stopped = lab.run("stop", "aim-tiny-llama")
    assert stopped.code == 0 and stopped.out.strip() == "stopped: aim-tiny-llama"
    pids = lab.started_pids()
    assert not alive(pids["server"]) and not alive(pids["child"])
    assert lab.run("status").out.strip() == "no server running"


def test_port_already_in_use_is_refused_before_starting(lab) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", lab.port))
        busy.listen()
        result = lab.run("run", str(lab.folder), FAKE_MODE="ready")
    assert result.code == 4
    assert f"error: port {lab.port} is already in use" in result.err
    assert not lab.pids.exists()


def test_a_second_run_with_the_same_name_is_refused(lab) -> None:
    assert lab.run("run", str(lab.folder), FAKE_MODE="ready").code == 0
    again = lab.run("run", str(lab.folder), FAKE_MODE="ready")
    assert again.code == 2
    assert "a server named aim-tiny-llama is already running" in again.err


def test_stale_record_is_cleaned_up(lab) -> None:
    assert lab.run("run", str(lab.folder), FAKE_MODE="ready").code == 0
    pids = lab.started_pids()
    os.killpg(pids["server"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while alive(pids["server"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lab.run("status").out.strip() == "no server running"
    assert not list((lab.tmp / "state" / "runs").glob("*.json"))


def test_stop_unknown_name(lab) -> None:
    assert lab.run("run", str(lab.folder), FAKE_MODE="ready").code == 0
    result = lab.run("stop", "aim-tiny-lama")
    assert result.code == 2
    assert "did you mean 'aim-tiny-llama'?" in result.err


def test_run_needs_a_compiled_folder(lab, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = lab.run("run", str(empty))
    assert result.code == 2
    assert "is not a compiled aimc folder" in result.err


def _docker(lab: Lab, version_body: str) -> dict[str, str]:
    """A stand-in docker: 'run' remembers the run's label (its container then exists, with
    id 0123456789ab...), 'container inspect' answers as Docker's --format does."""
    bindir = lab.tmp / "bin"
    bindir.mkdir(exist_ok=True)
    docker = bindir / "docker"
    label = lab.tmp / "container-label"
    docker.write_text(
        "#!/bin/bash\n"
        f'case "$1" in\n  version) {version_body};;\n'
        f'  container) [ -f {label} ] || exit 1; echo "{"0123456789ab" * 5}0123 $(cat {label})";;\n'
        "  rm) exit 0;;\n"
        f'  run) for w in "$@"; do case "$w" in dev.aimc.run=*) echo "${{w#*=}}" > {label};; '
        f'esac; done; exec {sys.executable} {FAKE} "$@";;\nesac\n'
    )
    docker.chmod(0o755)
    return {"PATH": f"{bindir}:{os.environ['PATH']}"}


@pytest.fixture
def docker_folder(lab) -> Path:
    folder = lab.tmp / "docker-build"
    result = lab.cli(
        "compile",
        "aimc-examples/tiny-llama",
        "--target",
        "cpu",
        "--recipes",
        str(ROOT / "examples/recipes"),
        "--port",
        str(lab.port),
        "--launcher",
        "docker",
        "--set",
        "image=vllm/vllm-openai:v0.32.0",
        "-o",
        str(folder),
    )
    assert result.code == 0, result.err
    return folder


def test_no_docker_engine_is_a_launch_error(lab, docker_folder) -> None:
    env = _docker(
        lab,
        "echo 'Cannot connect to the Docker daemon at "
        "unix:///var/run/docker.sock. Is the docker daemon running?' >&2; exit 1",
    )
    result = lab.run("run", str(docker_folder), **env)
    assert result.code == 4
    assert "error: no Docker engine is reachable: Cannot connect to the Docker daemon" in result.err


def test_a_launch_without_docker_gets_only_hints_that_apply(lab) -> None:
    """Failed before: 'launch' was told to "compile with --launcher process"."""
    env = _docker(lab, "echo 'Cannot connect to the Docker daemon' >&2; exit 1")
    result = lab.run(
        "launch", "aimc-examples/tiny-llama", "--target", "cpu", "--launcher", "docker",
        "--set", "image=vllm/vllm-openai:v0.32.0", "--recipes", str(ROOT / "examples/recipes"),
        "--port", str(lab.port), "--timeout", "30", **env,
    )  # fmt: skip
    assert result.code == 4, result.err
    assert "error: no Docker engine is reachable: Cannot connect to the Docker daemon" in (
        result.err
    )
    (hint,) = [line for line in result.err.splitlines() if line.startswith("hint: ")]
    assert hint == "hint: start Docker, or set DOCKER_SOCKET to the socket of a running engine"


def test_docker_socket_permission_is_exit_7(lab, docker_folder) -> None:
    env = _docker(
        lab,
        "echo 'permission denied while trying to connect to the Docker daemon "
        "socket at unix:///var/run/docker.sock' >&2; exit 1",
    )
    result = lab.run("run", str(docker_folder), "--format", "json", **env)
    assert result.code == 7
    assert json.loads(result.out)["error"]["code"] == "PERMISSION_DENIED"


def test_docker_launcher_runs_and_records_the_container(lab, docker_folder) -> None:
    env = _docker(lab, "echo 28.2.2")
    result = lab.run("run", str(docker_folder), "--format", "json", FAKE_MODE="ready", **env)
    assert result.code == 0, result.err
    assert json.loads(result.out)["data"]["container_id"] == "0123456789ab"
    assert lab.run("stop", "--all", **env).code == 0
    assert not alive(lab.started_pids()["server"])


def test_ctrl_c_while_waiting_stops_the_whole_group(lab) -> None:
    import subprocess

    env = {**os.environ, **lab.env, "FAKE_MODE": "never"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "aimc", "run", str(lab.folder)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_stop_signals,
    )

    def both_started() -> bool:
        try:
            return {"server", "child"} <= set(lab.started_pids())
        except (OSError, ValueError):
            return False

    deadline = time.monotonic() + 60
    while not both_started():
        assert time.monotonic() < deadline, "the stand-in server never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err
    pids = lab.started_pids()
    assert not alive(pids["server"]) and not alive(pids["child"])
    assert lab.run("status").out.strip() == "no server running"


# --- the server log and the health checks are the server's: hostile on purpose ------------


@pytest.mark.parametrize("what", ["fifo", "link"])
def test_a_log_that_is_a_pipe_or_a_link_is_refused_before_starting(
    lab, tmp_path: Path, what: str
) -> None:
    """Failed before: a FIFO at server.log made 'run' wait forever (deaf to SIGINT and
    SIGTERM); a link had the server's output appended to the file it names."""
    log = lab.folder / "server.log"
    outside = tmp_path / "outside.txt"
    outside.write_text("OUTSIDE\n")
    if what == "fifo":
        os.mkfifo(log)
    else:
        log.symlink_to(outside)
    result = lab.run("run", str(lab.folder), "--timeout", "30", FAKE_MODE="ready")
    assert result.code == 4, result.err
    assert "cannot open the server log" in result.err and "Traceback" not in result.err
    assert outside.read_text() == "OUTSIDE\n"
    assert not lab.pids.exists()  # nothing was started


def test_a_failed_start_shows_the_logs_tail_cleaned_and_read_from_its_end(lab) -> None:
    """Failed before: the whole log was read into memory (a 3 GB log: 3 GB) and its
    escape sequences reached the terminal."""
    preamble = lab.tmp / "preamble"
    with preamble.open("wb") as f:
        f.truncate(1 << 25)  # 32 MiB the server writes before its last lines
        f.seek(1 << 25)
        f.write(b"\x1b]0;TITLE\x07\x1b[2J hostile line\n")
    result = lab.run(
        "run", str(lab.folder), "--timeout", "60", FAKE_MODE="exit", FAKE_PREAMBLE=str(preamble)
    )
    assert result.code == 4, result.err
    assert "cannot allocate KV cache, giving up" in result.err
    assert "hostile line" in result.err
    assert "\x1b" not in result.err and "\x07" not in result.err


def test_each_run_starts_a_new_log_and_keeps_the_previous_one(lab, cli) -> None:
    """Failed before: server.log grew across runs, so a failure showed the lines
    of earlier runs as this one's."""
    log, previous = lab.folder / "server.log", lab.folder / "server.log.1"
    first = lab.run("run", str(lab.folder), "--timeout", "60", FAKE_MODE="exit")
    assert first.code == 4 and "cannot allocate KV cache" in first.err
    assert not previous.exists()
    assert lab.run("run", str(lab.folder), "--timeout", "60", FAKE_MODE="ready").code == 0
    assert "cannot allocate KV cache" in previous.read_text()  # the first run's, kept
    assert "cannot allocate KV cache" not in log.read_text()
    assert "mode ready" in log.read_text()
    shown = lab.run("logs", "aim-tiny-llama")
    assert shown.code == 0 and "mode ready" in shown.out and "mode exit" not in shown.out
    assert lab.run("stop", "--all").code == 0
    third = lab.run("run", str(lab.folder), "--timeout", "60", FAKE_MODE="exit")
    assert third.code == 4
    assert "mode ready" not in third.err  # the failure shows this run's lines only
    assert "mode ready" in previous.read_text()  # one generation: the first run's is gone
    assert "mode exit" in log.read_text() and len(list(lab.folder.glob("server.log*"))) == 2
    # the folder stays aimc's: compiled again in place, and up to date for --check
    again = (
        "compile", "aimc-examples/tiny-llama", "--target", "cpu",
        "--recipes", str(ROOT / "examples/recipes"), "--port", str(lab.port),
        "-o", str(lab.folder),
    )  # fmt: skip
    assert cli(*again, "--check").code == 0
    assert cli(*again).code == 0, "the folder holding server.log.1 was refused"
    assert previous.exists() and log.exists()  # carried over, as the log is


def test_a_previous_log_that_is_a_folder_is_a_clear_launch_error(lab) -> None:
    (lab.folder / "server.log").write_text("earlier\n")
    (lab.folder / "server.log.1").mkdir()
    result = lab.run("run", str(lab.folder), "--timeout", "30", FAKE_MODE="ready")
    assert result.code == 4
    assert "cannot keep the previous server log as server.log.1" in result.err
    assert not lab.pids.exists()  # nothing was started


def _hostile_http(mode: str) -> tuple[socket.socket, int]:
    """A listener that answers every connection in a broken way, in a thread."""
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def answer(conn: socket.socket) -> None:
        try:
            conn.recv(4096)
            if mode == "trickle":  # a status line, then one byte every 0.2 s, forever
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                while True:
                    conn.sendall(b"x")
                    time.sleep(0.2)
            elif mode == "trickle-headers":
                conn.sendall(b"HTTP/1.1 200 OK\r\nX: ")
                while True:
                    conn.sendall(b"y")
                    time.sleep(0.2)
            elif mode == "bad-status":
                conn.sendall(b"LEAK Bearer abc\r\n\r\n")
            elif mode == "long-header":
                conn.sendall(b"HTTP/1.1 200 OK\r\nX: " + b"z" * 100_000 + b"\r\n\r\n")
        except OSError:
            pass
        finally:
            conn.close()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return server, int(server.getsockname()[1])


@pytest.mark.parametrize("mode", ["trickle", "trickle-headers", "bad-status", "long-header"])
def test_a_broken_or_trickling_answer_is_no_answer(mode: str) -> None:
    """Failed before: a trickle kept the health check reading forever (so 'run' ignored
    its timeout and stop signals, and 'status' hung), and a malformed status line or
    header was an internal error (http.client.HTTPException is no OSError)."""
    from aimc.run.probe import is_ready

    server, port = _hostile_http(mode)
    try:
        start = time.monotonic()
        assert is_ready(port, "/health", "m", timeout=1.0) is False
        assert time.monotonic() - start < 30  # the trickle alone never ends
    finally:
        server.close()
