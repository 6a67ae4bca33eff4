"""Every documented exit code (0-7), each reached through the CLI as a user would reach it,
in text and JSON: the error code string of the JSON matches the exit code."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

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
    """Before issue 11 an error was only text on stderr, whatever LOG_FORMAT said; before
    issue 20 it was both (the text lines, then a record)."""
    result = lab.run("compile", "no-such/model", "--target", "h100", LOG_FORMAT="json")
    assert result.code == 2
    (error,) = [json.loads(ln) for ln in result.err.splitlines()]
    assert (error["level"], error["code"]) == ("ERROR", "CONFIGURATION_ERROR")
    assert error["message"] == "no recipe for model 'no-such/model'"
    quiet = lab.run("compile", "no-such/model", "--target", "h100", LOG_FORMAT="text")
    assert not [ln for ln in quiet.err.splitlines() if ln.startswith("{")]
