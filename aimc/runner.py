"""Run stage: start a compiled folder's ``launch.sh``, wait until the endpoint answers.

Takes an artifact folder (with ``manifest.json``) and hands on a :class:`RunRecord` once
the server is ready: ``/health`` answers 200 and ``/v1/models`` lists the served model.
The only stage that starts processes. The script runs in its own session (process group)
with its output in ``server.log`` in the folder (never an unread pipe); the runner fails
fast when the process exits, and on timeout or Ctrl-C ends the whole group (SIGTERM, then
SIGKILL) so nothing is orphaned. What was started is recorded in the state folder so that
``status`` and ``stop`` find it later.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aimc.errors import ConfigError, LaunchError, PermissionDeniedError
from aimc.plan import Plan

__all__ = [
    "RunRecord",
    "alive",
    "is_ready",
    "load_records",
    "port_in_use",
    "run_folder",
    "state_dir",
    "stop_record",
]

LOG_NAME = "server.log"
#: Seconds between readiness polls: starts short, grows to the cap.
POLL_START, POLL_MAX = 0.05, 0.25
#: Seconds a stopped group gets between SIGTERM and SIGKILL.
STOP_GRACE = 15.0


def state_dir() -> Path:
    """Where run records live: ``$AIMC_STATE_DIR``, else ``$XDG_STATE_HOME/aimc``."""
    if os.environ.get("AIMC_STATE_DIR"):
        return Path(os.environ["AIMC_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "aimc"


@dataclass(frozen=True)
class RunRecord:
    """A server aimc started.

    Attributes:
        name: Container / run name (``aim-qwen3-32b``).
        pid: Process id of ``launch.sh`` (the process group leader).
        container_id: Docker container id, or ``pid:<pid>`` for a bare process.
        port: Port of the endpoint.
        endpoint_url: ``http://localhost:PORT``.
        folder: The artifact folder.
        log: The server log file.
        launcher: ``process`` or ``docker``.
        model: Served model name.
        gpu_count: GPUs used.
        precision: Weight precision.
        backend: ``vllm`` or ``sglang``.
        health_path: Health endpoint path.
        started: Unix time the server was started.
    """

    name: str
    pid: int
    container_id: str
    port: int
    endpoint_url: str
    folder: str
    log: str
    launcher: str
    model: str
    gpu_count: int
    precision: str
    backend: str
    health_path: str
    started: float

    def to_json(self) -> dict[str, Any]:
        """JSON form (the state file)."""
        return asdict(self)

    def seed_data(self, status: str) -> dict[str, Any]:
        """The ``data`` object of the AIM Engine success response."""
        return {
            "container_id": self.container_id,
            "container_name": self.name,
            "endpoint_url": self.endpoint_url,
            "gpu_count": self.gpu_count,
            "precision": self.precision,
            "backend": self.backend,
            "status": status,
        }


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg succeeds while zombies remain; look for a live member.
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def kill_group(pgid: int, grace: float = STOP_GRACE) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``grace`` seconds."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _group_alive(pgid):
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _group_alive(pgid):
        time.sleep(0.05)


def port_in_use(port: int) -> bool:
    """True when something already listens on ``port`` on this machine."""
    for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(0.2)
            try:
                if s.connect_ex((address, port)) == 0:
                    return True
            except OSError:
                continue
    return False


def _get(url: str, timeout: float = 1.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except (urllib.error.URLError, OSError, ValueError):
        return 0, b""


def is_ready(port: int, health_path: str, model: str) -> bool:
    """``/health`` answers 200 and ``/v1/models`` lists ``model``."""
    base = f"http://127.0.0.1:{port}"
    status, _ = _get(base + health_path)
    if status != 200:
        return False
    status, body = _get(base + "/v1/models")
    if status != 200:
        return False
    try:
        ids = [m.get("id") for m in json.loads(body).get("data", [])]
    except (ValueError, AttributeError):
        return False
    return model in ids


def _tail(log: Path, lines: int = 20) -> str:
    try:
        text = log.read_bytes()[-16384:].decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _last_line(log: Path) -> str:
    tail = _tail(log, 1)
    return tail[-100:]


def _docker_check(env: dict[str, str]) -> None:
    """Fail clearly (exit 4, or 7 for the socket's permissions) when Docker is unusable."""
    try:
        proc = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=15,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise LaunchError(
            "docker is not installed (no docker command on PATH)",
            hint="install Docker, or compile with --launcher process",
        ) from None
    except subprocess.TimeoutExpired:
        raise LaunchError("the Docker engine did not answer within 15 s") from None
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip().splitlines()
        text = message[-1] if message else f"exit code {proc.returncode}"
        if "permission denied" in text.lower():
            raise PermissionDeniedError(
                f"no permission to use the Docker engine: {text}",
                hint="add your user to the docker group, or check DOCKER_SOCKET",
            )
        raise LaunchError(
            f"no Docker engine is reachable: {text}",
            hint="start Docker, set DOCKER_SOCKET, or compile with --launcher process",
        )


def _record_path(name: str) -> Path:
    return state_dir() / "runs" / f"{name}.json"


def load_records() -> list[RunRecord]:
    """Every recorded run, oldest first (unreadable records are skipped)."""
    out = []
    for path in sorted((state_dir() / "runs").glob("*.json")):
        try:
            out.append(RunRecord(**json.loads(path.read_text())))
        except (OSError, ValueError, TypeError):
            continue
    return sorted(out, key=lambda r: r.started)


def forget(record: RunRecord) -> None:
    """Remove a run record."""
    with contextlib.suppress(FileNotFoundError):
        _record_path(record.name).unlink()


def stop_record(record: RunRecord, env: dict[str, str] | None = None) -> None:
    """Stop a recorded server (the whole process group; the container for Docker)."""
    if record.launcher == "docker":
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                ["docker", "rm", "-f", record.name],
                capture_output=True,
                timeout=60,
                env=env or dict(os.environ),
                stdin=subprocess.DEVNULL,
            )
    kill_group(record.pid)
    forget(record)


def run_folder(
    folder: Path,
    timeout: float,
    name: str | None = None,
    progress: Callable[[float, str], None] | None = None,
    env: dict[str, str] | None = None,
) -> RunRecord:
    """Start the folder's ``launch.sh`` and wait until its endpoint is ready.

    Args:
        folder: A compiled artifact folder.
        timeout: Seconds to wait for readiness.
        name: Run name (default: the plan's name).
        progress: Called with (elapsed seconds, the server's latest log line) while waiting.
        env: Environment for the server (default: this process's).

    Raises:
        ConfigError: The folder is not a compiled aimc folder, or the name is taken.
        LaunchError: The port is taken, the server exited, or it was not ready in time.
    """
    manifest = folder / "manifest.json"
    script = folder / "launch.sh"
    try:
        plan = Plan.from_json(json.loads(manifest.read_text())["plan"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{folder} is not a compiled aimc folder ({type(exc).__name__}: {exc})",
            hint="create it with 'aim-engine compile ... -o DIR'",
        ) from None
    if not script.is_file():
        raise ConfigError(f"{script} is missing", hint="recompile the folder")
    name = name or plan.name
    env = dict(os.environ if env is None else env)
    if env.get("DOCKER_SOCKET") and "DOCKER_HOST" not in env:
        env["DOCKER_HOST"] = f"unix://{env['DOCKER_SOCKET']}"
    for record in load_records():
        if record.name == name:
            if alive(record.pid):
                raise ConfigError(
                    f"a server named {name} is already running ({record.endpoint_url})",
                    hint=f"stop it with 'aim-engine stop {name}'",
                )
            forget(record)  # stale
    if port_in_use(plan.port):
        raise LaunchError(
            f"port {plan.port} is already in use",
            hint="stop what listens there, or launch with --port N",
        )
    if plan.launcher == "docker":
        _docker_check(env)
    env["AIM_CONTAINER_NAME"] = name
    log = folder / LOG_NAME
    start = time.monotonic()
    with log.open("ab") as out:
        try:
            proc = subprocess.Popen(
                ["bash", str(script)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=folder,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise LaunchError(f"cannot start {script}: {exc.strerror or exc}") from None
    container_id = f"pid:{proc.pid}"
    try:
        delay = POLL_START
        while True:
            code = proc.poll()
            if code is not None:
                tail = _tail(log)
                raise LaunchError(
                    f"the server exited with code {code} after {time.monotonic() - start:.1f} s",
                    details=tail,
                    hint=f"its log: {log}",
                )
            if is_ready(plan.port, plan.health_path, plan.served_model_name):
                break
            elapsed = time.monotonic() - start
            if elapsed > timeout:
                kill_group(proc.pid)
                if plan.launcher == "docker":
                    with contextlib.suppress(OSError, subprocess.SubprocessError):
                        subprocess.run(
                            ["docker", "rm", "-f", name],
                            capture_output=True,
                            timeout=60,
                            env=env,
                            stdin=subprocess.DEVNULL,
                        )
                tail = _tail(log)
                raise LaunchError(
                    f"the server was not ready after {timeout:g} s; stopped it",
                    details=tail,
                    hint=f"its log: {log}",
                )
            if progress is not None:
                progress(elapsed, _last_line(log))
            time.sleep(delay)
            delay = min(delay * 1.5, POLL_MAX)
    except KeyboardInterrupt:
        kill_group(proc.pid, grace=5)
        raise
    if plan.launcher == "docker":
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            found = subprocess.run(
                ["docker", "inspect", "--format", "{{.Id}}", name],
                capture_output=True,
                text=True,
                timeout=30,
                env=env,
                stdin=subprocess.DEVNULL,
            ).stdout.strip()
            container_id = found[:12] or container_id
    record = RunRecord(
        name=name,
        pid=proc.pid,
        container_id=container_id,
        port=plan.port,
        endpoint_url=f"http://localhost:{plan.port}",
        folder=str(folder.resolve()),
        log=str(log.resolve()),
        launcher=plan.launcher,
        model=plan.served_model_name,
        gpu_count=plan.total_gpus,
        precision=plan.precision,
        backend=plan.backend,
        health_path=plan.health_path,
        started=time.time(),
    )
    path = _record_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record.to_json(), indent=2) + "\n")
    tmp.replace(path)
    return record


def terminal_progress(elapsed: float, line: str) -> None:
    """Progress on a terminal: elapsed time and the server's latest log line."""
    width = 100
    text = f"\r[{elapsed:5.0f}s] {line}"[:width]
    sys.stderr.write(text.ljust(width))
    sys.stderr.flush()
