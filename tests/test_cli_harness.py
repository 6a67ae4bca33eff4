"""The test harness of the command line (tests/helpers/cli.py): a pure command run in this
process gives the exit status, stdout and stderr that ``python -m aimc`` gives, byte for
byte; and a run leaves no state behind that the next one would see.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from pathlib import Path

import pytest

from tests.helpers.cli import (
    IN_PROCESS,
    PROCESS_COMMANDS,
    Result,
    base_env,
    in_process,
    run_cli,
    run_in_process,
    run_process,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "recipes"
TOKEN = "hf_" + "Zq8w" * 9
COMPILE = ("compile", "Qwen/Qwen3-8B", "--target", "h100")

#: name -> (arguments, extra environment): every kind of outcome a pure command has.
CASES: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "compile": ((*COMPILE, "-o", "out"), {}),
    "compile-json": ((*COMPILE, "-o", "out", "--format", "json"), {}),
    "compile-check-drift": ((*COMPILE, "-o", "drifted", "--check"), {}),
    "show-config-json": (("show-config", *COMPILE[1:], "--format", "json"), {}),
    "list-models-json": (("list", "models", "--format", "json"), {}),
    "validate-file-line-col": (("validate", "bad.yaml"), {}),
    "validate-json": (("validate", "bad.yaml", "--format", "json"), {}),
    "usage-error": (("compile",), {}),
    "unknown-command": (("validat",), {}),
    "unknown-option-json": (("list", "models", "--formt", "json", "--format", "json"), {}),
    "secret-masked": ((*COMPILE, "-o", "b", "--set", f"env.HF_TOKEN={TOKEN}"), {}),
    "secret-of-the-caller": (
        (*COMPILE, "-o", "b", "--set", f"env.FOO={TOKEN}$"),
        {"HF_TOKEN": TOKEN},
    ),
    "settings-warning": (("list", "models"), {"LOG_LEVEL": "loud"}),
    "log-format-json": ((*COMPILE, "-o", "out"), {"LOG_FORMAT": "json"}),
    "help": (("compile", "--help"), {}),
    "version": (("--version",), {}),
    "non-ascii": (("show-config", "Qwen/Qwen3-8B", "--target", "h1ØØ"), {}),
}  # fmt: skip


def _folder(tmp: Path) -> Path:
    """A working folder: a recipe with a duplicate key, and a folder aimc did not write."""
    tmp.mkdir()
    shutil.copy(ROOT / "tests/corpus/invalid/duplicate-key.yaml", tmp / "bad.yaml")
    (tmp / "drifted").mkdir()
    (tmp / "drifted" / "notes.txt").write_text("mine\n")
    return tmp


_TIMESTAMP = re.compile(r'"timestamp": "[^"]*"')


def _same_clock(result: Result) -> Result:
    """The result with the JSON timestamps blanked (two runs, two clocks)."""
    out, err = (_TIMESTAMP.sub('"timestamp": ""', text) for text in (result.out, result.err))
    return Result(result.code, out, err)


@pytest.mark.parametrize("name", sorted(CASES))
def test_in_process_is_the_process(name: str, tmp_path: Path) -> None:
    args, extra = CASES[name]
    env = base_env(extra)
    assert in_process(args, env)
    inside = run_in_process(args, env, cwd=_folder(tmp_path / "a"))
    outside = run_process(args, env, cwd=_folder(tmp_path / "b"))
    assert _same_clock(inside) == _same_clock(outside)
    assert "Traceback" not in inside.err


def test_the_cases_cover_every_outcome(tmp_path: Path) -> None:
    """Success, exit 1 and exit 2; a FILE:LINE:COL diagnostic; JSON on stdout; a secret
    masked; a warning; so the parity above is not parity of one easy case."""
    results = {
        name: run_cli(*args, env=extra, cwd=_folder(tmp_path / name))
        for name, (args, extra) in CASES.items()
    }
    assert {r.code for r in results.values()} == {0, 1, 2}
    assert "bad.yaml:11:5: error: found duplicate key" in results["validate-file-line-col"].out
    assert json.loads(results["list-models-json"].out)["success"] is True
    assert json.loads(results["validate-json"].out)["success"] is False
    masked = results["secret-masked"]
    assert masked.code == 2 and "***" in masked.err and TOKEN not in masked.out + masked.err
    assert "warning: LOG_LEVEL='loud'" in results["settings-warning"].err
    assert all(json.loads(line) for line in results["log-format-json"].err.splitlines())
    assert "Usage: aim-engine compile" in results["help"].out
    assert (tmp_path / "compile" / "out" / "launch.sh").is_file()


def test_a_warning_once_per_process_is_given_by_each_run() -> None:
    """aimc warns about an invalid variable once per process; each run is a process."""
    for _ in range(2):
        result = run_cli("list", "models", env={"LOG_LEVEL": "loud"})
        assert result.code == 0
        assert result.err.count("warning: LOG_LEVEL='loud'") == 1


def test_the_environment_and_folder_are_the_runs_and_put_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AIMC_*/AIM_* of the test run are not the command's; the test's env and cwd are;
    all of it is put back after."""
    monkeypatch.setenv("AIMC_STATE_DIR", str(tmp_path / "never"))
    monkeypatch.setenv("AIM_DEBUG", "1")
    before, cwd = dict(os.environ), Path.cwd()
    result = run_cli(*COMPILE, "-o", "out", cwd=tmp_path, env={"CACHE_DIR": str(tmp_path)})
    assert result.code == 0, result.err
    assert (tmp_path / "out" / "launch.sh").is_file()
    assert dict(os.environ) == before and Path.cwd() == cwd
    assert not (tmp_path / "never").exists()


def test_an_escaping_exception_is_a_traceback_and_status_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the interpreter does with an exception main lets through (``--debug``), and
    main's own one-line internal error without it."""
    from aimc.cli import listing

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(listing.list_, "callback", broken)
    shown = run_cli("--debug", "list", "models")
    assert shown.code == 1
    assert shown.err.startswith("Traceback (most recent call last):")
    assert shown.err.rstrip().endswith("RuntimeError: boom")
    hidden = run_cli("list", "models")
    assert (hidden.code, hidden.out) == (1, "")
    assert hidden.err.startswith("internal error: RuntimeError: boom\n")
    assert "Traceback" not in hidden.err


def test_a_run_that_changes_the_environment_or_a_handler_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The harness puts the process back, so it must say when aimc did not."""
    from aimc.cli import listing

    def leaky(*args: object, **kwargs: object) -> None:
        os.environ["LEAKED"] = "1"

    monkeypatch.setattr(listing.list_, "callback", leaky)
    with pytest.raises(AssertionError, match="LEAKED"):
        run_cli("list", "models")

    def handler(*args: object, **kwargs: object) -> None:
        signal.signal(signal.SIGTERM, lambda *a: None)

    monkeypatch.setattr(listing.list_, "callback", handler)
    with pytest.raises(AssertionError, match="SIGTERM"):
        run_cli("list", "models")
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


@pytest.mark.parametrize(
    ("args", "env", "inside"),
    [
        (("compile", "x"), {}, True),
        (("--debug", "validate"), {}, True),
        (("cache", "list"), {}, True),
        (("cache", "download", "x/y"), {}, False),
        (("launch", "x"), {}, False),
        (("stop", "--all"), {}, False),
        (("status", "--format", "json"), {}, True),
        (("compile", "x"), {"PYTHONPATH": "/stand-ins"}, False),
    ],
)
def test_what_runs_in_a_process(args: tuple[str, ...], env: dict[str, str], inside: bool) -> None:
    assert in_process(args, base_env(env)) is inside
    assert not IN_PROCESS & PROCESS_COMMANDS
