"""No orphans: a run's whole process group is stopped when the CLI waiting for it gets SIGTERM
or SIGHUP, when its record cannot be written, and by ``stop`` through a pidfd (a pid reused
after the check is never signalled); a starting server is recorded and shown, and an
unwritable state folder starts nothing.

Every process a test starts is killed by the ``reaper`` fixture, whatever the test did. No
assertion depends on timing: loops only wait, with generous deadlines.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.helpers.runs import (
    NAME,
    Reaper,
    boot_id,
    cli_env,
    members,
    proc_stat,
    start_ticks,
    wait_for,
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
def test_stop_signal_while_waiting_stops_the_whole_group(lab, signum: int) -> None:
    """Failed before: only SIGINT was handled; SIGTERM or SIGHUP killed the CLI and left
    the server running, unrecorded."""
    proc = lab.popen("run", str(lab.folder), "--timeout", "300", FAKE_MODE="never")
    server = lab.server_pid()
    child = lab.started_pids()["child"]
    proc.send_signal(signum)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    assert not members(server)
    fields = proc_stat(child)
    assert fields is None or fields[0] == "Z"
    assert lab.run("status").out.strip() == "no server running"
    assert not list(lab.runs.glob("*.json"))


def test_status_shows_a_server_that_is_still_starting(lab) -> None:
    """Failed before: the run was recorded only once ready, so 'status' did not show it
    (and a crash of the CLI while waiting lost the server)."""
    proc = lab.popen("run", str(lab.folder), "--timeout", "300", FAKE_MODE="never")
    server = lab.server_pid()
    assert wait_for(lambda: (lab.runs / f"{NAME}.json").exists(), 30)
    status = lab.run("status", "--format", "json")
    rows = json.loads(status.out)["data"]
    assert [(r["name"], r["status"], r["pid"]) for r in rows] == [(NAME, "starting", server)]
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert not members(server)


@pytest.mark.parametrize("how", ["runs-is-a-file", "state-below-a-file"])
def test_unwritable_state_folder_starts_nothing(lab, how: str) -> None:
    """Failed before: the server was started, became ready, and was then lost when its
    record could not be written (an internal error, the server left running)."""
    if how == "runs-is-a-file":
        (lab.tmp / "state").mkdir()
        (lab.tmp / "state" / "runs").write_text("not a folder")
        state = lab.tmp / "state"
    else:
        (lab.tmp / "plain-file").write_text("")
        state = lab.tmp / "plain-file" / "state"
    result = lab.run("run", str(lab.folder), FAKE_MODE="ready", AIMC_STATE_DIR=str(state))
    assert result.code == 1, result.err
    assert "error: cannot write run records in" in result.err
    assert "internal error" not in result.err and "Traceback" not in result.err
    assert not lab.pids.exists()  # nothing was started


def test_record_write_failure_after_start_stops_the_server(
    lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failed before: there was no record before readiness and no such cleanup (the
    runner module had no _write_record to fail)."""
    import errno

    from aimc.core.errors import PermissionDeniedError
    from aimc.run import runner, runs

    started: list[int] = []

    def refuse(record: Any, replace: bool = False) -> None:
        started.append(record.pid)
        lab.reaper.groups.add(record.pid)
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(runs, "_write_record", refuse)
    monkeypatch.setenv("AIMC_STATE_DIR", lab.env["AIMC_STATE_DIR"])
    env = cli_env({**lab.env, "FAKE_MODE": "ready"})
    with pytest.raises(PermissionDeniedError) as caught:
        runner.run_folder(lab.folder, 60, env=env)
    assert caught.value.exit_code == 7
    assert "cannot write run records" in caught.value.message
    assert len(started) == 1 and not members(started[0])


def test_a_pid_reused_after_the_check_is_never_signalled(tmp_path: Path) -> None:
    """Failed before: 'stop' proved the record and then signalled the pid by number, so a
    process that took the pid in between (while Docker removed the container, say) was
    killed. Real reuse, in a PID namespace of the test's own (tests/fakes/pid_reuse.py):
    the server exits right after the proof and a foreign session gets its pid; the
    signals go through the pidfd opened before the proof and reach nobody."""
    folder = tmp_path / "build"
    folder.mkdir()
    script = ROOT / "tests" / "fakes" / "pid_reuse.py"
    result = subprocess.run(
        # A user namespace of its own too: root in it may set ns_last_pid, without root here.
        ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc",
         sys.executable, str(script), str(folder)],
        env={**cli_env(), "AIMC_STATE_DIR": str(tmp_path / "state"), "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["proved"] and seen["reused"], seen  # the race happened, for real
    assert seen["stopped"]  # the run was proved ours: stop reports it stopped
    assert seen["foreign_alive"], seen  # the process that took its pid was not signalled


@pytest.fixture
def session(tmp_path: Path, reaper: Reaper) -> Iterator[tuple[subprocess.Popen[bytes], Any]]:
    """A server-like session (a leader and a child in its group) working in its folder,
    and its run record as aimc writes it."""
    from aimc.core.records import RunRecord

    folder = tmp_path / "build"
    folder.mkdir()
    proc = subprocess.Popen(["bash", "-c", "sleep 300 & wait"], cwd=folder, start_new_session=True)
    reaper.groups.add(proc.pid)
    assert wait_for(lambda: len(members(proc.pid)) == 2)
    record = RunRecord(
        name="server", pid=proc.pid, container_id=f"pid:{proc.pid}", port=1,
        endpoint_url="http://localhost:1", folder=str(folder), log=str(folder / "server.log"),
        launcher="process", model="m", gpu_count=1, precision="fp32", backend="vllm",
        health_path="/health", started=time.time(), start_time=start_ticks(proc.pid),
        sid=proc.pid, boot_id=boot_id(),
    )  # fmt: skip
    try:
        yield proc, record
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("kernel", ["group-pidfd", "leader-pidfd", "no-pidfd"])
def test_stop_ends_the_whole_group_with_or_without_pidfds(
    session, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kernel: str
) -> None:
    """The whole group is stopped: through the leader's pidfd with Linux 6.9's group flag;
    before 6.9 (the flag answers EINVAL) the leader through its pidfd and the group by
    number; with no pidfds at all (another platform, a sandbox) by number, as verified."""
    import errno as errno_module

    from aimc.run import process, runs

    monkeypatch.setenv("AIMC_STATE_DIR", str(tmp_path / "state"))
    sent: list[tuple[int, int]] = []
    real_send = signal.pidfd_send_signal

    def send(fd: int, sig: int, siginfo: Any = None, flags: int = 0) -> None:
        sent.append((sig, flags))
        if flags and kernel == "leader-pidfd":
            raise OSError(errno_module.EINVAL, "Invalid argument")
        real_send(fd, sig, siginfo, flags)

    monkeypatch.setattr(signal, "pidfd_send_signal", send)
    if kernel == "no-pidfd":
        monkeypatch.delattr(os, "pidfd_open")
    proc, record = session
    assert runs.stop_record(record)
    assert not members(proc.pid)
    assert proc.wait(timeout=30) == -signal.SIGTERM
    if kernel == "group-pidfd":
        assert (signal.SIGTERM, process.PIDFD_SIGNAL_PROCESS_GROUP) in sent
    elif kernel == "leader-pidfd":
        assert (signal.SIGTERM, 0) in sent
    else:
        assert sent == []
