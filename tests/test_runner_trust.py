"""The runner trusts no record: it signals only what it can prove it started, treats a
record's name as data (never a path), and leaves no orphan on signals or write failures.

Every test here was written to fail on the runner before run records carried the process's
identity (start time, session id, boot id) and names were validated; each says how. The CLI
runs in its own session, so that a record naming process group 0 could only ever signal that
subprocess; every process a test starts is killed by the ``reaper`` fixture, whatever the
test did. No assertion depends on timing: loops only wait, with generous deadlines.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT
from tests.helpers.runs import (
    _MISSING,
    EXAMPLES,
    LEGACY,
    NAME,
    Reaper,
    boot_id,
    cli_env,
    free_port,
    members,
    proc_stat,
    run_cli,
    snapshot,
    start_ticks,
    tree,
    wait_for,
    warnings_about,
)


@pytest.fixture
def foreign(reaper: Reaper) -> Iterator[int]:
    """A process aimc did not start (a session of its own), as a reused pid would be."""
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    reaper.groups.add(proc.pid)
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


# --- records never signal what aimc cannot prove it started ------------------------------


def test_legacy_record_naming_a_foreign_pid_is_never_signalled(lab, foreign) -> None:
    """Failed before: 'stop NAME' killed the process group any record named."""
    lab.write_record("victim", lab.record("victim", pid=foreign, **LEGACY))
    stop = lab.run("stop", "victim")
    assert stop.code == 2 and "no server named 'victim'" in stop.err
    assert len(warnings_about(stop.err, "skipped run record")) == 1
    assert lab.run("stop", "--all").code == 0
    assert lab.run("status").out.strip() == "no server running"
    assert members(foreign) == [foreign]


@pytest.mark.parametrize("mismatch", ["start_time", "boot_id"])
@pytest.mark.parametrize("command", [["stop", "victim"], ["stop", "--all"], ["status"]])
def test_record_whose_pid_is_now_another_process_is_forgotten_unsignalled(
    lab, foreign, command: list[str], mismatch: str
) -> None:
    """Failed before: such a record was signalled by 'stop' (and not understood at all)."""
    wrong = (
        {"start_time": start_ticks(foreign) + 1}
        if mismatch == "start_time"
        else {"start_time": start_ticks(foreign), "boot_id": "another-boot"}
    )
    path = lab.write_record("victim", lab.record("victim", pid=foreign, sid=foreign, **wrong))
    result = lab.run(*command)
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    assert not path.exists()  # a stale record is forgotten
    if command[0] == "stop":
        assert len(warnings_about(result.err, "is stale")) == 1
        assert "stopped: victim" not in result.out
    assert members(foreign) == [foreign]


@pytest.mark.parametrize("launcher", ["process", "docker"])
def test_a_record_naming_any_session_leader_with_its_true_stat_is_never_signalled(
    lab, foreign, launcher: str
) -> None:
    """Failed before: pid, session, start time and boot id can be read by anyone from
    /proc, so a forged record with all four right made 'stop' kill the victim (a login
    shell, tmux) and, with the docker launcher, 'docker rm -f' its name. The session
    leader must also work in the record's compiled folder."""
    record = lab.record(
        "victim", pid=foreign, sid=foreign, start_time=start_ticks(foreign), launcher=launcher
    )
    path = lab.write_record("victim", record)
    for command in (["stop", "victim"], ["stop", "--all"]):
        lab.write_record("victim", record)
        result = lab.run(*command)
        assert result.code in (0, 2), result.err
        assert "stopped: victim" not in result.out
    assert members(foreign) == [foreign]
    assert not path.exists()  # forgotten as stale


BAD_PIDS = [
    pytest.param(0, id="pid0"),
    pytest.param(1, id="pid1"),
    pytest.param("abc", id="pidabc"),
    pytest.param(-5, id="pid-5"),
    pytest.param(True, id="pidtrue"),
    pytest.param(2.5, id="pidfloat"),
    pytest.param(_MISSING, id="pidmissing"),
]


@pytest.mark.parametrize("legacy", [False, True], ids=["current", "legacy"])
@pytest.mark.parametrize("pid", BAD_PIDS)
def test_invalid_records_are_skipped_with_a_warning_beside_a_good_one(
    lab, pid: Any, legacy: bool
) -> None:
    """Failed before: pid "abc" broke status and stop for all; pid 0 made 'stop --all'
    signal aimc's own group; bad records were shown as servers, or skipped silently."""
    assert lab.run("run", str(lab.folder), "--name", "good", FAKE_MODE="ready").code == 0
    server = lab.server_pid()
    fields = {**(LEGACY if legacy else {}), "pid": pid}
    bad = lab.write_record("bad", lab.record("bad", **fields))
    status = lab.run("status", "--format", "json")
    assert status.code == 0, status.err
    assert [row["name"] for row in json.loads(status.out)["data"]] == ["good"]
    assert len(warnings_about(status.err, "skipped run record")) == 1
    assert str(bad) in status.err
    stop = lab.run("stop", "--all")
    assert stop.code == 0, stop.err
    assert stop.out.strip() == "stopped: good"
    assert len(warnings_about(stop.err, "skipped run record")) == 1
    assert not members(server)
    assert bad.exists()  # skipped, not acted on


@pytest.mark.parametrize("legacy", [False, True], ids=["current", "legacy"])
@pytest.mark.parametrize("name", ["../../x", "../runs/../../x", "x"])
def test_record_name_is_never_used_as_a_path(lab, name: str, legacy: bool) -> None:
    """Failed before: 'status' deleted ../../x.json (relative to the runs folder) when a
    record said "name": "../../x"; a name that differs from its file name was accepted."""
    victim = lab.tmp / "x.json"
    victim.write_text("{}")
    inside = lab.tmp / "state" / "x.json"
    inside.parent.mkdir()
    inside.write_text("{}")
    dead = subprocess.Popen(["true"])
    dead.wait()
    fields = {**(LEGACY if legacy else {}), "pid": dead.pid, "sid": dead.pid}
    record = lab.write_record("evil", lab.record(name, **fields))
    for command in (["status"], ["stop", "--all"]):
        result = lab.run(*command)
        assert result.code == 0, result.err
        assert len(warnings_about(result.err, "skipped run record")) == 1
    assert victim.read_text() == "{}" and inside.read_text() == "{}"
    assert record.exists()


# --- names are checked before anything starts ------------------------------------------

BAD_NAMES = ["../x", "A/B", "a/b", "..", ".hidden", "x" * 64, "x\n", "-x", "a..b", ""]


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize("command", ["run", "launch"])
def test_bad_name_is_exit_2_before_anything_starts(lab, command: str, name: str) -> None:
    """Failed before: 'run --name ../x' started the server and wrote its record outside the
    runs folder; 'launch --name ../x' wrote its folder outside the builds folder; 'A/B'
    started a server and then lost it."""
    before = tree(lab.tmp)
    args = lab.launch_args() if command == "launch" else ["run", str(lab.folder)]
    result = lab.run(*args, "--name", name, FAKE_MODE="ready")
    assert result.code == 2, result.err
    assert "invalid run name" in result.err
    assert "Traceback" not in result.err
    assert not lab.pids.exists()  # nothing started
    assert tree(lab.tmp) == before  # nothing written


# --- no orphans -------------------------------------------------------------------------


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


# --- a running server's folder is never touched -----------------------------------------


def test_relaunch_of_a_running_name_keeps_its_folder_and_log(lab) -> None:
    """Failed before: the second 'launch' replaced builds/NAME (and the running server's
    server.log) before it found that the name was running."""
    first = lab.run(*lab.launch_args(), FAKE_MODE="ready")
    assert first.code == 0, first.err
    folder = lab.tmp / "state" / "builds" / NAME
    lab.wait_logged_ready(folder)
    before = snapshot(folder)
    again = lab.run(*lab.launch_args(), FAKE_MODE="ready")
    assert again.code == 2
    assert f"a server named {NAME} is already running" in again.err
    other = lab.run(*lab.launch_args("--name", "other", "-o", str(folder)), FAKE_MODE="ready")
    assert other.code == 2
    assert f"a server named {NAME} is running from {folder}; stop it first" in other.err
    assert snapshot(folder) == before


def test_compile_onto_a_running_servers_folder_is_refused(lab) -> None:
    """Failed before: 'compile -o DIR' replaced the folder of the server running from it."""
    assert lab.run("run", str(lab.folder), FAKE_MODE="ready").code == 0
    lab.wait_logged_ready(lab.folder)
    before = snapshot(lab.folder)
    result = lab.run(
        "compile",
        "aimc-examples/tiny-llama",
        "--target",
        "cpu",
        "--recipes",
        str(EXAMPLES),
        "--port",
        str(lab.port),
        "-o",
        str(lab.folder),
    )
    assert result.code == 2
    assert f"a server named {NAME} is running from {lab.folder}; stop it first" in result.err
    assert snapshot(lab.folder) == before


def test_second_run_from_a_running_folder_touches_nothing(lab) -> None:
    """Failed before: a second name from the same folder got as far as the port check
    (exit 4), with nothing guarding the folder and its log."""
    assert lab.run("run", str(lab.folder), "--name", "first", FAKE_MODE="ready").code == 0
    lab.wait_logged_ready(lab.folder)
    before = snapshot(lab.folder)
    again = lab.run("run", str(lab.folder), "--name", "first", FAKE_MODE="ready")
    assert again.code == 2 and "a server named first is already running" in again.err
    other = lab.run("run", str(lab.folder), "--name", "second", FAKE_MODE="ready")
    assert other.code == 2
    assert "a server named first is running from" in other.err
    assert snapshot(lab.folder) == before


# --- folders and manifests --------------------------------------------------------------


def test_run_accepts_a_relative_folder(lab) -> None:
    """Failed before: 'run build/' gave bash a relative script path with cwd=build/."""
    result = lab.run_in(lab.tmp, "run", "build/", "--format", "json", FAKE_MODE="ready")
    assert result.code == 0, result.err
    rows = json.loads(lab.run("status", "--format", "json").out)["data"]
    assert [(r["name"], r["status"], r["folder"]) for r in rows] == [
        (NAME, "running", str(lab.folder.resolve()))
    ]


def _manifest_cases() -> list[Any]:
    def plan_field(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
        def change(manifest: dict[str, Any]) -> None:
            manifest["plan"][key] = value

        return change

    def pad(manifest: dict[str, Any]) -> None:
        manifest["padding"] = "x" * (1 << 20)

    def plan_list(manifest: dict[str, Any]) -> None:
        manifest["plan"] = [1, 2]

    def args_list(manifest: dict[str, Any]) -> None:
        manifest["plan"]["args"] = ["--port"]

    return [
        pytest.param(plan_field("port", "abc"), id="port-text"),
        pytest.param(plan_field("port", 70000), id="port-range"),
        pytest.param(plan_field("port", True), id="port-bool"),
        pytest.param(plan_field("health_path", "@evil.example/"), id="health-host"),
        pytest.param(plan_field("launcher", "podman"), id="launcher"),
        pytest.param(plan_field("name", "../x"), id="plan-name"),
        pytest.param(plan_list, id="plan-list"),
        pytest.param(args_list, id="args-list"),
        pytest.param(pad, id="over-1MiB"),
    ]


@pytest.mark.parametrize("change", _manifest_cases())
def test_malformed_manifest_is_one_error_line_and_exit_2(lab, change) -> None:
    """Failed before: these gave a traceback or internal error (exit 1), a server started
    from a 1 MiB+ manifest, or a health URL on another host."""
    manifest = lab.folder / "manifest.json"
    data = json.loads(manifest.read_text())
    change(data)
    manifest.write_text(json.dumps(data))
    result = lab.run("run", str(lab.folder), FAKE_MODE="exit")
    assert result.code == 2, result.err
    assert len([line for line in result.err.splitlines() if line.startswith("error:")]) == 1
    assert "Traceback" not in result.err and "internal error" not in result.err
    assert not lab.pids.exists()


def test_manifest_that_is_a_fifo_does_not_hang(lab) -> None:
    """Failed before: reading a FIFO manifest blocked the CLI forever."""
    manifest = lab.folder / "manifest.json"
    manifest.unlink()
    os.mkfifo(manifest)
    result = lab.run("run", str(lab.folder), FAKE_MODE="exit")
    assert result.code == 2, result.err
    assert "is not a compiled aimc folder" in result.err


# --- properties -------------------------------------------------------------------------


@given(st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_any_name_is_valid_and_inside_the_runs_folder_or_a_config_error(text: str) -> None:
    """Failed before: there was no name check at all (any text became a path)."""
    from aimc.core.errors import ConfigError
    from aimc.core.records import validate_name
    from aimc.run.runs import _record_path

    with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, AIMC_STATE_DIR=tmp):
        try:
            name = validate_name(text)
        except ConfigError:
            with pytest.raises(ConfigError):
                _record_path(text)
            return
        assert name == text
        runs = Path(tmp, "runs").resolve()
        path = _record_path(name).resolve()
        assert path.parent == runs and path.name == f"{name}.json"
        assert "/" not in name and name not in (".", "..")


@pytest.fixture(scope="module")
def exiting_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A compiled folder whose launch.sh exits at once (no server to clean up)."""
    folder = tmp_path_factory.mktemp("exiting") / "build"
    result = run_cli(
        "compile",
        "aimc-examples/tiny-llama",
        "--target",
        "cpu",
        "--recipes",
        str(EXAMPLES),
        "--port",
        str(free_port()),
        "-o",
        str(folder),
    )
    assert result.code == 0, result.err
    (folder / "launch.sh").write_text("exit 3\n")
    return folder


@given(st.text(max_size=70))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_run_with_any_name_writes_only_inside_the_state_folder(
    exiting_folder: Path, text: str
) -> None:
    """Failed before: run_folder accepted any name and wrote NAME.json wherever it led."""
    from aimc.core.errors import ConfigError, LaunchError
    from aimc.run.runner import run_folder

    with (
        tempfile.TemporaryDirectory() as tmp,
        mock.patch.dict(os.environ, AIMC_STATE_DIR=str(Path(tmp, "a", "b", "state"))),
    ):
        try:
            run_folder(exiting_folder, 30, name=text)
        except ConfigError:
            assert tree(Path(tmp)) == set()
            return
        except LaunchError as exc:
            assert "exited with code 3" in exc.message
        runs = {"a", "a/b", "a/b/state", "a/b/state/runs"}
        assert tree(Path(tmp)) == runs  # the record was written inside, then forgotten


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@given(
    name=st.sampled_from(["r", "../x", "../../x"]) | st.text(max_size=40) | _JSON,
    pid=_JSON | st.integers(),
    legacy=st.booleans(),
)
@settings(max_examples=200, deadline=None)
def test_records_with_any_name_or_pid_never_escape_or_break(
    name: Any, pid: Any, legacy: bool
) -> None:
    """Failed before: such records crashed 'status' (pid "abc"), or let it delete files
    outside the runs folder (name "../x")."""
    # With no verify() (an older aimc) this import fails: the test never gets to a signal.
    from aimc.cli.serve import _status_rows
    from aimc.run.process import verify
    from aimc.run.runs import load_records, stop_record

    with (
        tempfile.TemporaryDirectory() as tmp,
        mock.patch.dict(os.environ, AIMC_STATE_DIR=str(Path(tmp, "state")), LOG_LEVEL="ERROR"),
    ):
        runs = Path(tmp, "state", "runs")
        runs.mkdir(parents=True)
        for victim in (Path(tmp, "x.json"), Path(tmp, "state", "x.json")):
            victim.write_text("{}")
        record = {
            "name": name,
            "pid": pid,
            "container_id": "pid:1",
            "port": 1,
            "endpoint_url": "http://localhost:1",
            "folder": tmp,
            "log": tmp,
            "launcher": "process",
            "model": "m",
            "gpu_count": 1,
            "precision": "fp32",
            "backend": "vllm",
            "health_path": "/health",
            "started": 0.0,
            # No process ever started at this tick: nothing can match, nothing is signalled.
            "start_time": 1 << 62,
            "sid": pid,
            "boot_id": "",
        }
        if legacy:  # as an aimc before this change wrote it
            del record["start_time"], record["sid"], record["boot_id"]
        (runs / "r.json").write_text(json.dumps(record))
        assert all(r.name == "r" for r in load_records())
        assert _status_rows() == []
        for r in load_records():
            assert not verify(r)
            assert stop_record(r) is False
        assert Path(tmp, "x.json").read_text() == "{}"
        assert Path(tmp, "state", "x.json").read_text() == "{}"
        allowed = {"x.json", "state", "state/x.json", "state/runs", "state/runs/r.json"}
        assert tree(Path(tmp)) <= allowed


_ID = "0123456789abcdef" * 4
_RUN_ID = "c0ffee00" * 4


@pytest.mark.parametrize(
    ("record_changes", "inspect_answer", "removed"),
    [
        pytest.param({"run_id": _RUN_ID}, f"{_ID} {_RUN_ID}", True, id="own-label"),
        pytest.param({"run_id": _RUN_ID}, f"{_ID} {'d' * 32}", False, id="other-label"),
        pytest.param({"run_id": _RUN_ID}, f"{_ID} ", False, id="no-label"),
        pytest.param({"run_id": _RUN_ID}, f"{_ID} {_RUN_ID}x", False, id="label-longer"),
        pytest.param({"run_id": _RUN_ID}, f"../../x {_RUN_ID}", False, id="id-not-hex"),
        pytest.param({"run_id": _RUN_ID}, f"{_ID[:12]} {_RUN_ID}", False, id="id-short"),
        pytest.param({"container_id": _ID[:12]}, f"{_ID} ", True, id="legacy-id-prefix"),
        pytest.param({"container_id": "fedcba987654"}, f"{_ID} ", False, id="legacy-other-id"),
        pytest.param({}, f"{_ID} ", False, id="legacy-pid-id"),
    ],
)
def test_stop_removes_only_the_container_this_run_labelled(
    lab, tmp_path: Path, record_changes: dict[str, str], inspect_answer: str, removed: bool
) -> None:
    """A Docker run's container is removed by its full id, and only when it carries the
    run's own id as its dev.aimc.run label (a record of an older aimc: only when the id
    starts with the recorded container id). Before: 'docker rm -f NAME' removed whatever
    container had the name, also one the user made after aimc's had gone."""
    assert lab.run("run", str(lab.folder), FAKE_MODE="ready").code == 0
    record = json.loads((lab.runs / "aim-tiny-llama.json").read_text())
    data = {**record, "launcher": "docker", **record_changes}
    (lab.runs / "aim-tiny-llama.json").write_text(json.dumps(data))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "docker-calls"
    docker = bin_dir / "docker"
    docker.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$*" >> {calls}\n'
        f'if [ "$1" = container ]; then printf "%s\\n" "{inspect_answer}"; fi\n'
    )
    docker.chmod(0o755)
    stopped = lab.run("stop", "aim-tiny-llama", PATH=f"{bin_dir}:{os.environ['PATH']}")
    assert stopped.code == 0, stopped.err
    rm_calls = [c for c in calls.read_text().splitlines() if c.startswith("rm")]
    assert rm_calls == ([f"rm -f {_ID}"] if removed else [])
    assert not members(record["pid"])  # the process group is stopped either way


@pytest.mark.parametrize("run_id", ["x", "C0FFEE00" * 4, "c0ffee00" * 5, 7, None, "a\n" * 16])
def test_a_record_with_a_bad_run_id_is_skipped(lab, run_id: Any) -> None:
    assert lab.run("run", str(lab.folder), FAKE_MODE="ready").code == 0
    record = json.loads((lab.runs / "aim-tiny-llama.json").read_text())
    forged = lab.runs / "forged.json"
    forged.write_text(json.dumps({**record, "name": "forged", "run_id": run_id}))
    status = lab.run("status", "--format", "json")
    assert [row["name"] for row in json.loads(status.out)["data"]] == ["aim-tiny-llama"]
    assert len(warnings_about(status.err, "skipped run record")) == 1
    assert "run_id" in status.err


# --- the artifacts run are the ones compiled ---------------------------------------------


@pytest.mark.parametrize("launcher", ["process", "docker"])
@pytest.mark.parametrize(
    ("artifact", "edit"),
    [
        ("launch.sh", "one-byte"),
        ("launch.sh", "command"),
        ("aim.env", "one-byte"),
        ("vllm.yaml", "one-byte"),
        ("launch.sh", "symlink"),
        ("aim.env", "missing"),
    ],
)
def test_run_refuses_an_artifact_that_differs_from_the_manifest(
    lab, tmp_path: Path, launcher: str, artifact: str, edit: str
) -> None:
    """Failed before: 'run' started launch.sh whatever it held (its sha256 in manifest.json
    was never compared), so an edit after compile ran unreviewed. Now nothing is started,
    recorded or asked of Docker: exit 2 naming the file."""
    folder = tmp_path / f"build-{launcher}"
    compiled = lab.run(
        "compile", "aimc-examples/tiny-llama", "--target", "cpu", "--recipes", str(EXAMPLES),
        "--port", str(lab.port), "--launcher", launcher, "-o", str(folder),
    )  # fmt: skip
    assert compiled.code == 0, compiled.err
    path = folder / artifact
    marker = tmp_path / "ran"
    if edit == "one-byte":
        data = bytearray(path.read_bytes())
        at = data.rindex(b"#") if b"#" in data else len(data) // 2  # a comment, where one is
        data[at + 1] ^= 0x01
        path.write_bytes(bytes(data))
    elif edit == "command":
        text = path.read_text()
        path.write_text(
            text.replace("\nset -euo pipefail\n", f"\ntouch {marker}\nset -euo pipefail\n")
        )
    elif edit == "symlink":
        (tmp_path / "copy.sh").write_bytes(path.read_bytes())  # the same bytes, elsewhere
        path.unlink()
        path.symlink_to(tmp_path / "copy.sh")
    else:
        path.unlink()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "docker-calls"
    (bin_dir / "docker").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {calls}\nexit 1\n')
    (bin_dir / "docker").chmod(0o755)
    before = tree(folder)
    result = lab.run(
        "run", str(folder), "--timeout", "30", FAKE_MODE="ready",
        PATH=f"{bin_dir}:{os.environ['PATH']}",
    )  # fmt: skip
    assert result.code == 2, result.err
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(path) in errors[0], result.err
    assert "Traceback" not in result.err
    assert not lab.pids.exists()  # no stand-in server started
    assert not marker.exists()  # the inserted command never ran
    assert not calls.exists()  # Docker never asked
    assert tree(folder) == before  # no server.log: nothing started in the folder
    assert not lab.runs.exists() or not list(lab.runs.iterdir())  # no run record
    assert lab.run("status").out.strip() == "no server running"


# --- signals go through a pidfd ----------------------------------------------------------


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
