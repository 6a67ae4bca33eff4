"""``compile --check``: which files of a folder differ from what compile would write (changed,
missing, not generated, not executable, without its last newline, not UTF-8), the diff it
prints (tokens masked), and its answer in the text, JSON and GitHub formats.

:func:`aimc.core.write.stale_artifacts` and :func:`aimc.core.write.diff_artifacts`
in-process, and the command end to end.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.core.write import diff_artifacts, stale_artifacts
from aimc.emit.emitters import compile_plan
from aimc.plan.request import Request

#: Files aimc writes into some folder, never into a single-node vLLM process folder.
STRAY = ["launch-worker.sh", "sglang.yaml", "deployment.yaml", "leaderworkerset.yaml",
         "manifest.aimc"]  # fmt: skip


@pytest.mark.parametrize("stray", STRAY)
def test_check_reports_a_file_it_would_not_write(cli, tmp_path: Path, stray: str) -> None:
    """``--check`` reports a file compile would not write. Once no test failed when
    ``--check`` ignored files that should not be there: a folder with a stray
    ``launch-worker.sh`` was "up to date"."""
    out = tmp_path / "out"
    args = ("compile", "Qwen/Qwen3-8B", "--target", "h100", "--launcher", "process", "-o", str(out))
    assert cli(*args).code == 0
    assert not (out / stray).exists()
    assert cli(*args, "--check").code == 0
    (out / stray).write_text("#!/bin/sh\nexec evil\n")
    text = cli(*args, "--check")
    assert text.code == 1
    assert text.out == f"--- {out / stray}\n+++ (not generated)\n@@ unexpected file @@\n"
    assert "up to date" not in text.out + text.err
    as_json = cli(*args, "--check", "--format", "json")
    assert as_json.code == 1
    body = json.loads(as_json.out)
    assert body["success"] is False and f"{out / stray}" in body["data"]["diff"]
    github = cli(*args, "--check", "--format", "github", cwd=tmp_path)
    assert github.code == 1
    assert f"::error file=out/{stray}," in github.out


def test_stale_and_diff_name_an_extra_file_and_only_it(tmp_path: Path) -> None:
    files = compile_plan(
        make_plan(Catalog.default(), Request(model="Qwen/Qwen3-8B", launcher="process"), "h100"),
        Request(model="Qwen/Qwen3-8B", launcher="process"),
        "h100",
    ).files
    from aimc.core.write import write_artifacts

    out = tmp_path / "out"
    write_artifacts(out, files)
    assert stale_artifacts(out, files) == [] and diff_artifacts(out, files) == ""
    (out / "server.log").write_text("a run's log is not an artifact\n")
    assert stale_artifacts(out, files) == [] and diff_artifacts(out, files) == ""
    (out / "launch-worker.sh").write_text("x\n")
    assert stale_artifacts(out, files) == ["launch-worker.sh"]
    diff = diff_artifacts(out, files)
    assert diff == f"--- {out / 'launch-worker.sh'}\n+++ (not generated)\n@@ unexpected file @@\n"


def test_check_names_a_launch_sh_that_lost_its_mode_and_a_file_without_a_last_newline(
    tmp_path: Path,
) -> None:
    from aimc.core.write import write_artifacts

    request = Request(model="Qwen/Qwen3-8B", launcher="process")
    files = compile_plan(make_plan(Catalog.default(), request, "h100"), request, "h100").files
    out = tmp_path / "out"
    write_artifacts(out, files)
    (out / "launch.sh").chmod(0o644)
    assert stale_artifacts(out, files) == ["launch.sh"]
    assert diff_artifacts(out, files) == f"{out / 'launch.sh'}: not executable\n"
    (out / "launch.sh").chmod(0o755)
    (out / "aim.env").write_text(files["aim.env"].rstrip("\n"))
    assert stale_artifacts(out, files) == ["aim.env"]
    diff = diff_artifacts(out, files)
    assert diff.endswith("\n") and "\n\\ No newline" not in diff
    assert all(line.endswith("\n") for line in diff.splitlines(keepends=True))
    removed = [line for line in diff.splitlines() if line[:1] == "-" and line[:3] != "---"]
    assert removed == ["-" + files["aim.env"].rstrip("\n").splitlines()[-1]]  # the last line only


def test_check_names_every_difference_missing_extra_and_changed(tmp_path: Path) -> None:
    from aimc.core.write import write_artifacts

    request = Request(model="Qwen/Qwen3-8B", launcher="process")
    files = compile_plan(make_plan(Catalog.default(), request, "h100"), request, "h100").files
    out = tmp_path / "out"
    write_artifacts(out, files)
    (out / "aim.env").unlink()
    (out / "aaa-extra").write_text("x\n")
    (out / "launch-worker.sh").write_text("x\n")
    (out / "vllm.yaml").write_text("edited: true\n")
    assert stale_artifacts(out, files) == ["aaa-extra", "aim.env", "launch-worker.sh", "vllm.yaml"]
    diff = diff_artifacts(out, files)
    assert f"--- /dev/null\n+++ {out / 'aim.env'} (generated)\n" in diff
    for extra in ("aaa-extra", "launch-worker.sh"):
        assert f"--- {out / extra}\n+++ (not generated)\n@@ unexpected file @@\n" in diff
    assert f"--- {out / 'vllm.yaml'}\n+++ {out / 'vllm.yaml'} (generated)\n" in diff
    assert "-edited: true\n" in diff


def test_check_reads_a_file_that_is_not_utf8_as_stale(tmp_path: Path) -> None:
    from aimc.core.write import write_artifacts

    request = Request(model="Qwen/Qwen3-8B", launcher="process")
    files = compile_plan(make_plan(Catalog.default(), request, "h100"), request, "h100").files
    out = tmp_path / "out"
    write_artifacts(out, files)
    (out / "vllm.yaml").write_bytes(b"\xff\xfe not text")
    assert stale_artifacts(out, files) == ["vllm.yaml"]
    assert "\n-<unreadable>\n" in diff_artifacts(out, files)


def test_an_up_to_date_check_is_text_in_text_and_github_formats(cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ("compile", "Qwen/Qwen3-8B", "--target", "h100", "-o", str(out))
    assert cli(*args).code == 0
    for fmt in ("text", "github"):
        result = cli(*args, "--check", "--format", fmt)
        assert (result.code, result.out) == (0, f"{out} is up to date\n"), fmt
    result = cli(*args, "--check", "--format", "json")
    assert json.loads(result.out)["message"] == f"{out} is up to date"


def test_the_check_diff_masks_a_token_in_an_edited_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``compile --check`` prints the diff of the folder's own files into a CI log: a token
    someone pasted into an artifact, or the caller's HF_TOKEN value, never shows."""
    from aimc.core.write import write_artifacts

    request = Request(model="Qwen/Qwen3-8B", launcher="process")
    files = compile_plan(make_plan(Catalog.default(), request, "h100"), request, "h100").files
    out = tmp_path / "out"
    write_artifacts(out, files)
    shaped = "hf_" + "A1b2C3d4" * 4
    mine = "my-own-secret-value-42"
    monkeypatch.setenv("HF_TOKEN", mine)
    with (out / "launch.sh").open("a") as f:
        f.write(f"export HF_TOKEN={shaped}\n# {mine}\n")
    (out / "stray.txt").write_text(f"{shaped}\n")
    diff = diff_artifacts(out, files)
    assert "-export HF_TOKEN=hf_***\n" in diff and "-# ***\n" in diff
    assert shaped not in diff and mine not in diff
