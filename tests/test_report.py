"""The reporters: errors, diagnostics and log lines.

An error goes to stdout only with ``--format json``, as exactly its schema's document; in
every other format it is a log line on stderr, in ``LOG_FORMAT``'s form, with its hint and
details. A diagnostic is one line in every field, and the summary counts every diagnostic.
Every reporter masks a token, token-shaped or the caller's ``HF_TOKEN`` (``--format
json|text|github``, ``LOG_FORMAT=json|text``). ``bench/mutation.py`` mutates
:mod:`aimc.cli.report`, :func:`aimc.core.log.line` and :class:`aimc.core.diagnostics.Diagnostic`
against this file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from aimc.core.errors import ConfigError
from tests.conftest import ROOT

TOKEN = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWx12"


@pytest.mark.parametrize("log_format", ["json", "text"])
@pytest.mark.parametrize("fmt", ["json", "text"])
def test_an_error_echoing_a_token_masks_it(cli, tmp_path: Path, fmt: str, log_format: str) -> None:
    """A token in the input is masked in the error report of every format. Once no test
    failed when the JSON error report stopped masking: ``compile hf_<token>/x --format
    json`` printed the token."""
    out = tmp_path / "out"
    result = cli(
        "compile", f"{TOKEN}/x", "--target", "h100", "-o", str(out), "--format", fmt,
        env={"LOG_FORMAT": log_format},
    )  # fmt: skip
    assert result.code == 2, result.err
    assert TOKEN not in result.out + result.err
    assert "hf_***/x" in result.out + result.err
    if fmt == "json":
        error = json.loads(result.out)["error"]
        assert error["message"] == "no recipe for model 'hf_***/x'"


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_the_value_of_a_secret_variable_is_masked_in_an_error(
    cli, tmp_path: Path, fmt: str
) -> None:
    """Not token-shaped, but the caller's HF_TOKEN: masked all the same."""
    secret = "plainsecret123"
    result = cli(
        "compile", f"{secret}/x", "--target", "h100", "-o", str(tmp_path / "o"), "--format", fmt,
        env={"HF_TOKEN": secret},
    )  # fmt: skip
    assert result.code == 2
    assert secret not in result.out + result.err
    assert "***/x" in result.out + result.err


@pytest.mark.parametrize("log_format", ["json", "text"])
@pytest.mark.parametrize("fmt", ["json", "text", "github"])
def test_validate_never_echoes_a_token_from_a_file(
    cli, tmp_path: Path, fmt: str, log_format: str
) -> None:
    """Failed before: ``validate`` printed a token-shaped key of a recipe whole, in its
    text and GitHub annotations and in the JSON report's ``data`` (only the JSON error
    summary masked it): a CI log would show a token pasted into a recipe."""
    text = (ROOT / "recipes/models/Qwen/Qwen3-8B.yaml").read_text()
    text = re.sub(r"(?m)^  context_length: .*$", f"  {TOKEN}: 1", text, count=1)
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "Qwen3-8B.yaml").write_text(text)
    result = cli("validate", "v", "--format", fmt, cwd=tmp_path, env={"LOG_FORMAT": log_format})
    assert result.code == 2, result.err
    assert TOKEN not in result.out + result.err
    assert "unknown key 'hf_***'" in result.out + result.err
    if fmt == "json":
        (diagnostic,) = json.loads(result.out)["data"]["diagnostics"]
        assert diagnostic["message"] == "unknown key 'hf_***'"
        assert diagnostic["pointer"] == "/defaults/hf_***"


@pytest.mark.parametrize(
    "args",
    [
        ("compile", "no-such/model", "--target", "h100", "--format", "text"),
        ("compile", "no-such/model", "--target", "h100", "--format", "github"),
        ("list", "models", "--format", "yaml", "--recipes", "/nonexistent/aimc-recipes"),
        ("list", "models", "--format", "table", "--recipes", "/nonexistent/aimc-recipes"),
    ],
)
def test_only_format_json_puts_an_error_on_stdout(cli, tmp_path: Path, args) -> None:
    """Every other format (``github``, ``table``, ``text``, ``yaml``: before and after
    ``json`` in sort order) reports an error on stderr, as a log line, stdout empty."""
    env = {"LOG_FORMAT": "json"}
    out = ("-o", str(tmp_path / "o")) if args[0] == "compile" else ()
    result = cli(*args, *out, env=env)
    assert result.code == 2, result.err
    assert result.out == ""
    (record,) = [json.loads(line) for line in result.err.splitlines() if '"ERROR"' in line]
    assert record["code"] == "CONFIGURATION_ERROR"


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_the_summary_line_is_the_count_of_every_diagnostic(
    capsys, monkeypatch, log_format: str
) -> None:
    from aimc.cli.report import print_diagnostics
    from aimc.core.diagnostics import Diagnostic

    monkeypatch.setenv("LOG_FORMAT", log_format)
    print_diagnostics(
        [Diagnostic("a.yaml", 1, 1, "first"), Diagnostic("a.yaml", 2, 1, "second"),
         Diagnostic("a.yaml", 3, 1, "third", severity="warning")],
        summary=True,
    )  # fmt: skip
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4
    last = json.loads(lines[-1])["message"] if log_format == "json" else lines[-1]
    assert last == "2 errors, 1 warning in 1 file"


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_an_error_s_details_are_printed_and_masked(capsys, monkeypatch, log_format: str) -> None:
    from aimc.cli.report import print_error, set_format

    monkeypatch.setenv("LOG_FORMAT", log_format)
    set_format("text")
    print_error(ConfigError(f"failed {TOKEN}", hint=f"h {TOKEN}", details=f"one\ntwo {TOKEN}"))
    err = capsys.readouterr().err
    assert TOKEN not in err
    if log_format == "text":
        assert err.splitlines() == [
            "error: failed hf_***", "hint: h hf_***", "details:", "  one", "  two hf_***"
        ]  # fmt: skip
    else:
        (record,) = [json.loads(line) for line in err.splitlines()]
        assert (record["message"], record["hint"]) == ("failed hf_***", "h hf_***")
        assert record["details"] == "one\ntwo hf_***"


def test_the_json_error_document_is_exactly_its_schema_s_shape(capsys) -> None:
    from aimc.cli.report import print_error, set_format

    set_format("json")
    try:
        print_error(
            ConfigError(f"a\nb {TOKEN}", hint="c\nd", details=f"e\nf {TOKEN}"), data={"k": 1}
        )
    finally:
        set_format("table")
    captured = capsys.readouterr()
    assert captured.err == ""
    body = json.loads(captured.out)
    assert captured.out == json.dumps(body, indent=2) + "\n"
    assert list(body) == ["success", "error", "data", "timestamp"]
    assert body["success"] is False
    assert body["error"] == {
        "code": "CONFIGURATION_ERROR",
        "message": "a\\nb hf_***",
        "hint": "c\\nd",
        "details": "e\nf hf_***",
    }
    assert body["data"] == {"k": 1}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["timestamp"])


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_a_log_line_is_on_stderr_in_its_format(capsys, monkeypatch, log_format: str) -> None:
    from aimc.core.log import line

    monkeypatch.setenv("LOG_FORMAT", log_format)
    line("warning", f"m {TOKEN}", "WARNING", hint="h", rule="r")
    line("note", "n", "INFO", text=f"shown as is {TOKEN}")
    line("error", "e", "ERROR")
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    if log_format == "text":
        assert lines == ["warning: m hf_***", "hint: h", "shown as is hf_***", "error: e"]
        return
    records = [json.loads(line) for line in lines]
    assert [(r["level"], r["message"]) for r in records] == [
        ("WARNING", "m hf_***"), ("INFO", "n"), ("ERROR", "e")
    ]  # fmt: skip
    assert (records[0]["hint"], records[0]["rule"]) == ("h", "r")
    assert "text" not in records[1]


def test_a_diagnostic_is_one_masked_line_in_every_field() -> None:
    from aimc.core.diagnostics import Diagnostic

    d = Diagnostic("a.yaml", 1, 2, f"m\n{TOKEN}", pointer=f"/x/{TOKEN}", hint=f"h\n{TOKEN}")
    assert (d.message, d.pointer, d.hint) == ("m\\nhf_***", "/x/hf_***", "h\\nhf_***")
    assert Diagnostic("a.yaml", 1, 2, "m").hint is None
