"""Every documented exit code (0-7), each reached through the CLI as a user would reach it,
in text and JSON: the error code string of the JSON matches the exit code."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from tests.conftest import Result
from tests.helpers.runs import Lab

NAMES = {
    1: "GENERAL_ERROR",
    2: "CONFIGURATION_ERROR",
    3: "GPU_DETECTION_FAILED",
    4: "MODEL_LAUNCH_FAILED",
    5: "CACHE_ERROR",
    6: "NETWORK_ERROR",
    7: "PERMISSION_DENIED",
}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _check(lab: Lab, code: int, *args: str, **env: str) -> None:
    text = lab.run(*args, **env)
    assert text.code == code, (text.code, text.err)
    assert "Traceback" not in text.err
    if code:
        assert text.err.startswith("error: ") or "\nerror: " in text.err
    result = lab.run(*args, "--format", "json", **env)
    assert result.code == code, (result.code, result.err)
    body = json.loads(result.out)
    assert body["success"] is (code == 0)
    if code:
        assert body["error"]["code"] == NAMES[code]


def test_0_success(lab: Lab) -> None:
    _check(lab, 0, "list", "models")


def test_1_general_error_when_the_output_cannot_be_written(lab: Lab, tmp_path: Path) -> None:
    too_long = tmp_path / ("x" * 300)  # ENAMETOOLONG: not a configuration or permission error
    _check(lab, 1, "compile", "Qwen/Qwen3-8B", "--target", "h100", "-o", str(too_long))


def test_2_configuration_error_for_an_unknown_model(lab: Lab) -> None:
    _check(lab, 2, "compile", "no-such/model", "--target", "h100")


def test_3_gpu_detection_error_when_gpus_are_asked_of_a_machine_without(lab: Lab) -> None:
    empty = lab.tmp / "no-kfd"
    empty.mkdir()
    env = {"PATH": "/usr/bin:/bin", "AIMC_KFD_TOPOLOGY": str(empty)}
    _check(lab, 3, "compile", "Qwen/Qwen3-32B", "8", "--target", "auto", **env)


def test_4_launch_error_when_the_server_exits(lab: Lab) -> None:
    _check(lab, 4, "run", str(lab.folder), "--timeout", "60", FAKE_MODE="exit")


def test_5_cache_error_when_cache_dir_is_a_file(lab: Lab) -> None:
    file = lab.tmp / "cache-file"
    file.write_text("")
    _check(lab, 5, "cache", "stats", CACHE_DIR=str(file))


def test_6_network_error_when_the_hub_cannot_be_reached(lab: Lab) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    _check(lab, 6, "cache", "download", "some-org/some-model", HF_ENDPOINT=endpoint)


def test_7_permission_error_on_the_docker_socket(lab: Lab) -> None:
    bindir = lab.tmp / "bin"
    bindir.mkdir()
    docker = bindir / "docker"
    docker.write_text(
        "#!/bin/bash\necho 'permission denied while trying to connect to the Docker daemon "
        "socket at unix:///var/run/docker.sock' >&2; exit 1\n"
    )
    docker.chmod(0o755)
    folder = lab.tmp / "docker-build"
    compiled = lab.run(
        "compile", "aimc-examples/tiny-llama", "--target", "cpu", "--recipes",
        str(Path(__file__).resolve().parent.parent / "examples/recipes"), "--port",
        str(lab.port), "--launcher", "docker", "--set", "image=vllm/vllm-openai:v0.32.0",
        "-o", str(folder),
    )  # fmt: skip
    assert compiled.code == 0, compiled.err
    _check(lab, 7, "run", str(folder), PATH=f"{bindir}:{os.environ['PATH']}")


@pytest.mark.parametrize("code", sorted(NAMES))
def test_the_error_code_names_are_the_documented_ones(code: int) -> None:
    from aimc.core import errors

    classes = [
        c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.AimcError)
    ]
    assert NAMES[code] in {c.code for c in classes if c.exit_code == code}


def test_errors_are_log_records_when_log_format_is_json(lab: Lab) -> None:
    """An error under ``LOG_FORMAT=json`` is one record on stderr and nothing else. Failed
    before: an error was only text on stderr, whatever LOG_FORMAT said; later it was both
    (the text lines, then a record)."""
    result = lab.run("compile", "no-such/model", "--target", "h100", LOG_FORMAT="json")
    assert result.code == 2
    (error,) = [json.loads(ln) for ln in result.err.splitlines()]
    assert (error["level"], error["code"]) == ("ERROR", "CONFIGURATION_ERROR")
    assert error["message"] == "no recipe for model 'no-such/model'"
    quiet = lab.run("compile", "no-such/model", "--target", "h100", LOG_FORMAT="text")
    assert not [ln for ln in quiet.err.splitlines() if ln.startswith("{")]


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
    """Failed before: ValueError/KeyError tracebacks, or the nonsense written as is
    (only ``max-num-seqs=.inf`` was already refused)."""
    out = tmp_path / "b"
    result = cli("compile", "Qwen/Qwen3-8B", "--target", "h100", "-o", str(out), "--set", item)
    _one_line_error(result, 2)
    assert f"--set {item}" in result.err
    assert not out.exists()


def test_a_nan_in_a_config_file_is_refused(cli, tmp_path: Path) -> None:
    """Failed before: ``memory_utilization: .nan`` passed the schema (NaN compares false)."""
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
    """Failed before: ZeroDivisionError, OverflowError or AttributeError tracebacks."""
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
    """Failed before: ValueError from huggingface_hub's scan, exit 1."""
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


def test_a_binary_ref_is_a_cache_error(cli, tmp_path: Path) -> None:
    """Failed before: UnicodeDecodeError while the hub was unreachable, exit 1."""
    env = {
        "CACHE_DIR": str(_broken_ref_cache(tmp_path)),
        "HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}",
        **QUIET,
    }
    _one_line_error(cli("cache", "download", "Qwen/Qwen3-8B", env=env), 5)


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
    """Failed before: a bad HF_ENDPOINT was an httpx UnsupportedProtocol traceback (the
    unreachable endpoint and proxy were already exit 6)."""
    port = _closed_port()
    full = {k: v.format(port=port) for k, v in env.items()}
    full.update({"CACHE_DIR": str(tmp_path / "cache"), **QUIET})
    _one_line_error(cli("cache", "download", "some-org/some-model", env=full), code)


def test_an_invalid_repository_id_is_a_configuration_error(cli, tmp_path: Path) -> None:
    """Failed before: HFValidationError traceback, exit 1."""
    env = {"CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1", **QUIET}
    _one_line_error(cli("cache", "download", "bad id!!", env=env), 2)


def test_a_cache_dir_below_proc_is_a_cache_error(cli) -> None:
    env = {"CACHE_DIR": "/proc/aimc-cache", "HF_HUB_OFFLINE": "1", **QUIET}
    _one_line_error(cli("cache", "download", "some-org/some-model", env=env), 5)


def test_an_infinite_number_in_a_recipe_is_a_diagnostic(cli, tmp_path: Path) -> None:
    """Failed before: ``parameters: 1e400`` validated, and compiling it ended in a bogus
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
    """Failed before: an error in ``--config FILE`` ended "1 error in recipe files"."""
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
