"""Run records are data: ``status`` and ``stop`` act only on a process that a record proves
aimc started (its pid, session, start time and boot id, a session leader working in the
record's folder) and remove only the container that carries the run's own label. A record
that proves nothing is skipped with a warning or forgotten as stale, never signalled; its
name is never a path.

The CLI runs in its own session, so that a record naming process group 0 could only ever
signal that subprocess; every process a test starts is killed by the ``reaper`` fixture,
whatever the test did. No assertion depends on timing: loops only wait, with generous
deadlines.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.runs import (
    _MISSING,
    LEGACY,
    Reaper,
    members,
    start_ticks,
    tree,
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
        if legacy:  # as an older aimc wrote it
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
