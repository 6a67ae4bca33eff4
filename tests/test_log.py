"""What aimc writes on stderr under ``LOG_FORMAT=json``, the AIM Engine default.

Every command here runs twice (tests/helpers/cli.py): with ``LOG_FORMAT`` unset (the
default) and with ``LOG_FORMAT=json`` set. Every stderr line must be one JSON record, errors
with their hint and details included, each error once; and the two runs must write the same
records (timestamps aside).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CORPUS, ROOT, Result
from tests.helpers.cli import run

EXAMPLES = ROOT / "examples" / "recipes"


def _aim(tmp: Path, *args: str, **env: str) -> Result:
    """``aim-engine ARGS`` with LOG_FORMAT only as ``env`` sets it, on a machine
    without GPUs (no detection tool on PATH, an empty KFD tree)."""
    (tmp / "no-kfd").mkdir(exist_ok=True)
    full = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIMC_", "AIM_")) and k not in ("LOG_FORMAT", "LOG_LEVEL")
    }
    full.update(
        PATH="/usr/bin:/bin",
        AIMC_KFD_TOPOLOGY=str(tmp / "no-kfd"),
        AIMC_STATE_DIR=str(tmp / "state"),
        CACHE_DIR=str(tmp / "cache"),
        **env,
    )
    return run(args, full, timeout=120)


def _records(err: str) -> list[dict]:
    records = []
    for line in err.splitlines():
        record = json.loads(line)  # every line, not only those that look like JSON
        assert isinstance(record, dict), line
        assert record["logger"] == "aimc" and record["level"] in (
            "DEBUG",
            "INFO",
            "WARNING",
            "ERROR",
        ), line
        assert record.pop("timestamp").endswith("Z")
        records.append(record)
    return records


def _commands(tmp: Path) -> dict[str, tuple[tuple[str, ...], dict[str, str], int]]:
    """name -> (arguments, environment, exit code): successes with notes, user errors with
    a hint, with details, with diagnostics, usage errors, a settings warning."""
    out = str(tmp / "out")
    return {
        "list": (("list", "models"), {}, 0),
        "compile": (("compile", "Qwen/Qwen3-8B", "--target", "h100", "-o", out), {}, 0),
        "no-recipe": (("compile", "no-such/model", "--target", "h100"), {}, 2),
        "no-gpu": (("launch", "Qwen/Qwen3-8B", "--timeout", "5"), {}, 3),
        "invalid-recipe": (
            ("compile", "example-org/Example-7B", "--target", "h100"),
            {"AIMC_RECIPES": str(tmp / "recipes")},
            2,
        ),
        "bad-option": (("compile", "Qwen/Qwen3-8B", "--port", "0"), {}, 2),
        "no-command": (("compiel", "Qwen/Qwen3-8B"), {}, 2),
        "bad-setting": (("list", "models"), {"AIM_DEBUG": "maybe"}, 0),
    }


@pytest.mark.parametrize("name", list(_commands(Path("/nonexistent"))))
def test_every_stderr_line_is_one_json_record_by_default_and_when_asked(
    tmp_path: Path, name: str
) -> None:
    """Failed before: by default errors, hints, details, diagnostics, usage
    errors and settings warnings were text lines; with LOG_FORMAT=json set, an error was
    printed twice (the text lines and a record)."""
    broken = tmp_path / "recipes" / "models" / "example-org"
    broken.mkdir(parents=True)
    shutil.copy(CORPUS / "invalid" / "bad-enum.yaml", broken / "Example-7B.yaml")
    args, env, code = _commands(tmp_path)[name]
    default = _aim(tmp_path, *args, **env)
    asked = _aim(tmp_path, *args, **env, LOG_FORMAT="json")
    assert (default.code, asked.code) == (code, code), default.err
    assert default.out == asked.out
    records = _records(default.err)
    assert records == _records(asked.err)
    errors = [r for r in records if r["level"] == "ERROR" and "code" in r]
    assert len(errors) == (1 if code else 0), records
    if name == "no-recipe":
        assert errors[0] == {
            "level": "ERROR",
            "logger": "aimc",
            "message": "no recipe for model 'no-such/model'",
            "code": "CONFIGURATION_ERROR",
            "hint": "see 'aim-engine list models' for the models with recipes",
        }
    if name == "no-gpu":
        assert errors[0]["code"] == "GPU_DETECTION_FAILED"
        assert "debug gpu-info" in errors[0]["hint"] and "nvidia-smi" in errors[0]["details"]
    if name == "invalid-recipe":
        (diagnostic,) = [r for r in records if "code" not in r]
        assert diagnostic["message"].startswith("'bfloat16' is not one of")
        assert (diagnostic["line"], diagnostic["column"]) == (17, 23)
        assert diagnostic["hint"] == "did you mean 'bf16'?"
    if name in ("bad-option", "no-command"):
        assert errors[0]["code"] == "CONFIGURATION_ERROR"
        assert errors[0]["hint"].startswith("see 'aim-engine")
    if name == "bad-setting":
        assert records == [
            {
                "level": "WARNING",
                "logger": "aimc",
                "message": "AIM_DEBUG='maybe' is not one of 1, true, yes, on, 0, false, no, "
                "off; using the default (off)",
                "variable": "AIM_DEBUG",
            }
        ]
    if name == "compile":
        assert records and all(r["level"] == "INFO" for r in records)


def test_an_internal_error_with_debug_is_one_record_with_its_traceback(tmp_path: Path) -> None:
    """Failed before: the traceback was Python's text on stderr whatever
    LOG_FORMAT said."""
    boom = (
        "import sys, types, click, aimc.cli\n"
        "@click.command()\ndef boom():\n    raise RuntimeError('boom')\n"
        "m = types.ModuleType('aimc_test_boom'); m.boom = boom\n"
        "sys.modules['aimc_test_boom'] = m\n"
        "aimc.cli.COMMANDS['boom'] = 'aimc_test_boom:boom'\n"
        "aimc.cli.main(sys.argv[1:])\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("LOG_FORMAT", "AIM_DEBUG")}
    proc = subprocess.run(
        [sys.executable, "-c", boom, "--debug", "boom"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    (record,) = _records(proc.stderr)
    assert record["message"] == "internal error: RuntimeError: boom"
    assert record["code"] == "INTERNAL_ERROR"
    assert record["traceback"].startswith("Traceback (most recent call last)")
    assert "RuntimeError: boom" in record["traceback"]


def test_text_format_keeps_the_lines_for_people(tmp_path: Path) -> None:
    result = _aim(tmp_path, "compile", "no-such/model", "--target", "h100", LOG_FORMAT="text")
    assert result.err.splitlines() == [
        "error: no recipe for model 'no-such/model'",
        "hint: see 'aim-engine list models' for the models with recipes",
    ]
