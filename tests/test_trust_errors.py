"""Trust (issue 9): every failure is its documented exit code with one line, never a
traceback. Each test's docstring says what it did before issue 9; the few cases that
were already right are kept as regression checks and say so."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.conftest import Result

QUIET = {"LOG_LEVEL": "WARNING"}


def _one_line_error(result: Result, code: int) -> None:
    assert result.code == code, (result.code, result.err)
    assert "internal error" not in result.err
    assert "Traceback" not in result.err
    assert result.err.startswith("error: ")
    assert len([ln for ln in result.err.splitlines() if ln.startswith("error: ")]) == 1


@pytest.mark.parametrize(
    "item",
    [
        "context_length=abc",
        "context_length=[1,2]",
        "context_length=-5",
        "memory_utilization=2",
        "memory_utilization=.nan",
        "max-num-seqs=.inf",
        "port=null",
        "served_model_name=null",
        "host=null",
    ],
)
def test_nonsense_set_values_are_configuration_errors(cli, tmp_path: Path, item: str) -> None:
    """Before issue 9: ValueError/KeyError tracebacks, or the nonsense written as is
    (only ``max-num-seqs=.inf`` was already refused)."""
    out = tmp_path / "b"
    result = cli("compile", "Qwen/Qwen3-8B", "--target", "h100", "-o", str(out), "--set", item)
    _one_line_error(result, 2)
    assert f"--set {item}" in result.err
    assert not out.exists()


def test_a_nan_in_a_config_file_is_refused(cli, tmp_path: Path) -> None:
    """Before issue 9 ``memory_utilization: .nan`` passed the schema (NaN compares false)."""
    config = tmp_path / "c.yaml"
    config.write_text("memory_utilization: .nan\n")
    result = cli("compile", "Qwen/Qwen3-8B", "--target", "h100", "--config", str(config))
    assert result.code == 2
    assert "c.yaml:1:21: error: nan is not a finite number (at /memory_utilization)" in result.err
    assert "Traceback" not in result.err


def _model(folder: Path, **config: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize(
    "config",
    [
        {"num_attention_heads": 0, "hidden_size": 64, "num_hidden_layers": 2},
        {"num_attention_heads": 2, "hidden_size": 1e308 * 10, "num_hidden_layers": 2},
        {"num_attention_heads": 2, "hidden_size": 64, "num_hidden_layers": -2},
        {"num_attention_heads": 2, "hidden_size": 64, "num_hidden_layers": 2, "vocab_size": "x"},
    ],
    ids=["zero-heads", "infinite-hidden", "negative-layers", "text-vocab"],
)
def test_a_broken_local_model_config_is_a_configuration_error(
    cli, tmp_path: Path, config: dict
) -> None:
    """Before issue 9: ZeroDivisionError, OverflowError or AttributeError tracebacks."""
    folder = _model(tmp_path / "m", **config)
    result = cli("compile", str(folder), "--target", "cpu", "-o", str(tmp_path / "b"))
    _one_line_error(result, 2)
    assert "config.json" in result.err


def test_a_config_json_that_is_not_an_object(cli, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("[1, 2]")
    result = cli("compile", str(folder), "--target", "cpu")
    _one_line_error(result, 2)


@pytest.mark.parametrize("command", [("cache", "stats"), ("cache", "list")])
def test_a_cache_dir_that_is_a_file_is_a_cache_error(cli, tmp_path: Path, command) -> None:
    """Before issue 9: ValueError from huggingface_hub's scan, exit 1."""
    file = tmp_path / "cache"
    file.write_text("not a folder")
    result = cli(*command, env={"CACHE_DIR": str(file), **QUIET})
    _one_line_error(result, 5)


def _broken_ref_cache(tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    refs = cache / "models--Qwen--Qwen3-8B" / "refs"
    refs.mkdir(parents=True)
    (refs / "main").write_bytes(b"\xff\xfe\x00binary")
    return cache


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_binary_ref_is_a_cache_error(cli, tmp_path: Path) -> None:
    """Before issue 9: UnicodeDecodeError while the hub was unreachable, exit 1."""
    env = {
        "CACHE_DIR": str(_broken_ref_cache(tmp_path)),
        "HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}",
        **QUIET,
    }
    _one_line_error(cli("cache", "download", "Qwen/Qwen3-8B", env=env), 5)


def test_a_ref_that_names_a_path_is_not_followed(tmp_path: Path) -> None:
    """A ref is a commit hash; before issue 9 ``../../..`` in it led out of the cache."""
    from aimc.modelcache.checkpoint import cache_snapshot

    cache = tmp_path / "cache"
    refs = cache / "models--org--m" / "refs"
    refs.mkdir(parents=True)
    (refs.parent / "snapshots").mkdir()
    (refs / "main").write_text("../../../")
    assert cache_snapshot(cache, "org/m") is None
    assert cache_snapshot(cache, "../x") is None


@pytest.mark.parametrize(
    ("env", "code"),
    [
        ({"HF_ENDPOINT": "not-a-url"}, 6),
        ({"HF_ENDPOINT": "http://127.0.0.1:{port}"}, 6),
        ({"HTTPS_PROXY": "http://127.0.0.1:{port}", "HTTP_PROXY": "http://127.0.0.1:{port}"}, 6),
    ],
    ids=["bad-endpoint", "unreachable-endpoint", "dead-proxy"],
)
def test_hub_failures_are_network_errors(cli, tmp_path: Path, env: dict, code: int) -> None:
    """Before issue 9 a bad HF_ENDPOINT was an httpx UnsupportedProtocol traceback (the
    unreachable endpoint and proxy were already exit 6)."""
    port = _closed_port()
    full = {k: v.format(port=port) for k, v in env.items()}
    full.update({"CACHE_DIR": str(tmp_path / "cache"), **QUIET})
    _one_line_error(cli("cache", "download", "some-org/some-model", env=full), code)


def test_an_invalid_repository_id_is_a_configuration_error(cli, tmp_path: Path) -> None:
    """Before issue 9: HFValidationError traceback, exit 1."""
    env = {"CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1", **QUIET}
    _one_line_error(cli("cache", "download", "bad id!!", env=env), 2)


def test_a_cache_dir_below_proc_is_a_cache_error(cli) -> None:
    env = {"CACHE_DIR": "/proc/aimc-cache", "HF_HUB_OFFLINE": "1", **QUIET}
    _one_line_error(cli("cache", "download", "some-org/some-model", env=env), 5)


def test_an_infinite_number_in_a_recipe_is_a_diagnostic(cli, tmp_path: Path) -> None:
    """Before issue 9 ``parameters: 1e400`` validated, and compiling it ended in a bogus
    "no configuration fits"."""
    shipped = Path(__file__).resolve().parent.parent / "recipes/models/Qwen/Qwen3-8B.yaml"
    text = shipped.read_text()
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "parameters:" in ln)
    recipes = tmp_path / "r" / "models" / "Qwen"
    recipes.mkdir(parents=True)
    lines = text.splitlines()
    lines[line - 1] = lines[line - 1].split("parameters:")[0] + "parameters: 1e400"
    (recipes / "Qwen3-8B.yaml").write_text("\n".join(lines) + "\n")
    result = cli("validate", str(tmp_path / "r"))
    assert result.code == 2
    assert f"Qwen3-8B.yaml:{line}:" in result.out + result.err
    assert "inf is not a finite number (at /model/facts/parameters)" in result.out + result.err


def test_a_config_file_error_names_the_config_file(cli, tmp_path: Path) -> None:
    """Before issue 11 an error in ``--config FILE`` ended "1 error in recipe files"."""
    config = tmp_path / "overrides.yaml"
    config.write_text("port: seventy\n")
    result = cli("compile", "Qwen/Qwen3-8B", "--target", "h100", "--config", str(config))
    assert result.code == 2
    assert result.err.splitlines()[-1] == f"error: 1 error in {config}"


@pytest.mark.parametrize(
    "value",
    ["9" * 5000, "0x" + "f" * 5000, f"[1, [2, {2**64}]]", "[" * 2000 + "]" * 2000],
    ids=["5000-digits", "hex", "nested-big", "deep"],
)
def test_a_set_value_too_large_or_deep_is_one_line_exit_2(cli, tmp_path: Path, value: str) -> None:
    """Failed before: Python's int-to-text limit ('internal error', exit 1)."""
    out = tmp_path / "b"
    args = ("compile", "Qwen/Qwen3-8B", "--target", "h100", "-o", str(out))
    result = cli(*args, "--set", f"max-num-seqs={value}")
    _one_line_error(result, 2)
    assert "is too large or too deeply nested" in result.err and not out.exists()
