"""The output folder of ``compile -o``: aimc replaces only a folder it wrote and keeps what it
did not write (another project's folder, a user's files, hand edits, server.log, folders
that only look like its temporaries); its swap of the old folder for the new one survives a
signal at every step, and what a kill leaves is finished by the next write.

End to end through the CLI and :func:`aimc.core.write.write_artifacts`;
test_write_ownership.py holds the ownership rules one function at a time.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.core.write import write_artifacts
from aimc.emit.emitters import compile_plan
from aimc.plan.request import Request
from tests.conftest import ROOT, default_stop_signals


def _compile(cli, out: Path, *extra: str):
    return cli("compile", "Qwen/Qwen3-8B", "--target", "h100", "-o", str(out), *extra)


def test_a_web_project_with_a_manifest_json_is_not_replaced(cli, tmp_path: Path) -> None:
    """Failed before: any folder holding a file named manifest.json was replaced whole."""
    site = tmp_path / "site"
    (site / "src").mkdir(parents=True)
    (site / "index.html").write_text("<html></html>")
    (site / "src" / "app.js").write_text("run()")
    (site / "manifest.json").write_text('{"name": "my web app", "start_url": "/"}')
    before = {p: p.read_bytes() for p in site.rglob("*") if p.is_file()}
    result = _compile(cli, site)
    assert result.code == 2
    assert "holds what aimc did not write" in result.err
    assert {p: p.read_bytes() for p in site.rglob("*") if p.is_file()} == before


def test_files_added_to_an_aimc_folder_are_kept(cli, tmp_path: Path) -> None:
    """Failed before: a recompile deleted files a user had added to the folder."""
    out = tmp_path / "build"
    assert _compile(cli, out).code == 0
    (out / "NOTES.md").write_text("my notes")
    result = _compile(cli, out, "--port", "9000")
    assert result.code == 2
    assert "NOTES.md (not listed in manifest.json)" in result.err
    assert (out / "NOTES.md").read_text() == "my notes"
    assert "8000" in (out / "launch.sh").read_text()


def test_an_edited_artifact_is_not_overwritten(cli, tmp_path: Path) -> None:
    """Failed before: hand edits to an artifact were silently replaced."""
    out = tmp_path / "build"
    assert _compile(cli, out).code == 0
    edited = (out / "launch.sh").read_text() + "# my change\n"
    (out / "launch.sh").write_text(edited)
    result = _compile(cli, out)
    assert result.code == 2
    assert "launch.sh (changed since aimc wrote it)" in result.err
    assert (out / "launch.sh").read_text() == edited


def test_a_linked_output_folder_is_refused(cli, tmp_path: Path) -> None:
    """Failed before: ``-o LINK`` replaced the link by a folder."""
    real = tmp_path / "real"
    assert _compile(cli, real).code == 0
    link = tmp_path / "link"
    link.symlink_to(real)
    result = _compile(cli, link)
    assert result.code == 2
    assert "symbolic link" in result.err
    assert link.is_symlink()


def test_recompiling_keeps_the_server_log(cli, tmp_path: Path) -> None:
    """Failed before: a recompile deleted ``server.log``."""
    out = tmp_path / "build"
    assert _compile(cli, out).code == 0
    (out / "server.log").write_text("INFO started\n")
    assert _compile(cli, out, "--port", "9000").code == 0
    assert (out / "server.log").read_text() == "INFO started\n"
    assert "9000" in (out / "launch.sh").read_text()
    assert _compile(cli, out, "--port", "9000", "--check").code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build"]


def _files(port: int) -> dict[str, str]:
    request = Request(model="Qwen/Qwen3-8B", port=port)
    return compile_plan(make_plan(Catalog.default(), request, "h100"), request, "h100").files


@pytest.mark.parametrize("fallback", [False, True], ids=["exchange", "two-renames"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_the_swap_survives_a_signal_at_every_step(tmp_path: Path, sig: int, fallback: bool) -> None:
    """Failed before: an interrupt between the two renames left neither folder, and a kill
    left ``.old-``/``.new-`` folders behind for good. Here the writer is killed before each
    of its file-system calls in turn (tests/fakes/swap_faults.py)."""
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(_files(8000)))
    new.write_text(json.dumps(_files(9000)))
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "tests.fakes.swap_faults", str(work), str(old), str(new),
         str(int(sig)), "1" if fallback else "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        preexec_fn=default_stop_signals,  # SIGINT/SIGHUP not inherited as ignored
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    steps = json.loads(result.stdout)
    assert steps[-1]["done"] and len(steps) > 8
    for step in steps:
        assert step["rewrite_ok"] and step["leftovers"] == [], step
        if sig == signal.SIGKILL and fallback:
            # Nothing blocks SIGKILL between two renames; the next write puts it back.
            assert step["state"] in ("old", "new", "missing"), step
        else:
            assert step["state"] in ("old", "new"), step
        if sig != signal.SIGKILL:
            assert step["state"] == "new" and step["left_by_child"] == [], step


@pytest.mark.parametrize("name", ["proj", "m*", "[ab]", "?"])
def test_folders_that_only_look_like_aimcs_temporaries_are_left_alone(
    tmp_path: Path, name: str
) -> None:
    """Failed before: '.proj.new-backup' (a manifest.json of the user's) was deleted and
    '.proj.old-2024' renamed to 'proj'; with '-o m*' the glob matched '.mydata.new-...'."""
    user = {
        f".{name}.new-backup": '{"my": 1}',
        f".{name}.old-2024": '{"also": 1}',
        f".{name}.new-abcdefgh": '{"generator": "someone else"}',  # the temp name's shape
        ".mydata.new-v2abcdef": "{}",
        ".mydata.old-v2abcdef": "{}",
    }
    for folder, manifest in user.items():
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "manifest.json").write_text(manifest)
    write_artifacts(tmp_path / name, _files(8000))
    for folder, manifest in user.items():
        assert (tmp_path / folder / "manifest.json").read_text() == manifest, folder
    assert json.loads((tmp_path / name / "manifest.json").read_text())["generator"].startswith(
        "aimc "
    )


def test_a_kill_while_an_old_folder_is_removed_is_finished_by_the_next_write(
    tmp_path: Path,
) -> None:
    """The manifest is removed last, so what a kill leaves of an old folder still proves
    it is aimc's (before, rmtree could remove it first and the rest stayed for good)."""
    out = tmp_path / "build"
    write_artifacts(out, _files(8000))
    left = tmp_path / ".build.old-k1llm1d0"
    shutil.copytree(out, left)
    (left / "launch.sh").unlink()  # removed before the kill; the manifest is still there
    write_artifacts(out, _files(9000))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build"]


def test_the_temporary_sibling_never_takes_a_name_in_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's sibling ``.NAME.new-XXXXXXXX`` is made under a name no entry has: when
    its first random name is taken (here by a user's folder), it takes another, and the
    folder that had the name is left as it was."""
    theirs = tmp_path / ".build.new-00000000"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine\n")
    draws = iter([b"\0" * 4, b"\1" * 4])
    monkeypatch.setattr("aimc.core.write.os.urandom", lambda n: next(draws))
    write_artifacts(tmp_path / "build", {"a.txt": "x\n"})
    assert (theirs / "notes.txt").read_text() == "mine\n"
    assert (tmp_path / "build" / "a.txt").read_text() == "x\n"
    assert next(draws, None) is None  # both names were drawn
    assert sorted(p.name for p in tmp_path.iterdir()) == [".build.new-00000000", "build"]


def _inodes(folder: Path) -> dict[str, int]:
    return {".": folder.stat().st_ino, **{p.name: p.stat().st_ino for p in folder.iterdir()}}


def test_a_folder_that_holds_the_same_files_is_left_as_it_is(tmp_path: Path) -> None:
    """A write of exactly what the folder holds (a recompile of an unchanged plan) replaces
    nothing: the same folder and files (before, every write swapped in a new folder)."""
    out = tmp_path / "build"
    write_artifacts(out, _files(8000))
    (out / "server.log").write_text("INFO started\n")
    before = _inodes(out)
    write_artifacts(out, _files(8000))
    assert _inodes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build"]


@pytest.mark.parametrize("change", ["bytes", "mode", "folder mode", "missing", "other plan"])
def test_a_folder_that_differs_in_anything_is_replaced(tmp_path: Path, change: str) -> None:
    """Any difference from what a write leaves (a byte, a permission bit, a file) swaps in
    a new folder holding exactly the files, as before; server.log is carried over."""
    out = tmp_path / "build"
    files = _files(8000)
    write_artifacts(out, files)
    (out / "server.log").write_text("INFO started\n")
    launch = out / "launch.sh"
    if change == "bytes":
        # an edit keeping its sha256 in the manifest is impossible: change the manifest's
        # own bytes instead (a manifest aimc reads back the same)
        manifest = out / "manifest.json"
        manifest.write_text(manifest.read_text() + "\n")
    elif change == "mode":
        launch.chmod(0o644)
    elif change == "folder mode":
        out.chmod(0o700)
    elif change == "missing":
        (out / "aim.env").unlink()
    else:
        files = _files(9000)
    before = _inodes(out)
    write_artifacts(out, files)
    assert _inodes(out)["."] != before["."]
    assert {p.name: p.read_text() for p in out.iterdir() if p.name != "server.log"} == files
    assert (out / "server.log").read_text() == "INFO started\n"
    assert launch.stat().st_mode & 0o777 == 0o755 and out.stat().st_mode & 0o777 == 0o755
