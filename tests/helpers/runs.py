"""Running the stand-in server through aimc: compiled labs, a reaper of process groups,
the CLI in a session of its own, /proc readers. Shared by the runner, run-record, logs,
progress, contract and JSON-output tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, Result, default_stop_signals
from tests.helpers.cli import base_env, run

FAKE = ROOT / "tests" / "fakes" / "fake_server.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lab:
    """A folder compiled for the cpu target whose 'python' is the stand-in server."""

    def __init__(self, tmp: Path, cli):
        self.tmp, self.cli = tmp, cli
        self.port = free_port()
        self.python = tmp / "fake-python"
        self.python.write_text(f'#!/bin/bash\nexec {sys.executable} {FAKE} "$@"\n')
        self.python.chmod(0o755)
        self.pids = tmp / "pids.json"
        self.env = {
            "AIM_PYTHON": str(self.python),
            "AIMC_STATE_DIR": str(tmp / "state"),
            "CACHE_DIR": str(tmp / "cache"),
            "FAKE_PIDS": str(self.pids),
        }
        self.folder = tmp / "build"
        model = ROOT / "examples/recipes/models/aimc-examples/tiny-llama.yaml"
        assert model.exists()
        result = cli(
            "compile",
            "aimc-examples/tiny-llama",
            "--target",
            "cpu",
            "--recipes",
            str(ROOT / "examples/recipes"),
            "--port",
            str(self.port),
            "-o",
            str(self.folder),
        )
        assert result.code == 0, result.err

    def run(self, *args: str, **env: str):
        return self.cli(*args, env={**self.env, **env})

    def stop_recorded(self) -> None:
        """At teardown: ``stop --all`` when there is a run record in the lab's state folder
        (``stop`` acts on the records alone: without one it stops nothing)."""
        if any((self.tmp / "state" / "runs").glob("*.json")):
            self.run("stop", "--all")

    def started_pids(self) -> dict[str, int]:
        return json.loads(self.pids.read_text())


EXAMPLES = ROOT / "examples" / "recipes"
NAME = "aim-tiny-llama"


def proc_stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of the process group ``pgid``."""
    out = []
    for entry in Path("/proc").glob("[0-9]*"):
        fields = proc_stat(int(entry.name))
        if fields and fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(entry.name))
    return out


def start_ticks(pid: int) -> int:
    fields = proc_stat(pid)
    assert fields is not None
    return int(fields[19])


def environ_of(pid: int) -> dict[str, str]:
    """The environment a running process was started with."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def wait_for(check: Callable[[], bool], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def snapshot(folder: Path) -> dict[str, Any]:
    """Everything about a folder a rewrite would change: files, bytes, inodes."""
    out: dict[str, Any] = {".": os.stat(folder).st_ino}
    for path in sorted(folder.rglob("*")):
        info = os.lstat(path)
        key = str(path.relative_to(folder))
        out[key] = (info.st_ino, path.read_bytes() if path.is_file() else None)
    return out


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


class Reaper:
    """Kills, at teardown, every process group a test started (and stand-in servers)."""

    def __init__(self) -> None:
        self.groups: set[int] = set()
        self.pid_files: list[Path] = []

    def cleanup(self) -> None:
        groups = set(self.groups)
        for path in self.pid_files:
            try:
                groups.add(json.loads(path.read_text())["server"])
            except (OSError, ValueError, KeyError):
                continue
        for pgid in groups:
            # Only groups that still are sessions of their own: ours, not a reused id.
            fields = proc_stat(pgid)
            if members(pgid) and (fields is None or int(fields[3]) == pgid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
            wait_for(lambda g=pgid: not members(g), 10)


def cli_env(env: dict[str, str] | None = None) -> dict[str, str]:
    return base_env(env, strip=("FAKE_",))


def run_cli(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 60
) -> Result:
    """``aim-engine ARGS`` with :func:`cli_env`: a server command as ``python -m aimc`` in a
    session of its own (a killpg(0) stays inside it), a pure one in this process
    (:mod:`tests.helpers.cli`)."""
    return run(args, cli_env(env), cwd=cwd, timeout=timeout, session=True)


class RunLab(Lab):
    """A :class:`Lab` with a reaper and its own CLI runner."""

    def __init__(self, tmp: Path, reaper: Reaper):
        super().__init__(tmp, run_cli)
        self.reaper = reaper
        reaper.pid_files.append(self.pids)
        self.runs = tmp / "state" / "runs"

    def run_in(self, cwd: Path, *args: str, **env: str) -> Result:
        return run_cli(*args, cwd=cwd, env={**self.env, **env})

    def popen(self, *args: str, **env: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aimc", *args],
            env=cli_env({**self.env, **env}),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=default_stop_signals,
        )
        self.reaper.groups.add(proc.pid)
        return proc

    def server_pid(self) -> int:
        assert wait_for(self._pids_complete), "the stand-in server never started"
        return int(self.started_pids()["server"])

    def _pids_complete(self) -> bool:
        try:
            self.started_pids()
        except (OSError, ValueError):
            return False
        return True

    def launch_args(self, *extra: str) -> list[str]:
        return [
            "launch",
            "aimc-examples/tiny-llama",
            "--target",
            "cpu",
            "--recipes",
            str(EXAMPLES),
            "--port",
            str(self.port),
            *extra,
        ]

    def wait_logged_ready(self, folder: Path) -> None:
        """The stand-in logs 'ready' just after it answers; wait so the log is final."""
        log = folder / "server.log"
        assert wait_for(lambda: log.exists() and "fake server: ready" in log.read_text())

    def record(self, name: str, **fields: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "name": name,
            "pid": 999_999,
            "container_id": "pid:999999",
            "port": self.port,
            "endpoint_url": f"http://localhost:{self.port}",
            "folder": str(self.folder),
            "log": str(self.folder / "server.log"),
            "launcher": "process",
            "model": "aimc-examples/tiny-llama",
            "gpu_count": 1,
            "precision": "fp32",
            "backend": "vllm",
            "health_path": "/health",
            "started": time.time(),
            "start_time": 1,
            "sid": 999_999,
            "boot_id": boot_id(),
        }
        base.update(fields)
        return {k: v for k, v in base.items() if v is not _MISSING}

    def write_record(self, file_stem: str, data: Any) -> Path:
        self.runs.mkdir(parents=True, exist_ok=True)
        path = self.runs / f"{file_stem}.json"
        path.write_text(json.dumps(data))
        return path


_MISSING = object()
#: The fields an older aimc wrote in a run record: no start time, session or boot id.
LEGACY = {"start_time": _MISSING, "sid": _MISSING, "boot_id": _MISSING}


def warnings_about(err: str, text: str) -> list[str]:
    return [line for line in err.splitlines() if text in line]
