"""``--format json`` on every command: exactly one JSON document on stdout, valid against
the command's schema in ``schemas/output.schema.json``, with the documented exit code and
the ``error.code`` that names it.

Every case runs the real CLI (tests/helpers/cli.py), with its own CACHE_DIR, AIMC_STATE_DIR, port
and folders; servers are the stand-in of ``tests/fakes/fake_server.py``, stopped (and their
process groups killed) whatever a test did. The commands come from the click group itself:
a command without a success case and a failure case here fails
:func:`test_every_command_has_a_success_and_a_failure_case`.
"""

from __future__ import annotations

import inspect
import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pytest

from tests.conftest import ROOT, Result, run_cli
from tests.helpers.cache import REV, _cached
from tests.helpers.gpu_tools import Machine
from tests.helpers.interop import aim_broken, aim_clean, vllm_broken, vllm_clean
from tests.helpers.output import SCHEMA, validator
from tests.helpers.runs import EXAMPLES, NAME, Reaper, RunLab, cli_env, members

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def leaf_commands() -> dict[str, click.Command]:
    """Every command of the CLI that runs something, by schema key (``cache-stats``)."""
    from aimc.cli import cli

    found: dict[str, click.Command] = {}

    def walk(group: click.Group, words: list[str]) -> None:
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None, name
            if isinstance(command, click.Group):
                walk(command, [*words, name])
            else:
                found["-".join([*words, name])] = command

    walk(cli, [])
    return found


def error_codes() -> dict[str, int]:
    """``error.code`` -> exit status, from the error classes (INTERRUPTED: Ctrl-C's)."""
    from aimc.core import errors

    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass)]
    return {c.code: c.exit_code for c in classes if issubclass(c, errors.AimcError)}


def check(result: Result, command: str | None, status: int, code: str | None = None) -> Any:
    """The one JSON document ``result`` printed, checked; its ``data`` (if any)."""
    assert result.code == status, (result.code, result.out, result.err)
    doc = json.loads(result.out)  # one document: anything after it is "Extra data"
    validator(command).validate(doc)
    assert "Traceback" not in result.err
    if status == 0:
        assert doc["success"] is True and doc["message"]
        return doc["data"]
    assert doc["success"] is False
    assert doc["error"]["code"] == code
    assert TIMESTAMP.fullmatch(doc["timestamp"])
    if code == "INTERRUPTED":
        assert status - 128 in STOP_SIGNALS
    else:
        assert error_codes()[code] == status
    return doc.get("data")


# --- the cases ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One run: ``command`` (schema key; None for no command), its arguments (``{tmp}``,
    ``{folder}``, ``{port}``, ``{examples}`` filled in), the exit status and error code
    expected, extra environment."""

    command: str | None
    args: tuple[str, ...]
    status: int = 0
    code: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return " ".join(self.args)[:70]


def ok(command: str | None, *args: str, **env: str) -> Case:
    return Case(command, args, env=env)


def fails(command: str | None, status: int, code: str, *args: str, **env: str) -> Case:
    return Case(command, args, status, code, env)


CONFIG = "CONFIGURATION_ERROR"
TINY = ("aimc-examples/tiny-llama", "--target", "cpu", "--recipes", "{examples}")

CASES = [
    # list
    ok("list", "list", "models"),
    ok("list", "list", "recipes", "--filter", "qwen"),
    ok("list", "list", "configs", "Qwen/Qwen3-8B"),
    ok("list", "list", "configs", "Qwen/Qwen3-8B", "--target", "h100"),
    fails("list", 2, CONFIG, "list", "configs", "no-such/model"),  # unknown model
    fails("list", 2, CONFIG, "list", "modelz"),  # bad argument
    fails("list", 2, CONFIG, "list"),  # missing argument
    fails("list", 2, CONFIG, "list", "configs", "Qwen/Qwen3-8B", "--target", "tpu9"),
    # show-config
    ok("show-config", "show-config", "Qwen/Qwen3-8B", "--target", "h100"),
    fails("show-config", 2, CONFIG, "show-config", "no-such/model", "--target", "h100"),
    fails("show-config", 2, CONFIG, "show-config", "Qwen/Qwen3-8B", "--precision", "fp7"),
    fails("show-config", 2, CONFIG, "show-config"),
    # cache
    ok("cache-stats", "cache", "stats"),
    fails("cache-stats", 5, "CACHE_ERROR", "cache", "stats", CACHE_DIR="{tmp}/a-file"),
    fails("cache-stats", 2, CONFIG, "cache", "stats", "--bogus"),  # unknown option
    ok("cache-list", "cache", "list"),
    ok("cache-list", "cache", "list", "--filter", "qwen"),
    fails("cache-list", 2, CONFIG, "cache", "list", "--filter"),  # option without its value
    ok("cache-download", "cache", "download", "Qwen/Qwen3-8B"),  # offline: HF_HUB_OFFLINE=1
    fails("cache-download", 6, "NETWORK_ERROR", "cache", "download", "no-such/model"),
    fails("cache-download", 2, CONFIG, "cache", "download"),
    ok("cache-remove", "cache", "remove", "Qwen/Qwen3-8B", "--yes"),
    fails("cache-remove", 5, "CACHE_ERROR", "cache", "remove", "no-such/model", "--yes"),
    fails("cache-remove", 2, CONFIG, "cache", "remove", "Qwen/Qwen3-8B"),  # not confirmed
    ok("cache-prune", "cache", "prune", "--yes"),
    fails("cache-prune", 5, "CACHE_ERROR", "cache", "prune", "--yes", CACHE_DIR="{tmp}/a-file"),
    # debug
    ok("debug-gpu-info", "debug", "gpu-info"),
    ok("debug-gpu-info", "debug", "gpu-info", "--detailed"),
    fails("debug-gpu-info", 2, CONFIG, "debug", "gpu-info", "--recipes"),
    ok("debug-recipe-info", "debug", "recipe-info", "Qwen/Qwen3-8B"),
    fails("debug-recipe-info", 2, CONFIG, "debug", "recipe-info", "no-such/model"),
    fails(
        "debug-recipe-info", 2, CONFIG, "debug", "recipe-info", "Qwen/Qwen3-8B", "--gpu-count", "0"
    ),
    fails("debug-recipe-info", 2, CONFIG, "debug", "recipe-info"),
    # validate: the report is the data whether the files are valid or not
    ok("validate", "validate", "tests/corpus/valid"),
    fails("validate", 2, CONFIG, "validate", "no/such/recipe.yaml"),
    fails("validate", 2, CONFIG, "validate", "{tmp}/empty", "--strict"),  # a warning only
    # validate --from and import (the collections: tests/test_interop.py, written by _prepare)
    ok("validate", "validate", "--from", "aim-profiles", "{tmp}/aim-build"),
    fails("validate", 2, CONFIG, "validate", "--from", "vllm-recipes", "{tmp}/vllm-broken"),
    ok("import-aim-profiles", "import", "aim-profiles", "{tmp}/aim-build", "-o", "{tmp}/out"),
    fails(
        "import-aim-profiles", 2, CONFIG, "import", "aim-profiles", "{tmp}/aim-broken", "-o", "o"
    ),
    fails(
        "import-aim-profiles", 2, CONFIG, "import", "aim-profiles", "{tmp}/a-file", "-o", "{tmp}/o"
    ),
    ok("import-vllm-recipes", "import", "vllm-recipes", "{tmp}/vllm-recipes", "-o", "{tmp}/out"),
    fails(
        "import-vllm-recipes", 2, CONFIG, "import", "vllm-recipes", "{tmp}/empty", "-o", "{tmp}/o"
    ),
    fails("import-vllm-recipes", 2, CONFIG, "import", "vllm-recipes", "{tmp}/vllm-recipes"),
    # compile
    ok("compile", "compile", "Qwen/Qwen3-8B", "--target", "h100", "-o", "{tmp}/out"),
    ok("compile", "compile", *TINY, "--port", "{port}", "-o", "{folder}", "--check"),
    fails("compile", 2, CONFIG, "compile", "no-such/model", "--target", "h100"),
    fails("compile", 2, CONFIG, "compile", "Qwen/Qwen3-8B", "0", "--target", "h100"),
    fails("compile", 2, CONFIG, "compile"),
    fails(
        "compile",
        3,
        "GPU_DETECTION_FAILED",
        "compile",
        "Qwen/Qwen3-8B",
        "2",
        "-o",
        "{tmp}/out",
        AIMC_KFD_TOPOLOGY="{tmp}/no-kfd",
        PATH="/usr/bin:/bin",
    ),
    # run, launch, status, stop (their successes: test_server_lifecycle_* below)
    fails("run", 4, "MODEL_LAUNCH_FAILED", "run", "{folder}", "--timeout", "60", FAKE_MODE="exit"),
    fails("run", 2, CONFIG, "run", "{tmp}/not-compiled"),
    fails("run", 2, CONFIG, "run", "{folder}", "--timeout", "0"),
    fails("run", 2, CONFIG, "run"),
    fails("launch", 2, CONFIG, "launch", "no-such/model", "--target", "cpu"),
    fails("launch", 2, CONFIG, "launch", "Qwen/Qwen3-8B", "--backend", "trt"),
    fails("launch", 2, CONFIG, "launch"),
    ok("status", "status"),
    fails("status", 2, CONFIG, "status", "--all"),
    ok("stop", "stop", "--all"),
    fails("stop", 2, CONFIG, "stop", "no-such-server"),
    fails("stop", 2, CONFIG, "stop"),
    # logs, bench (their successes: test_server_lifecycle_logs_bench below)
    fails("logs", 2, CONFIG, "logs", "no-such-server"),
    fails("logs", 2, CONFIG, "logs", "../etc"),
    fails("logs", 2, CONFIG, "logs"),
    fails("bench", 2, CONFIG, "bench", "no-such-server"),
    fails("bench", 2, CONFIG, "bench", "http://127.0.0.1:{port}", "--requests", "0"),
    fails("bench", 6, "NETWORK_ERROR", "bench", "http://127.0.0.1:{port}", "--model", "m"),
    # no command at all
    fails(None, 2, CONFIG, "validat"),  # unknown command
    fails(None, 2, CONFIG, "--bogus", "list", "models"),
]

#: The successes that need a server: the lifecycle tests below run them.
SERVER_SUCCESSES = {"launch", "run", "status", "stop", "logs", "bench"}


def _prepare(tmp: Path, env: dict[str, str]) -> None:
    """What the cases use besides a server: an offline cache holding Qwen/Qwen3-8B (complete:
    config, tokenizer, weights), a file, an empty folder."""
    env.update(CACHE_DIR=str(tmp / "cache"), AIMC_STATE_DIR=str(tmp / "state"), HF_HUB_OFFLINE="1")
    _cached(
        tmp / "cache",
        "Qwen/Qwen3-8B",
        {"config.json": b"{}", "tokenizer.json": b"[]", "model.safetensors": b""},
    )
    (tmp / "a-file").write_text("")
    (tmp / "empty").mkdir()
    aim_clean(tmp / "aim-build")
    aim_broken(tmp / "aim-broken")
    vllm_clean(tmp / "vllm-recipes")
    vllm_broken(tmp / "vllm-broken")


class Scratch:
    """The CLI in a scratch folder of its own, without a compiled folder or a server."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.env: dict[str, str] = {}
        _prepare(tmp, self.env)

    def run(self, *args: str, **env: str) -> Result:
        return run_cli(*args, env={**self.env, **env})


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[RunLab]:
    """A compiled stand-in folder too, and a free port; stops all it starts."""
    reaper = Reaper()
    lab = RunLab(tmp_path, reaper)
    _prepare(tmp_path, lab.env)
    try:
        yield lab
    finally:
        lab.stop_recorded()
        reaper.cleanup()


def fill(text: str, place: Scratch | RunLab) -> str:
    if isinstance(place, Scratch):
        return text.format(tmp=place.tmp, examples=EXAMPLES)
    return text.format(tmp=place.tmp, folder=place.folder, port=place.port, examples=EXAMPLES)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_json_output(case: Case, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    words = " ".join([*case.args, *case.env.values()])
    serves = case.command in SERVER_SUCCESSES or "{folder}" in words or "{port}" in words
    place = request.getfixturevalue("lab") if serves else Scratch(tmp_path)
    args = [fill(a, place) for a in case.args]
    env = {k: fill(v, place) for k, v in case.env.items()}
    check(place.run(*args, "--format", "json", **env), case.command, case.status, case.code)


def test_every_command_has_a_success_and_a_failure_case() -> None:
    commands = leaf_commands()
    succeed = {c.command for c in CASES if c.status == 0} | SERVER_SUCCESSES
    fail = {c.command for c in CASES if c.status}
    assert set(commands) == succeed, "a command without a --format json success case"
    assert set(commands) <= fail, "a command without a --format json failure case"
    for key, command in commands.items():
        assert key in SCHEMA["$defs"], f"schemas/output.schema.json has no $defs/{key}"
        (fmt,) = [p for p in command.params if p.name == "fmt"]
        assert isinstance(fmt.type, click.Choice) and "json" in fmt.type.choices, key


def test_invalid_files_keep_the_report_as_data(lab: RunLab) -> None:
    result = lab.run("validate", "tests/corpus/invalid", "--format", "json")
    report = check(result, "validate", 2, "CONFIGURATION_ERROR")
    assert report["valid"] is False and report["errors"] > 0
    error = json.loads(result.out)["error"]
    assert error["message"].startswith(f"{report['errors']} errors, ")
    first = report["diagnostics"][0]
    assert error["details"].startswith(f"{first['path']}:{first['line']}:{first['column']}: ")


def test_compile_check_of_a_stale_folder_gives_the_diff_as_data(lab: RunLab) -> None:
    args = [fill(a, lab) for a in TINY]  # without the lab's --port: port 8000 differs
    result = lab.run("compile", *args, "-o", str(lab.folder), "--check", "--format", "json")
    compared = check(result, "compile", 1, "GENERAL_ERROR")
    assert compared["output"] == str(lab.folder)
    assert f"-  --port {lab.port}" in compared["diff"] and "+  --port 8000" in compared["diff"]


# --- servers ------------------------------------------------------------------------------


def test_server_lifecycle_run_status_stop(lab: RunLab) -> None:
    ran = check(lab.run("run", str(lab.folder), "--format", "json", FAKE_MODE="ready"), "run", 0)
    assert ran["status"] == "running" and ran["container_name"] == NAME
    [row] = check(lab.run("status", "--format", "json"), "status", 0)
    assert (row["name"], row["status"]) == (NAME, "running")
    stopped = check(lab.run("stop", NAME, "--format", "json"), "stop", 0)
    assert stopped == {"stopped": [NAME], "stale": []}
    assert check(lab.run("status", "--format", "json"), "status", 0) == []


def test_server_lifecycle_logs_bench(lab: RunLab) -> None:
    check(lab.run("run", str(lab.folder), "--format", "json", FAKE_MODE="ready"), "run", 0)
    shown = check(lab.run("logs", NAME, "--tail", "1", "--format", "json"), "logs", 0)
    assert shown["name"] == NAME and len(shown["lines"]) == 1
    args = ("--requests", "2", "--output-len", "4", "--client", "aimc", "--format", "json")
    measured = check(lab.run("bench", NAME, *args), "bench", 0)
    assert measured["figures"]["completed"] == 2 and measured["key"]["configuration"] == "cpu-vllm"


def test_server_lifecycle_launch(lab: RunLab) -> None:
    args = lab.launch_args("-o", str(lab.tmp / "launched"), "--format", "json")
    launched = check(lab.run(*args, FAKE_MODE="ready"), "launch", 0)
    assert launched["endpoint_url"] == f"http://localhost:{lab.port}"
    assert check(lab.run("stop", "--all", "--format", "json"), "stop", 0)["stopped"] == [NAME]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_stop_signal_while_run_waits(lab: RunLab, signum: int) -> None:
    proc = lab.popen(
        "run", str(lab.folder), "--timeout", "300", "--format", "json", FAKE_MODE="never"
    )
    server = lab.server_pid()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    check(Result(proc.returncode, out, err), "run", 128 + signum, "INTERRUPTED")
    message = json.loads(out)["error"]["message"]
    assert (
        message
        == f"stopped: {signal.Signals(signum).name} while waiting for the server; stopped it"
    )
    assert not members(server)


# --- failures outside any command: a stand-in breaks the catalog ----------------------------


def run_broken(tmp: Path, raise_: str, *args: str) -> Result:
    """The CLI with ``Catalog.default`` replaced by one that raises ``raise_``."""
    code = (
        "import sys\n"
        "import aimc.check.catalog\n"
        "def broken(*args, **kwargs):\n"
        f"    raise {raise_}\n"
        "aimc.check.catalog.Catalog.default = broken\n"
        "from aimc.cli import main\n"
        "main()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=cli_env({"CACHE_DIR": str(tmp / "cache"), "AIMC_STATE_DIR": str(tmp / "state")}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def test_internal_error(tmp_path: Path) -> None:
    result = run_broken(
        tmp_path, "RuntimeError('stand-in bug')", "list", "models", "--format", "json"
    )
    check(result, "list", 1, "INTERNAL_ERROR")
    error = json.loads(result.out)["error"]
    assert error["message"] == "internal error: RuntimeError: stand-in bug"
    assert "--debug" in error["hint"] and "details" not in error


def test_no_error_has_an_empty_details_or_hint(tmp_path: Path) -> None:
    """Failed before: 'details' was "" when there was nothing more, and a hint
    was lost when there were details (no GPU: the way out was missing from the JSON)."""
    env = {"CACHE_DIR": str(tmp_path / "cache"), "AIMC_STATE_DIR": str(tmp_path / "state")}
    bare = run_cli("compile", "Qwen/Qwen3-8B", "--target", "h100", "--set", "noequals",
                   "--format", "json", env=env)  # fmt: skip
    check(bare, "compile", 2, "CONFIGURATION_ERROR")
    error = json.loads(bare.out)["error"]
    assert set(error) <= {"code", "message", "hint"} and all(error.values()), error
    machine = Machine(tmp_path)
    gpu = machine.run(run_cli, "compile", "Qwen/Qwen3-8B", "--format", "json", **env)
    check(gpu, "compile", 3, "GPU_DETECTION_FAILED")
    error = json.loads(gpu.out)["error"]
    assert error["code"] == "GPU_DETECTION_FAILED"
    assert error["hint"].startswith("see what detection tried with 'aim-engine debug gpu-info")
    assert "nvidia-smi" in error["details"]


def test_internal_error_with_debug_adds_the_traceback_on_stderr(tmp_path: Path) -> None:
    args = ("--debug", "list", "models", "--format=json")
    result = run_broken(tmp_path, "RuntimeError('stand-in bug')", *args)
    assert result.code == 1
    assert json.loads(result.out)["error"]["code"] == "INTERNAL_ERROR"
    assert "Traceback" in result.err and "stand-in bug" in result.err


def test_ctrl_c_outside_a_wait(tmp_path: Path) -> None:
    result = run_broken(tmp_path, "KeyboardInterrupt", "validate", "--format", "json")
    check(result, "validate", 130, "INTERRUPTED")


# --- the published list of error codes --------------------------------------------------------


def test_error_codes_are_one_list_in_code_schema_and_docs() -> None:
    from aimc.core import errors

    codes = error_codes()
    enum = SCHEMA["$defs"]["error_code"]["enum"]
    assert len(enum) == len(set(enum)) and set(enum) == set(codes)
    assert errors.__doc__ is not None
    for code, status in codes.items():
        shown = "128+N" if code == "INTERRUPTED" else str(status)
        assert re.search(rf"^{re.escape(shown)} +{code} ", errors.__doc__, re.M), code
    # one code per documented exit status 1-7 (besides INTERNAL_ERROR)
    by_status = sorted(s for c, s in codes.items() if c not in ("INTERNAL_ERROR", "INTERRUPTED"))
    assert by_status == list(range(1, 8))


def test_validate_report_is_the_same_in_both_schemas() -> None:
    alone = json.loads((ROOT / "schemas" / "validate-output.schema.json").read_text())
    inside = SCHEMA["$defs"]["validate_report"]
    diagnostic = SCHEMA["$defs"]["diagnostic"]
    assert inside["properties"]["diagnostics"]["items"] == {"$ref": "#/$defs/diagnostic"}
    assert diagnostic == alone["properties"]["diagnostics"]["items"]
    for key in ("type", "required", "additionalProperties"):
        assert inside[key] == alone[key]
    for name, prop in alone["properties"].items():
        if name != "diagnostics":
            assert inside["properties"][name] == prop


# --- other formats ------------------------------------------------------------------------------


def test_yaml_prints_the_data_alone(lab: RunLab) -> None:
    from ruamel.yaml import YAML

    result = lab.run("cache", "list", "--format", "yaml")
    assert result.code == 0, result.err
    rows = YAML(typ="safe").load(result.out)
    assert [r["model"] for r in rows] == ["Qwen/Qwen3-8B"] and rows[0]["revisions"] == [REV[:12]]


def test_notes_stay_on_stderr(tmp_path: Path) -> None:
    machine = Machine(tmp_path)
    machine.amd_smi("amd-smi-6.4-static-8x-mi300x.json", "amd-smi-6.4-metric-8x-mi300x.json")
    env = {"LOG_FORMAT": "text", "CACHE_DIR": str(tmp_path / "cache")}
    args = ("compile", "Qwen/Qwen3-8B", "-o", str(tmp_path / "o"), "--format", "json")
    result = machine.run(run_cli, *args, **env)
    assert check(result, "compile", 0)["target"] == "mi300x"
    assert result.err.splitlines() == [
        "note: detected 8 x AMD Instinct MI300X: target mi300x",
        "note: 1 of 8 visible GPUs is busy: GPU 3 (45.5 of 192.0 GiB free); a GPU count left "
        "open uses only the free ones, a GPU count given the free ones first",
    ]


def test_gpu_info_of_a_machine_with_gpus(tmp_path: Path) -> None:
    machine = Machine(tmp_path)
    machine.amd_smi("amd-smi-6.4-static-8x-mi300x.json", "amd-smi-6.4-metric-8x-mi300x.json")
    result = machine.run(run_cli, "debug", "gpu-info", "--detailed", "--format", "json")
    data = check(result, "debug-gpu-info", 0)
    assert data["gpu_count"] == 8 and data["target"] == "mi300x"
    assert json.loads(result.out)["message"] == "8 GPUs detected; target mi300x"


def test_text_output_of_errors_is_on_stderr(tmp_path: Path) -> None:
    """Without --format json a usage error is aimc's error and hint lines on stderr (click's
    usage block once), stdout empty."""
    env = {"CACHE_DIR": str(tmp_path / "cache"), "AIMC_STATE_DIR": str(tmp_path / "state")}
    result = run_cli("list", "modelz", env=env)
    assert (result.code, result.out) == (2, "")
    assert result.err.splitlines() == [
        "error: TYPE='modelz' is not one of models, recipes, configs",
        "hint: did you mean 'models'?",
    ]
    unknown = run_cli("validat", env=env)
    assert (unknown.code, unknown.out) == (2, "")
    assert "Did you mean 'validate'?" in unknown.err
