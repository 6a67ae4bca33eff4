"""``run`` takes a compiled folder as it was compiled: its manifest is read bounded and
checked whole, its artifacts must be the ones the manifest hashes, a relative path works,
and a running server's folder and log are never touched by ``launch``, ``compile`` or a
second ``run``.

Every process a test starts is killed by the ``reaper`` fixture, whatever the test did.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.runs import (
    EXAMPLES,
    NAME,
    snapshot,
    tree,
)


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
