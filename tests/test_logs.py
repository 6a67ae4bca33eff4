"""``aim-engine logs NAME``: the log of a run aimc started, and only that.

A stand-in server prints vLLM's real startup lines (and a token); ``logs`` shows the last
lines masked, follows until the server stops, and refuses hostile records whose folder or
log points elsewhere (``/etc/shadow``, a symlink, another folder) without reading them.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import shutil
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from aimc.run.serverlog import LINE_MAX, clean, follow, read_lines, stream_lines
from tests.helpers.runs import NAME, RunLab, wait_for

TOKEN = "hf_" + "Q" * 34
LINES = [f"line {i}" for i in range(1, 40)] + [f"using token {TOKEN}", "last line"]


def _started(lab: RunLab) -> dict:
    lines = lab.tmp / "lines.log"
    lines.write_text("\n".join(LINES) + "\n")
    ran = lab.run(
        "run", str(lab.folder), FAKE_MODE="ready", FAKE_LOG_LINES=str(lines), FAKE_LINE_DELAY="0"
    )
    assert ran.code == 0, ran.err
    return json.loads((lab.runs / f"{NAME}.json").read_text())


def _hostile(lab: RunLab, record: dict, name: str, **changes: str) -> None:
    data = {**record, **changes, "name": name}
    (lab.runs / f"{name}.json").write_text(json.dumps(data))


def test_tail_json_follow_and_hostile_records(lab: RunLab) -> None:
    record = _started(lab)
    log = lab.folder / "server.log"
    assert wait_for(lambda: log.read_text().endswith("fake server: ready\n"))
    tail = lab.run("logs", NAME, "--tail", "5")
    assert tail.code == 0, tail.err
    assert tail.out.splitlines() == [
        "line 38",
        "line 39",
        "using token hf_***",
        "last line",
        "fake server: ready",
    ]
    assert TOKEN not in tail.out and TOKEN in log.read_text()

    whole = lab.run("logs", NAME, "--format", "json")
    data = json.loads(whole.out)["data"]
    assert data["name"] == NAME and data["log"] == str(lab.folder / "server.log")
    assert data["lines"][1:42] == [line.replace(TOKEN, "hf_***") for line in LINES]

    # -f prints what is there, then follows until the server stops. The follower must have
    # found the run (its first line is out) before the line is appended and the run stopped.
    follower = lab.popen("logs", NAME, "-f", "--tail", "1")
    assert follower.stdout is not None and follower.stderr is not None
    ready, _, _ = select.select([follower.stdout], [], [], 30)
    assert ready, "logs -f printed nothing"
    assert follower.stdout.readline() == "fake server: ready\n"
    with log.open("a") as f:
        f.write("appended while following\n")
    stopped = lab.run("stop", NAME)
    assert stopped.code == 0
    assert follower.wait(timeout=30) == 0, follower.stderr.read()
    assert follower.stdout.read().splitlines() == ["appended while following"]

    # Hostile records: never read, one line each, exit 2.
    secret = lab.tmp / "secret"
    secret.write_text("SECRET CONTENT\n")
    (lab.tmp / "elsewhere").mkdir()
    (lab.tmp / "elsewhere" / "manifest.json").write_text("{}")
    (lab.tmp / "elsewhere" / "server.log").symlink_to(secret)
    (lab.tmp / "linked").symlink_to(lab.folder)
    cases = {
        "shadow": {"log": "/etc/shadow"},
        "etc-folder": {"folder": "/etc", "log": "/etc/server.log"},
        "symlinked-log": {
            "folder": str(lab.tmp / "elsewhere"),
            "log": str(lab.tmp / "elsewhere" / "server.log"),
        },
        "symlinked-folder": {
            "folder": str(lab.tmp / "linked"),
            "log": str(lab.tmp / "linked" / "server.log"),
        },
        "no-manifest": {"folder": str(lab.tmp), "log": str(lab.tmp / "server.log")},
    }
    (lab.tmp / "server.log").write_text("SECRET CONTENT\n")
    for name, changes in cases.items():
        _hostile(lab, record, name, **changes)
        result = lab.run("logs", name, "--tail", "3")
        assert result.code == 2, (name, result.out, result.err)
        assert "SECRET" not in result.out + result.err and "root:" not in result.out
        assert "Traceback" not in result.err and len(result.err.strip().splitlines()) <= 2


def test_a_hard_linked_log_or_a_manifest_aimc_did_not_write_is_not_read(lab: RunLab) -> None:
    # Each passed every check before: a hard link is no symlink and is owned by this user
    # (as root, /etc/shadow is), and any manifest.json ('{}') made a folder aimc's.
    record = _started(lab)
    secret = lab.tmp / "secret"
    secret.write_text("SECRET CONTENT\n")
    linked, forged = lab.tmp / "linked", lab.tmp / "forged"
    for folder in (linked, forged):
        folder.mkdir()
    shutil.copy(lab.folder / "manifest.json", linked / "manifest.json")  # aimc's own
    os.link(secret, linked / "server.log")
    (forged / "manifest.json").write_text("{}")
    (forged / "server.log").write_text("SECRET CONTENT\n")
    for name, folder, why in (
        ("hard-linked", linked, "the log has other names (a hard link)"),
        ("forged", forged, "its folder holds no manifest.json written by aimc"),
    ):
        _hostile(lab, record, name, folder=str(folder), log=str(folder / "server.log"))
        for args in (("--tail", "3"), ("--format", "json")):
            result = lab.run("logs", name, *args)
            assert result.code == 2, (name, result.out, result.err)
            assert "SECRET" not in result.out + result.err and why in result.out + result.err
    assert lab.run("logs", NAME, "--tail", "1").code == 0  # aimc's own folder: still read


def test_unknown_names_and_bad_names_are_config_errors(lab: RunLab) -> None:
    assert lab.run("logs", "no-such-run").code == 2
    _started(lab)
    typo = NAME[:-1]  # logs, bench and stop all point at the run meant
    for command in (["logs"], ["bench", "--requests", "1"], ["stop"]):
        wrong = lab.run(*command, typo)
        assert wrong.code == 2 and f"no server named '{typo}'" in wrong.err, wrong.err
        assert f"did you mean '{NAME}'?" in wrong.err, (command, wrong.err)
    bad = lab.run("logs", "../../etc/passwd")
    assert bad.code == 2 and "invalid run name" in bad.err
    both = lab.run("logs", "x", "-f", "--format", "json")
    assert both.code == 2 and json.loads(both.out)["error"]["code"] == "CONFIGURATION_ERROR"


def test_tail_reads_the_end_of_a_huge_log_with_huge_and_binary_lines(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with log.open("wb") as f:
        f.write(b"x" * (LINE_MAX * 3) + b"\n")
        f.write((b"p" * (1 << 20) + b"\n") * 17)  # more than TAIL_MAX in all
        for i in range(20000):
            f.write(b"line %d \xff\xfe \x1b[31m\n" % i)
    fd = os.open(log, os.O_RDONLY)
    everything: list[str] = []
    try:
        lines, offset = read_lines(fd, 3)
        assert stream_lines(fd, everything.append) == offset
        held, _ = read_lines(fd, 1 << 40)
    finally:
        os.close(fd)
    # Held in memory (--format json): only the lines of the last TAIL_MAX bytes.
    assert held[-1] == everything[-1] and 20000 < len(held) < len(everything)
    assert not held[0].startswith("xxx")
    assert offset == log.stat().st_size
    assert [line.split()[1] for line in lines] == ["19997", "19998", "19999"]
    assert all("\x1b" not in line and "\ufffd" in line for line in lines)
    assert len(everything) == 20018 and everything[0].endswith(f"({LINE_MAX * 2} more bytes)")


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=LINE_MAX + 100))
def test_a_cleaned_line_is_one_bounded_masked_line(raw: bytes) -> None:
    shown = clean(raw + TOKEN.encode())
    assert "\n" not in shown and "\r" not in shown and "\x1b" not in shown
    assert TOKEN not in shown
    assert len(shown) <= LINE_MAX + 40


def test_docker_logs_are_the_containers(lab: RunLab, tmp_path: Path) -> None:
    """A Docker run's log comes from 'docker logs NAME' (a stand-in docker here)."""
    record = _started(lab)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    docker = bin_dir / "docker"
    docker.write_text(f'#!/bin/sh\necho "$@" >> {calls}\necho "container line {TOKEN}"\n')
    docker.chmod(0o755)
    _hostile(lab, record, "in-docker", launcher="docker")
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = lab.run("logs", "in-docker", "--tail", "7", **env)
    assert result.code == 0, result.err
    assert result.out == "container line hf_***\n"
    assert calls.read_text().split() == ["logs", "--tail", "7", "in-docker"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=LINE_MAX // 2), max_size=6), st.data())
def test_followed_lines_do_not_depend_on_how_the_log_grew(chunks: list[bytes], data) -> None:
    """Lines followed while the log grows (cut anywhere) equal those of the whole log."""
    whole = b"".join(chunks) + b"\n" + b"y" * (LINE_MAX + 10)
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(whole)), max_size=8))))
    bounds = [0, *cuts, len(whole)]
    pieces = [whole[a:b] for a, b in itertools.pairwise(bounds)]
    folder = Path(tempfile.mkdtemp(prefix="helper-logs-"))
    try:
        (folder / "whole.log").write_bytes(whole)
        fd = os.open(folder / "whole.log", os.O_RDONLY)
        at_once: list[str] = []
        stream_lines(fd, at_once.append)
        os.close(fd)
        log = folder / "server.log"
        log.write_bytes(b"")

        def grow() -> bool:  # the server writes the next piece between two reads
            if not pieces:
                return False
            with log.open("ab") as f:
                f.write(pieces.pop(0))
            return True

        grown: list[str] = []
        fd = os.open(log, os.O_RDONLY)
        follow(fd, 0, grow, grown.append, poll=0)
        os.close(fd)
    finally:
        shutil.rmtree(folder)
    assert grown == at_once
    assert all(len(line) <= LINE_MAX + 40 for line in grown)
