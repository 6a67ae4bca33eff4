"""The runner's verification functions one by one (in-process, on real child processes):
what decides that a run record names the process aimc started, that a run name is safe and
that a manifest's plan can be run. ``bench/mutation.py`` mutates these functions against
this file (the CLI tests of ``test_run_records.py`` and ``test_run_names.py`` check the
same rules end to end)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.core.errors import ConfigError
from aimc.core.records import RunRecord, validate_name
from aimc.plan.request import Request
from aimc.run.process import _boot_id, _proc_stat, _works_in, alive, verify
from aimc.run.runplan import _plan_problem


@pytest.fixture
def child(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process in its own session working in ``tmp_path/run``, like launch.sh."""
    folder = tmp_path / "run"
    folder.mkdir()
    proc = subprocess.Popen(["sleep", "60"], cwd=folder, start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def _record(proc: subprocess.Popen[bytes], folder: Path, **changes: object) -> RunRecord:
    stat = _proc_stat(proc.pid)
    assert stat is not None
    record = RunRecord(
        name="aim-x", pid=proc.pid, container_id=f"pid:{proc.pid}", port=8000,
        endpoint_url="http://localhost:8000", folder=str(folder), log=str(folder / "server.log"),
        launcher="process", model="m", gpu_count=0, precision="fp32", backend="vllm",
        health_path="/health", started=time.time(), start_time=stat.start_time, sid=stat.sid,
        boot_id="".join(list(_boot_id())),  # equal, not the same object (as read from JSON)
    )  # fmt: skip
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


# --- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "0", "a" * 63, "aim-qwen3.32b_x", "a.b"])
def test_valid_run_names(name: str) -> None:
    assert validate_name(name) == name


def test_an_invalid_run_name_is_quoted_up_to_80_characters() -> None:
    with pytest.raises(ConfigError) as caught:
        validate_name("A" * 200)
    assert caught.value.message == "invalid run name '" + "A" * 79


@pytest.mark.parametrize(
    "name", ["", "a" * 64, "a..b", ".a", "-a", "_a", "A", "a/b", "a b", "a\n", None, 1, b"a"]
)
def test_invalid_run_names(name: object) -> None:
    with pytest.raises(ConfigError, match="invalid run name"):
        validate_name(name)


# --- /proc ---------------------------------------------------------------------------------


def test_proc_stat_reads_the_fields_after_the_command_name(tmp_path: Path) -> None:
    """The command name may hold spaces and ')' (field 2): the fields after it are read."""
    odd = tmp_path / "x) y ) z"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", odd)
    proc = subprocess.Popen([str(odd), "60"], start_new_session=True)
    try:
        stat = _proc_stat(proc.pid)
        assert stat is not None
        raw = Path(f"/proc/{proc.pid}/stat").read_text()
        fields = raw[raw.rindex(")") + 2 :].split()
        assert stat.state in "RS"
        assert (stat.pgrp, stat.sid) == (proc.pid, proc.pid)
        assert stat.start_time == int(fields[19]) > 0
    finally:
        proc.kill()
        proc.wait()
    mine = _proc_stat(os.getpid())
    assert mine is not None and (mine.pgrp, mine.sid) == (os.getpgrp(), os.getsid(0))
    # Its own process group, our session: the two fields apart.
    grouped = subprocess.Popen(["sleep", "60"], process_group=0)
    try:
        stat = _proc_stat(grouped.pid)
        assert stat is not None
        assert (stat.pgrp, stat.sid) == (grouped.pid, os.getsid(0)) and stat.pgrp != stat.sid
    finally:
        grouped.kill()
        grouped.wait()
    assert _proc_stat(2**22 + 1) is None  # above pid_max: no such process


#: A process that any signal but 0 would end (whatever dispositions it inherited: a run
#: under nohup ignores SIGHUP).
DEFAULT_SIGNALS = (
    "import signal, time\n"
    "for s in range(1, 32):\n"
    "    try: signal.signal(s, signal.SIG_DFL)\n"
    "    except (OSError, ValueError): pass\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


def test_alive_and_verify_never_signal(tmp_path: Path) -> None:
    import sys

    folder = tmp_path / "run"
    folder.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", DEFAULT_SIGNALS], cwd=folder, start_new_session=True,
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        assert alive(proc.pid)
        assert verify(_record(proc, folder))  # type: ignore[arg-type]
        time.sleep(0.2)  # a signal sent would have ended it by now
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_alive_reads_kill_s_errors(monkeypatch) -> None:
    """Another user's process (EPERM) runs; any other error means no process."""

    def denied(pid: int, sig: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    def invalid(pid: int, sig: int) -> None:
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "kill", denied)
    assert alive(os.getpid())
    monkeypatch.setattr(os, "kill", invalid)
    assert not alive(os.getpid())


def test_alive(child: subprocess.Popen[bytes]) -> None:
    assert alive(os.getpid()) and alive(child.pid)
    assert alive(1)  # init (or this container's first process)
    for pid in (0, -1, True, "1", 1.0, None, 2**22 + 1):
        assert not alive(pid)  # type: ignore[arg-type]
    zombie = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while (_proc_stat(zombie.pid) or _proc_stat(os.getpid())).state != "Z":  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not alive(zombie.pid)  # exited, not yet reaped: gone
    zombie.wait()
    assert not alive(zombie.pid)


# --- verify --------------------------------------------------------------------------------


def test_verify_accepts_the_process_it_recorded(child, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    assert verify(_record(child, folder))
    assert verify(_record(child, folder, boot_id=""))  # an older record without one
    link = tmp_path / "link"
    link.symlink_to(folder)
    assert verify(_record(child, link))  # the folder as the record wrote it, resolved


@pytest.mark.parametrize(
    "change",
    [
        {"pid": 1},
        {"pid": 0},
        {"pid": -5},
        {"boot_id": "another-boot"},
        {"boot_id": "0"},  # sorts before any boot id
        {"boot_id": "~"},  # and after
        {"start_time": "+1"},
        {"start_time": "-1"},
        {"sid": "+1"},
    ],
    ids=lambda c: f"{next(iter(c))}={next(iter(c.values()))}",
)
def test_verify_refuses_a_record_that_does_not_match(child, tmp_path: Path, change) -> None:
    record = _record(child, tmp_path / "run")
    (field, value), *_ = change.items()
    if isinstance(value, str) and value[0] in "+-":
        value = getattr(record, field) + int(value)
    assert not verify(dataclasses.replace(record, **{field: value}))


def test_verify_refuses_another_folder_and_a_session_member(child, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    assert not verify(_record(child, other))
    assert not _works_in(child.pid, str(other))
    assert _works_in(child.pid, str(tmp_path / "run"))
    assert not _works_in(2**22 + 1, str(tmp_path / "run"))
    # A process of the session that is not its leader (sid != pid) is not the server.
    member = subprocess.Popen(["sleep", "60"], cwd=tmp_path / "run")
    try:
        stat = _proc_stat(member.pid)
        assert stat is not None
        record = _record(child, tmp_path / "run", pid=member.pid, start_time=stat.start_time)
        assert not verify(record)  # sid is the child's, not the member's
        assert not verify(dataclasses.replace(record, sid=stat.sid))  # sid != pid
        # ... nor when the record claims it leads its own session: its true sid differs.
        assert not verify(dataclasses.replace(record, sid=member.pid))
    finally:
        member.kill()
        member.wait()
    # The same for a member of a server's own session (launch.sh's child): its session is
    # the leader's, started before it.
    leader = subprocess.Popen(
        ["sh", "-c", "sleep 60 & echo $!; wait"],
        cwd=tmp_path / "run", start_new_session=True, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert leader.stdout is not None
        inner = int(leader.stdout.readline())
        stat = _proc_stat(inner)
        assert stat is not None and stat.sid == leader.pid
        record = _record(child, tmp_path / "run", pid=inner, start_time=stat.start_time)
        assert not verify(dataclasses.replace(record, sid=inner))
        assert not verify(dataclasses.replace(record, sid=leader.pid))
    finally:
        os.killpg(leader.pid, 9)
        leader.wait()


def test_verify_follows_a_removed_folder(child, tmp_path: Path) -> None:
    """The server keeps running in its folder after it was removed (``cwd (deleted)``)."""
    folder = tmp_path / "run"
    record = _record(child, folder)
    folder.rmdir()
    assert os.readlink(f"/proc/{child.pid}/cwd").endswith(" (deleted)")
    assert verify(record)


def test_verify_refuses_a_zombie(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    proc = subprocess.Popen(["sleep", "60"], cwd=folder, start_new_session=True)
    record = _record(proc, folder)
    proc.kill()
    deadline = time.monotonic() + 10
    while (_proc_stat(proc.pid) or _proc_stat(os.getpid())).state != "Z":  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not verify(record)
    proc.wait()
    assert not verify(record)


# --- plans from a manifest -----------------------------------------------------------------


def test_plan_problems() -> None:
    plan = make_plan(Catalog.default(), Request(model="Qwen/Qwen3-8B"), "h100")
    assert _plan_problem(plan) is None
    assert _plan_problem(dataclasses.replace(plan, port=1)) is None
    assert _plan_problem(dataclasses.replace(plan, port=65535)) is None
    bad: list[dict[str, object]] = [
        {"port": 0}, {"port": 65536}, {"port": True}, {"port": "8000"},
        {"launcher": "kubernetes"}, {"health_path": "health"}, {"health_path": 1},
        {"served_model_name": 1}, {"precision": None}, {"backend": 1}, {"name": None},
        {"gpus": "1"}, {"gpus": True}, {"data_parallel": 1.0}, {"raw_command": "yes"},
    ]  # fmt: skip
    for change in bad:
        problem = _plan_problem(dataclasses.replace(plan, **change))  # type: ignore[arg-type]
        assert problem is not None, change
        assert next(iter(change)).split("_")[0] in problem, (change, problem)


def test_verify_never_accepts_pid_1_even_when_everything_matches(child, tmp_path) -> None:
    """init (or a container's first process) is never a server aimc started; a forged
    record naming it with its true stat and folder is refused."""
    stat = _proc_stat(1)
    assert stat is not None
    try:
        folder = os.readlink("/proc/1/cwd")
    except OSError:
        folder = "/"
    record = _record(child, tmp_path / "run", pid=1, sid=stat.sid, start_time=stat.start_time)
    assert not verify(dataclasses.replace(record, folder=folder))


@pytest.mark.parametrize("state", ["R", "S", "D", "T", "t", "I", "W"])
def test_every_state_but_zombie_runs(monkeypatch, child, tmp_path: Path, state: str) -> None:
    """A stopped or traced (``t``, which sorts after ``Z``) server still runs; a zombie
    (``Z``) is gone."""
    import aimc.run.process

    record = _record(child, tmp_path / "run")
    real = _proc_stat(child.pid)
    assert real is not None
    for shown, expected in ((state, True), ("Z", False)):
        fake = dataclasses.replace(real, state=shown)
        monkeypatch.setattr(aimc.run.process, "_proc_stat", lambda pid, fake=fake: fake)
        assert alive(child.pid) is expected
        assert verify(record) is expected
