"""Settings (aimc/core/settings.py): every environment variable aimc honours, one test or
more each, through the real CLI (tests/helpers/cli.py) or through the Python API where that
is what the AIM Engine contract describes; and the precedence flag > environment > default.

Docstrings that start with "Failed before" say what went wrong before aimc read its
settings in one module (the others pin behaviour that already held).
"""

from __future__ import annotations

import ast
import concurrent.futures
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aimc.core.errors import ConfigError
from aimc.core.settings import DEFAULT_CACHE_DIR, Settings, setting
from tests.conftest import ROOT, Result
from tests.helpers.cli import run
from tests.helpers.runs import FAKE, Lab, environ_of, free_port

EXAMPLES = ROOT / "examples" / "recipes"
#: Variables these tests control: never inherited from the environment pytest runs in.
CONTROLLED = (
    "CACHE_DIR",
    "DOCKER_SOCKET",
    "DOCKER_HOST",
    "DEFAULT_PORT",
    "DEFAULT_TIMEOUT",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "XDG_STATE_HOME",
)


def clean_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without aimc's variables, plus ``env``; messages as
    text lines (``LOG_FORMAT=text``) unless ``env`` sets LOG_FORMAT."""
    full = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIMC_", "AIM_")) and k not in CONTROLLED
    }
    full.update({"LOG_FORMAT": "text", **(env or {})})
    return full


def aim(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> Result:
    """``aim-engine ARGS`` (as conftest's ``run_cli``, with the variables these tests
    control removed from the inherited environment)."""
    return run(args, clean_env(env), cwd=cwd, timeout=120)


def warnings_in(err: str) -> list[str]:
    """The warnings on stderr as text: ``warning: ...`` lines, and the JSON records of
    level WARNING (``LOG_FORMAT=json``, also when LOG_FORMAT itself is invalid) as the
    same text."""
    found = []
    for line in err.splitlines():
        if line.startswith("{") and json.loads(line)["level"] == "WARNING":
            found.append(f"warning: {json.loads(line)['message']}")
        elif line.startswith("warning:"):
            found.append(line)
    return found


@pytest.fixture
def lab(tmp_path: Path, cli):
    """A folder compiled for the cpu target whose 'python' is the stand-in server."""
    lab = Lab(tmp_path, cli)
    yield lab
    lab.stop_recorded()


def launch_args(port: int) -> list[str]:
    return [
        "launch",
        "aimc-examples/tiny-llama",
        "--target",
        "cpu",
        "--recipes",
        str(EXAMPLES),
        "--port",
        str(port),
        "--format",
        "json",
    ]


# --- the settings module itself ---------------------------------------------------------


def test_defaults_are_the_documented_ones() -> None:
    settings = Settings.load({"HOME": "/home/u"})
    assert settings.cache_dir == Path(DEFAULT_CACHE_DIR) == Path("/workspace/model-cache")
    assert settings.state_dir == Path("/home/u/.local/state/aimc")
    assert settings.docker_socket is None
    assert (settings.default_port, settings.default_timeout) == (8000, 600.0)
    assert (settings.debug, settings.log_level, settings.log_format) == (False, "INFO", "json")
    assert settings.recipe_dirs == ()
    assert set(settings.origins.values()) == {"default"}
    assert settings.default_port_given is None


@pytest.mark.parametrize(
    ("name", "variable", "env_value", "flag", "from_env", "from_flag"),
    [
        ("cache_dir", "CACHE_DIR", "/e/cache", "/f/cache", Path("/e/cache"), Path("/f/cache")),
        ("state_dir", "AIMC_STATE_DIR", "/e/st", "/f/st", Path("/e/st"), Path("/f/st")),
        ("docker_socket", "DOCKER_SOCKET", "/e/d.sock", "/f/d.sock", Path("/e/d.sock"),
         Path("/f/d.sock")),
        ("default_port", "DEFAULT_PORT", "9000", 9001, 9000, 9001),
        ("default_timeout", "DEFAULT_TIMEOUT", "30", 45.5, 30.0, 45.5),
        ("debug", "AIM_DEBUG", "yes", False, True, False),
        ("log_level", "LOG_LEVEL", "error", "debug", "ERROR", "DEBUG"),
        ("log_format", "LOG_FORMAT", "TEXT", "json", "text", "json"),
        ("recipe_dirs", "AIMC_RECIPES", "/a::/b", ["/c"], (Path("/a"), Path("/b")), (Path("/c"),)),
    ],
)  # fmt: skip
def test_flag_beats_environment_beats_default(
    name: str, variable: str, env_value: str, flag: object, from_env: object, from_flag: object
) -> None:
    base = {"HOME": "/home/u"}
    default = Settings.load(base)
    env = Settings.load({**base, variable: env_value})
    flagged = Settings.load({**base, variable: env_value}, **{name: flag})  # type: ignore[arg-type]
    assert getattr(env, name) == from_env and env.origin(name) == "environment"
    assert getattr(flagged, name) == from_flag and flagged.origin(name) == "flag"
    assert default.origin(name) == "default"
    # an empty variable counts as unset; a flag of None means "not given"
    assert Settings.load({**base, variable: ""}, **{name: None}) == default  # type: ignore[arg-type]
    later = env.with_flags(**{name: flag})
    assert getattr(later, name) == from_flag and later.origin(name) == "flag"


def test_state_dir_falls_back_to_xdg_state_home_then_home() -> None:
    assert Settings.load({"XDG_STATE_HOME": "/x", "HOME": "/h"}).state_dir == Path("/x/aimc")
    assert Settings.load({"HOME": "/h"}).state_dir == Path("/h/.local/state/aimc")


def test_a_relative_cache_dir_is_made_absolute() -> None:
    assert Settings.load({"CACHE_DIR": "rel/cache"}).cache_dir == Path.cwd() / "rel/cache"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"default_port": 0}, "default_port=0 is not a port number (an integer 1-65535)"),
        ({"default_port": True}, "default_port=True is not a port number"),
        ({"default_timeout": -1}, "default_timeout=-1 is not a positive number of seconds"),
        ({"default_timeout": float("inf")}, "default_timeout=inf is not a positive number"),
        ({"log_level": "LOUD"}, "log_level='LOUD' is not one of DEBUG, INFO"),
        ({"cache_dir": ""}, "cache_dir='' is empty"),
    ],
)
def test_invalid_flags_are_configuration_errors(flags: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.load({}, **flags)  # type: ignore[arg-type]
    assert caught.value.exit_code == 2 and message in caught.value.message


def test_one_setting_is_checked_without_the_others() -> None:
    """Library code reads the one value it needs (:func:`aimc.core.settings.setting`): an invalid
    variable it does not use does not fail it; the whole settings do fail."""
    env = {"DEFAULT_PORT": "abc", "AIMC_STATE_DIR": "/s", "AIMC_RECIPES": "/r"}
    assert setting("state_dir", env) == Path("/s")
    assert setting("recipe_dirs", env) == (Path("/r"),)
    assert setting("cache_dir", env, flag="/c") == Path("/c")
    with pytest.raises(ConfigError, match="DEFAULT_PORT='abc'"):
        setting("default_port", env)
    with pytest.raises(ConfigError, match="DEFAULT_PORT='abc'"):
        Settings.load(env)


def test_unknown_flags_are_refused() -> None:
    with pytest.raises(TypeError):
        Settings.load({}).with_flags(cache=None)


def test_lenient_variables_warn_once_per_process(capsys: pytest.CaptureFixture[str]) -> None:
    env = {"HOME": "/h", "LOG_LEVEL": "LOUDER", "LOG_FORMAT": "yaml", "AIM_DEBUG": "maybe"}
    first = Settings.load(env)
    Settings.load(env)
    assert (first.log_level, first.log_format, first.debug) == ("INFO", "json", False)
    assert warnings_in(capsys.readouterr().err) == [
        "warning: AIM_DEBUG='maybe' is not one of 1, true, yes, on, 0, false, no, off; "
        "using the default (off)",
        "warning: LOG_LEVEL='LOUDER' is not one of DEBUG, INFO, WARNING, WARN, ERROR, "
        "CRITICAL; using the default (INFO)",
        "warning: LOG_FORMAT='yaml' is not one of json, text; using the default (json)",
    ]


def test_secrets_are_not_settings_and_pass_through_to_the_server() -> None:
    names = {f.name for f in dataclasses.fields(Settings)}
    assert not any("token" in n or "key" in n for n in names)
    settings = Settings.load({"CACHE_DIR": "/c", "AIM_DEBUG": "1", "HOME": "/h"})
    env = settings.server_env({"HF_TOKEN": "hf_secret", "VLLM_API_KEY": "k", "CACHE_DIR": "x"})
    assert env == {
        "HF_TOKEN": "hf_secret",
        "VLLM_API_KEY": "k",
        "CACHE_DIR": "/c",
        "AIM_DEBUG": "1",  # the server's debug level is in the plan (it reaches a container)
    }


def test_settings_import_nothing_heavy() -> None:
    """The CLI imports the settings at start-up: only the standard library, aimc.core (a
    docstring) and aimc.core.errors."""
    code = (
        "import sys, aimc.core.settings\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('aimc', 'click', 'jinja2', 'ruamel', 'huggingface_hub', 'jsonschema', 'yaml')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=clean_env()
    ).stdout
    assert out.strip() == "['aimc', 'aimc.core', 'aimc.core.errors', 'aimc.core.settings']"


def _aimc_modules() -> dict[str, Path]:
    modules = {}
    for file in (ROOT / "aimc").rglob("*.py"):
        parts = list(file.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = file
    return modules


def _import_graph(top_level_only: bool) -> dict[str, set[str]]:
    """module -> aimc modules it imports (top-level statements only, or anywhere).

    ``from pkg import sub`` counts as importing ``pkg.sub``; a module's own packages are
    imported before it and are not edges.
    """
    modules = _aimc_modules()

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, file in modules.items():
        tree = ast.parse(file.read_text(encoding="utf-8"))
        nodes: list[ast.AST] = []
        if top_level_only:
            for node in tree.body:
                if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                    continue
                nodes.extend(ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node])
        else:
            nodes = list(ast.walk(tree))
        targets: list[str] = []
        for node in nodes:
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = [f"{node.module}.{a.name}" for a in node.names]
                subs = [s for s in subs if s in modules]
                targets += subs if len(subs) == len(node.names) else [node.module, *subs]
        graph[name] = {
            t
            for t in map(known, targets)
            if t and t.split(".")[0] == "aimc" and t != name and not name.startswith(t + ".")
        }
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_among_top_level_imports() -> None:
    assert _cycles(_import_graph(top_level_only=True)) == []


def test_build_and_checkpoint_do_not_import_each_other() -> None:
    """Failed before: checkpoint.prepare_cache imported aimc.app.pipeline (for cache_dir) while
    build.make_plan imported aimc.modelcache.checkpoint."""
    graph = _import_graph(top_level_only=False)
    assert not (
        "aimc.app.pipeline" in graph["aimc.modelcache.checkpoint"]
        and "aimc.modelcache.checkpoint" in graph["aimc.app.pipeline"]
    )
    assert not [c for c in _cycles(graph) if "aimc.app.pipeline" in c or "aimc.core.settings" in c]


def test_every_module_imports_in_a_fresh_interpreter() -> None:
    names = [*sorted(n for n in _aimc_modules() if n != "aimc.__main__"), "aim_launcher"]

    def load(name: str) -> tuple[str, int, str]:
        proc = subprocess.run(
            [sys.executable, "-c", f"import {name}"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=clean_env(),
        )
        return name, proc.returncode, proc.stderr[-300:]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        failed = [r for r in pool.map(load, names) if r[1] != 0]
    assert failed == []


# --- CACHE_DIR --------------------------------------------------------------------------


def test_cache_dir_is_the_folder_cache_stats_reports(tmp_path: Path) -> None:
    result = aim("cache", "stats", "--format", "json", env={"CACHE_DIR": str(tmp_path / "c")})
    assert result.code == 0, result.err
    assert json.loads(result.out)["data"]["cache_dir"] == str(tmp_path / "c")
    default = json.loads(aim("cache", "stats", "--format", "json").out)["data"]
    assert default["cache_dir"] == "/workspace/model-cache"


def test_a_relative_cache_dir_is_reported_absolute(tmp_path: Path) -> None:
    """Failed before: a relative CACHE_DIR was used as given, so the server (which runs in
    its build folder) looked for the cache somewhere else than aimc did."""
    result = aim("cache", "stats", "--format", "json", env={"CACHE_DIR": "rel"}, cwd=tmp_path)
    assert json.loads(result.out)["data"]["cache_dir"] == str(tmp_path / "rel")


def test_a_cache_dir_that_is_a_file_is_exit_5(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    result = aim("cache", "stats", env={"CACHE_DIR": str(tmp_path / "file")})
    assert result.code == 5
    assert f"error: CACHE_DIR {tmp_path / 'file'} is not a folder" in result.err


# --- AIMC_STATE_DIR (XDG_STATE_HOME, HOME) ----------------------------------------------


def test_state_dir_holds_the_records_that_status_reads(lab, tmp_path: Path) -> None:
    assert lab.run("run", str(lab.folder), FAKE_MODE="ready").code == 0
    assert (tmp_path / "state" / "runs" / "aim-tiny-llama.json").is_file()
    here = json.loads(lab.run("status", "--format", "json").out)["data"]
    assert [row["name"] for row in here] == ["aim-tiny-llama"]
    other = lab.run("status", "--format", "json", AIMC_STATE_DIR=str(tmp_path / "other"))
    assert json.loads(other.out)["data"] == []


@pytest.mark.parametrize("how", ["XDG_STATE_HOME", "HOME"])
def test_state_dir_falls_back_to_xdg_state_home_and_home(tmp_path: Path, cli, how: str) -> None:
    lab = Lab(tmp_path, cli)
    env = {k: v for k, v in lab.env.items() if k != "AIMC_STATE_DIR"}
    env[how] = str(tmp_path / "base")
    expected = tmp_path / "base" / ("aimc" if how == "XDG_STATE_HOME" else ".local/state/aimc")
    try:
        result = aim("run", str(lab.folder), env={**env, "FAKE_MODE": "ready"})
        assert result.code == 0, result.err
        assert (expected / "runs" / "aim-tiny-llama.json").is_file()
    finally:
        assert aim("stop", "--all", env=env).code == 0
    assert not (expected / "runs" / "aim-tiny-llama.json").exists()


# --- DOCKER_SOCKET ----------------------------------------------------------------------


def _recording_docker(lab: Lab) -> tuple[dict[str, str], Path]:
    """A stand-in docker that writes the DOCKER_HOST each subcommand saw."""
    seen = lab.tmp / "docker-hosts"
    bindir = lab.tmp / "bin"
    bindir.mkdir(exist_ok=True)
    docker = bindir / "docker"
    docker.write_text(
        "#!/bin/bash\n"
        f'echo "$1 ${{DOCKER_HOST:-unset}}" >> {seen}\n'
        'case "$1" in\n  version) echo 28.2.2;;\n'
        "  rm) exit 0;;\n"
        f'  run) exec {sys.executable} {FAKE} "$@";;\nesac\n'
    )
    docker.chmod(0o755)
    return {"PATH": f"{bindir}:{os.environ['PATH']}"}, seen


def _docker_folder(lab: Lab) -> Path:
    folder = lab.tmp / "docker-build"
    result = lab.cli(
        "compile",
        "aimc-examples/tiny-llama",
        "--target",
        "cpu",
        "--recipes",
        str(EXAMPLES),
        "--port",
        str(lab.port),
        "--launcher",
        "docker",
        "--set",
        "image=vllm/vllm-openai:v0.32.0",
        "-o",
        str(folder),
    )
    assert result.code == 0, result.err
    return folder


def test_docker_socket_is_the_docker_host_of_run_and_stop(lab) -> None:
    """Failed before: 'stop' removed the container with plain 'docker rm', without the
    DOCKER_HOST that DOCKER_SOCKET names (so it went to the default engine)."""
    env, seen = _recording_docker(lab)
    env["DOCKER_SOCKET"] = str(lab.tmp / "engine.sock")
    folder = _docker_folder(lab)
    result = lab.run("run", str(folder), "--format", "json", FAKE_MODE="ready", **env)
    assert result.code == 0, result.err
    assert lab.run("stop", "--all", **env).code == 0
    lines = seen.read_text().splitlines()
    host = f"unix://{lab.tmp / 'engine.sock'}"
    # 'container inspect' before the start and at the stop (a stand-in engine has no
    # container of the run's label, so nothing is removed: tests/test_run_records.py).
    assert {line.split()[0] for line in lines} >= {"version", "run", "container"}
    assert all(line.split()[1] == host for line in lines), lines


def test_docker_host_wins_over_docker_socket(lab) -> None:
    env, seen = _recording_docker(lab)
    env.update(DOCKER_SOCKET=str(lab.tmp / "engine.sock"), DOCKER_HOST="tcp://127.0.0.1:1")
    result = lab.run("run", str(_docker_folder(lab)), FAKE_MODE="ready", **env)
    assert result.code == 0, result.err
    assert lab.run("stop", "--all", **env).code == 0
    assert {line.split()[1] for line in seen.read_text().splitlines()} == {"tcp://127.0.0.1:1"}


# --- DEFAULT_PORT -----------------------------------------------------------------------


def _plan_port(*flags: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    args = ("show-config", "Qwen/Qwen3-8B", "--target", "h100", "--format", "json", *flags)
    result = aim(*args, env=env)
    assert result.code == 0, result.err
    plan = json.loads(result.out)["data"]["plan"]
    return plan["port"], plan["args"]["port"]["source"]


def test_port_flag_beats_default_port_beats_8000() -> None:
    assert _plan_port() == (8000, "aimc default")
    assert _plan_port(env={"DEFAULT_PORT": "9000"}) == (9000, "$DEFAULT_PORT")
    assert _plan_port("--port", "8123", env={"DEFAULT_PORT": "9000"}) == (8123, "--port")


def test_default_port_is_the_compiled_port(tmp_path: Path) -> None:
    out = tmp_path / "o"
    args = ("compile", "Qwen/Qwen3-8B", "--target", "h100", "-o", str(out))
    assert aim(*args, env={"DEFAULT_PORT": "9100", "LOG_LEVEL": "WARNING"}).code == 0
    assert json.loads((out / "manifest.json").read_text())["plan"]["port"] == 9100
    assert "--port 9100" in (out / "launch.sh").read_text()


@pytest.mark.parametrize("value", ["abc", "0", "70000", "80.5", "-1"])
def test_an_invalid_default_port_is_exit_2_with_one_line(value: str) -> None:
    """Failed before: 'abc' said 'is not a number', out-of-range values failed later in
    the resolver with another message, and commands without a plan ignored it."""
    for args in (("show-config", "Qwen/Qwen3-8B", "--target", "h100"), ("status",)):
        result = aim(*args, env={"DEFAULT_PORT": value})
        assert result.code == 2, result
        assert result.err.splitlines() == [
            f"error: DEFAULT_PORT={value!r} is not a port number (an integer 1-65535)"
        ]


def test_an_invalid_default_port_is_a_json_error_under_format_json() -> None:
    args = ("show-config", "Qwen/Qwen3-8B", "--target", "h100", "--format", "json")
    result = aim(*args, env={"DEFAULT_PORT": "abc"})
    assert result.code == 2
    error = json.loads(result.out)["error"]
    assert error["code"] == "CONFIGURATION_ERROR" and "DEFAULT_PORT='abc'" in error["message"]


# --- DEFAULT_TIMEOUT --------------------------------------------------------------------


def test_timeout_flag_beats_default_timeout(lab) -> None:
    env = {"FAKE_MODE": "never", "DEFAULT_TIMEOUT": "1"}
    result = lab.run("run", str(lab.folder), "--format", "json", **env)
    assert result.code == 4
    assert json.loads(result.out)["error"]["message"] == (
        "the server was not ready after 1 s; stopped it"
    )
    result = lab.run("run", str(lab.folder), "--timeout", "1.5", "--format", "json", **env)
    assert result.code == 4
    assert "not ready after 1.5 s" in json.loads(result.out)["error"]["message"]
    # and without either, the default (a unit check: 600 s is too long to wait for)
    assert Settings.load({"HOME": "/h"}).default_timeout == 600
    assert "$DEFAULT_TIMEOUT or 600" in aim("run", "--help").out


@pytest.mark.parametrize("value", ["abc", "0", "-5", "nan", "inf"])
def test_an_invalid_default_timeout_is_exit_2_with_one_line(value: str) -> None:
    """Failed before: an unreadable DEFAULT_TIMEOUT was silently 600 s, and 0 or -5 were a
    usage error about '--timeout', a flag the user did not give."""
    result = aim("run", "/nonexistent", env={"DEFAULT_TIMEOUT": value})
    assert result.code == 2
    assert result.err.splitlines() == [
        f"error: DEFAULT_TIMEOUT={value!r} is not a positive number of seconds"
    ]


# --- AIM_DEBUG --------------------------------------------------------------------------

#: A command that fails with an internal error (a bug), added to the real CLI.
BOOM = """
import sys, types
import click
import aimc.cli

@click.command()
def boom():
    raise RuntimeError("boom")

module = types.ModuleType("aimc_test_boom")
module.boom = boom
sys.modules["aimc_test_boom"] = module
aimc.cli.COMMANDS["boom"] = "aimc_test_boom:boom"
aimc.cli.main(sys.argv[1:])
"""


def _boom(*args: str, env: dict[str, str] | None = None) -> Result:
    proc = subprocess.run(
        [sys.executable, "-c", BOOM, *args],
        cwd=ROOT,
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.mark.parametrize("value", ["1", "true", "YES", "on"])
def test_aim_debug_shows_the_traceback_of_an_internal_error(value: str) -> None:
    result = _boom("boom", env={"AIM_DEBUG": value})
    assert result.code == 1
    assert "Traceback (most recent call last)" in result.err
    assert "RuntimeError: boom" in result.err


@pytest.mark.parametrize("value", ["0", "false", "off", "", "2"])
def test_without_aim_debug_an_internal_error_is_one_line_and_a_hint(value: str) -> None:
    """Failed before for 'off' (read as debug on) and '2' (a usage error of every command)."""
    result = _boom("boom", env={"AIM_DEBUG": value})
    assert result.code == 1
    assert "Traceback" not in result.err
    assert "internal error: RuntimeError: boom" in result.err
    assert _boom("--debug", "boom").err.count("Traceback (most recent call last)") == 1


def test_aim_debug_that_is_not_a_boolean_warns_once_and_the_command_works() -> None:
    """Failed before: click read AIM_DEBUG as the --debug flag's value, and '2' made every
    command a usage error."""
    result = aim("list", "models", "--format", "json", env={"AIM_DEBUG": "2"})
    assert result.code == 0, result.err
    assert json.loads(result.out)
    assert warnings_in(result.err) == [
        "warning: AIM_DEBUG='2' is not one of 1, true, yes, on, 0, false, no, off; "
        "using the default (off)"
    ]


@pytest.mark.parametrize("how", ["AIM_DEBUG=1", "launch --debug", "aim-engine --debug"])
def test_debug_makes_the_launched_server_verbose(lab, how: str) -> None:
    """Failed before for AIM_DEBUG=1 and the global --debug: only 'launch --debug' set
    VLLM_LOGGING_LEVEL=DEBUG for the server."""
    args = launch_args(lab.port)
    env = {"FAKE_MODE": "ready"}
    if how == "AIM_DEBUG=1":
        env["AIM_DEBUG"] = "1"
    elif how == "launch --debug":
        args.append("--debug")
    else:
        args.insert(0, "--debug")
    result = lab.run(*args, **env)
    assert result.code == 0, result.err
    [row] = json.loads(lab.run("status", "--format", "json").out)["data"]
    server_env = environ_of(row["pid"])
    assert server_env["VLLM_LOGGING_LEVEL"] == "DEBUG" and server_env["AIM_DEBUG"] == "1"


def test_without_debug_the_launched_server_is_not_verbose(lab) -> None:
    assert lab.run(*launch_args(lab.port), FAKE_MODE="ready").code == 0
    [row] = json.loads(lab.run("status", "--format", "json").out)["data"]
    server_env = environ_of(row["pid"])
    assert "VLLM_LOGGING_LEVEL" not in server_env
    assert server_env["CACHE_DIR"] == lab.env["CACHE_DIR"]


# --- LOG_LEVEL, LOG_FORMAT --------------------------------------------------------------

COMPILE = ("compile", "Qwen/Qwen3-8B", "--target", "h100")


def test_log_level_that_is_not_a_level_warns_once_and_notes_stay_at_info(tmp_path: Path) -> None:
    """Failed before: an unknown LOG_LEVEL was ignored without a word."""
    env = {"LOG_LEVEL": "LOUD", "LOG_FORMAT": "json"}
    result = aim(*COMPILE, "-o", str(tmp_path / "o"), env=env)
    assert result.code == 0, result.err
    assert warnings_in(result.err) == [
        "warning: LOG_LEVEL='LOUD' is not one of DEBUG, INFO, WARNING, WARN, ERROR, "
        "CRITICAL; using the default (INFO)"
    ]
    assert any('"level": "INFO"' in line for line in result.err.splitlines())


def test_log_level_hides_notes_below_it(tmp_path: Path) -> None:
    result = aim(*COMPILE, "-o", str(tmp_path / "o"), env={"LOG_LEVEL": "warning"})
    assert result.code == 0 and result.err == ""


def test_log_format_that_is_not_a_format_warns_once_and_notes_stay_json(tmp_path: Path) -> None:
    """Failed before: an unknown LOG_FORMAT was ignored without a word."""
    result = aim(*COMPILE, "-o", str(tmp_path / "o"), env={"LOG_FORMAT": "xml"})
    assert result.code == 0, result.err
    assert warnings_in(result.err) == [
        "warning: LOG_FORMAT='xml' is not one of json, text; using the default (json)"
    ]
    records = [json.loads(line) for line in result.err.splitlines()]  # the warning too
    assert len(records) > 1 and all(r["logger"] == "aimc" for r in records)


def test_log_format_text(tmp_path: Path) -> None:
    result = aim(*COMPILE, "-o", str(tmp_path / "o"), env={"LOG_FORMAT": "Text"})
    assert result.err.splitlines() and all(
        line.startswith("note: ") for line in result.err.splitlines()
    )


# --- AIMC_RECIPES -----------------------------------------------------------------------


def test_aimc_recipes_adds_recipe_directories() -> None:
    def models(env: dict[str, str] | None = None) -> set[str]:
        result = aim("list", "models", "--format", "json", env=env)
        assert result.code == 0, result.err
        return {row["model"] for row in json.loads(result.out)["data"]}

    assert "aimc-examples/tiny-llama" not in models()
    assert "aimc-examples/tiny-llama" in models({"AIMC_RECIPES": f":{EXAMPLES}:/nonexistent"})


# --- the Python API ---------------------------------------------------------------------


@pytest.fixture
def api_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The stand-in server as AIM_PYTHON, a private state folder; servers stopped after."""
    from aimc.run.runs import load_records, stop_record

    python = tmp_path / "fake-python"
    python.write_text(f'#!/bin/bash\nexec {sys.executable} {FAKE} "$@"\n')
    python.chmod(0o755)
    for name in CONTROLLED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIM_PYTHON", str(python))
    monkeypatch.setenv("AIMC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("FAKE_MODE", "ready")
    monkeypatch.delenv("AIM_DEBUG", raising=False)
    yield tmp_path
    for record in load_records():
        stop_record(record)


def test_api_cache_dir_belongs_to_its_engine(api_env: Path) -> None:
    """Failed before: AIMEngine(cache_dir=A) wrote os.environ["CACHE_DIR"], so every later
    engine (and everything else in the process) used A."""
    from aim_launcher import AIMEngine

    before = dict(os.environ)
    first = AIMEngine(cache_dir=str(api_env / "a"))
    second = AIMEngine()
    assert dict(os.environ) == before
    assert first.cache_dir == api_env / "a"
    assert second.cache_dir == Path("/workspace/model-cache")


def test_api_launch_passes_its_cache_dir_and_debug_to_the_server(
    api_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failed before: the server got the cache only through the process-wide CACHE_DIR,
    and AIM_DEBUG=1 did not make its logs verbose."""
    from aim_launcher import AIMEngine
    from aimc.run.runs import load_records

    monkeypatch.setenv("AIM_DEBUG", "1")
    before = dict(os.environ)
    engine = AIMEngine(cache_dir=str(api_env / "a"), target="cpu", recipe_dirs=[EXAMPLES])
    result = engine.launch_model("aimc-examples/tiny-llama", port=free_port(), timeout=60)
    assert result["success"] is True, result
    assert dict(os.environ) == before
    [record] = load_records()
    server_env = environ_of(record.pid)
    assert server_env["CACHE_DIR"] == server_env["HF_HUB_CACHE"] == str(api_env / "a")
    assert server_env["VLLM_LOGGING_LEVEL"] == "DEBUG"


def test_api_launch_port_beats_default_port_beats_8000(
    api_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failed before: launch_model's port was always 8000 unless given; DEFAULT_PORT was
    ignored by the API."""
    from aim_launcher import AIMEngine
    from aimc.run.runs import load_records, stop_record

    engine = AIMEngine(target="cpu", recipe_dirs=[EXAMPLES])
    from_env, from_arg = free_port(), free_port()
    monkeypatch.setenv("DEFAULT_PORT", str(from_env))
    result = engine.launch_model("aimc-examples/tiny-llama", timeout=60)
    assert result["success"] is True, result
    assert result["data"]["endpoint_url"] == f"http://localhost:{from_env}"
    for record in load_records():
        stop_record(record)
    result = engine.launch_model("aimc-examples/tiny-llama", port=from_arg, timeout=60)
    assert result["data"]["endpoint_url"] == f"http://localhost:{from_arg}"


def test_api_launch_timeout_beats_default_timeout(
    api_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failed before: launch_model waited 600 s whatever DEFAULT_TIMEOUT said."""
    from aim_launcher import AIMEngine

    monkeypatch.setenv("FAKE_MODE", "never")
    monkeypatch.setenv("DEFAULT_TIMEOUT", "1")
    engine = AIMEngine(target="cpu", recipe_dirs=[EXAMPLES])
    result = engine.launch_model("aimc-examples/tiny-llama", port=free_port())
    assert result["success"] is False
    assert result["error"]["message"] == "the server was not ready after 1 s; stopped it"
    result = engine.launch_model("aimc-examples/tiny-llama", port=free_port(), timeout=1.5)
    assert "not ready after 1.5 s" in result["error"]["message"]


def test_api_invalid_default_port_is_an_error_response(
    api_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failed before: the API ignored DEFAULT_PORT."""
    from aim_launcher import AIMEngine

    monkeypatch.setenv("DEFAULT_PORT", "abc")
    result = AIMEngine(target="cpu", recipe_dirs=[EXAMPLES]).launch_model("no-such/model")
    assert result["success"] is False
    assert result["error"]["code"] == "CONFIGURATION_ERROR"
    assert (
        result["error"]["message"] == "DEFAULT_PORT='abc' is not a port number (an integer 1-65535)"
    )


def test_no_engine_at_docker_socket_names_it_in_the_hint(lab) -> None:
    """The real docker CLI, DOCKER_SOCKET naming a socket where no engine listens: exit 4,
    and the hint names that socket (before: 'set DOCKER_SOCKET', although it was set, and
    'compile with --launcher process' for a 'launch')."""
    socket = lab.tmp / "no-engine.sock"
    result = lab.run("run", str(_docker_folder(lab)), "--timeout", "30", DOCKER_SOCKET=str(socket))
    assert result.code == 4, result.err
    lines = result.err.splitlines()
    assert lines[0].startswith("error: no Docker engine is reachable: ")
    assert lines[1] == (
        f"hint: start the Docker engine at unix://{socket}, or point DOCKER_SOCKET at a running one"
    )
    assert "--launcher" not in result.err
