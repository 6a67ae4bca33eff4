"""What the everyday commands import (issue 26): each command pays only for what it uses.

Every case runs the real command twice, each time in a fresh interpreter that may write
bytecode (the first run keeps what a later run reuses: Jinja's rendered artifacts and the
parsed YAML files, :mod:`aimc.emit.rendered`, :mod:`aimc.core.yaml_cache`), and lists
``sys.modules`` when the second is done: a module on a case's ``absent`` list must not be
there (the command's import set grew past its list), a module on ``present`` must be (the
case still runs the path it is meant to pin). No timings: those are in ``bench/speed.py``.

Also: ``aim-engine --help`` lists the commands from ``aimc.cli.SUMMARIES`` without
importing them, and its page is the one click makes from the commands themselves.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from aimc.cli import COMMANDS, SUMMARIES, LazyGroup, cli
from tests.conftest import ROOT

RECIPE = str(ROOT / "recipes" / "models" / "Qwen" / "Qwen3-8B.yaml")

#: Run ``aim-engine ARGS`` in this interpreter through the console scripts' entry, then
#: write the loaded modules, the garbage collector's state, and the modules loaded when
#: its first automatic collection started (None: there was none).
_PROBE = """
import gc, json, sys
out, args = sys.argv[1], sys.argv[2:]
first = []
def seen(phase, info):
    if phase == "start" and not first:
        first.append(list(sys.modules))
gc.callbacks.append(seen)
sys.argv = ["aim-engine", *args]
from aimc.__main__ import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
with open(out, "w") as f:
    json.dump(
        {
            "code": code,
            "modules": sorted(sys.modules),
            "gc": {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()},
            "first_collection": first[0] if first else None,
        },
        f,
    )
"""

#: Libraries no everyday command below needs.
_NETWORK = ("huggingface_hub", "requests", "httpx", "httpx2", "urllib3", "http.client", "ssl")
_ALWAYS_ABSENT = (
    *_NETWORK,
    "subprocess",
    "aimc.detect",
    "aimc.modelcache.download",
    "aimc.run.bench",
    "multiprocessing",
    "concurrent.futures",
    "importlib.resources",
    # a write makes its own sibling folder (aimc.core.write), a cache imports tempfile
    # only to write on a miss
    "tempfile",
)

#: case -> (arguments, modules that must be absent, modules that must be present)
CASES: dict[str, tuple[list[str], tuple[str, ...], tuple[str, ...]]] = {
    "help": (
        ["--help"],
        (
            *_ALWAYS_ABSENT,
            "jinja2",
            "jsonschema",
            "ruamel",
            "aimc.app",
            "aimc.plan",
            "aimc.check",
            "aimc.emit",
            "aimc.run",
            "aimc.modelcache",
            "aimc.domain",
            *(target.split(":")[0] for target in COMMANDS.values()),
        ),
        ("click", "aimc.cli"),
    ),
    "compile": (
        ["compile", "Qwen/Qwen3-32B", "8", "--target", "mi300x", "-o", "{tmp}/out"],
        # rendered and parsed before: neither Jinja nor the YAML parser is loaded
        (
            *_ALWAYS_ABSENT,
            "jinja2",
            "ruamel.yaml",
            "jsonschema",
            "aimc.check.lint",
            "aimc.domain.schema",
            "aimc.emit.template_cache",
            "aimc.modelcache.checkpoint",
            "aimc.plan.saturation",  # bench results: only with --autoscale
            "_hashlib",  # OpenSSL: aimc hashes with Python's own SHA-256 (aimc.core.digest)
            "aimc.core.yaml_walk",  # the limits' event walk: only where a file is parsed
            "aimc.plan.derive",  # only for a model folder or a cached model without a recipe
            "aimc.modelcache",
            "encodings.utf_8_sig",  # the loader drops a BOM itself
            "aimc.run.runs",  # no run recorded: no server to refuse (aimc.run.record_files)
            "aimc.core.records",
            "aimc.emit.autoscale",  # only with --autoscale
            "aimc.plan.measured",  # only with --optimize
            "aimc.cli.results",  # bench results: only with --optimize or --autoscale
            "shutil",  # click's help page uses it; a write, only to copy or remove a subfolder
            # renameat2 through ctypes: only to replace a folder; the second compile finds it
            # holding exactly its files and leaves it (aimc.core.write._holds)
            "ctypes",
        ),
        ("aimc.emit.render", "aimc.emit.rendered", "aimc.core.yaml_cache", "aimc.plan.model"),
    ),
    "list": (
        ["list", "models"],
        (
            *_ALWAYS_ABSENT,
            "jinja2",
            "ruamel.yaml",
            "jsonschema",
            "aimc.emit",
            "aimc.plan.policy",
            "aimc.run",
        ),
        ("aimc.check.catalog",),
    ),
    "show-config": (
        ["show-config", "Qwen/Qwen3-32B", "--target", "mi300x"],
        (
            *_ALWAYS_ABSENT,
            "jinja2",
            "ruamel.yaml",
            "jsonschema",
            "aimc.check.lint",
            "aimc.run",
            "aimc.core.yaml_walk",
            "aimc.plan.derive",
            "aimc.modelcache",
        ),
        ("aimc.app.show", "aimc.plan.policy"),
    ),
    "validate one recipe": (
        ["validate", RECIPE],
        # the compiled schema check answers for a valid file: jsonschema is not loaded
        (
            *_ALWAYS_ABSENT,
            "jinja2",
            "jsonschema",
            "aimc.emit",
            "aimc.run",
            "_hashlib",  # OpenSSL: only --cache hashes the checked files (their verdict keys)
        ),
        ("aimc.check.lint", "aimc.domain.schema_compiler"),
    ),
}


def _probe(args: list[str], tmp_path: Path) -> dict[str, Any]:
    """What :data:`_PROBE` wrote on the second of two runs of ``aim-engine ARGS``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIMC_", "AIM_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        CACHE_DIR=str(tmp_path / "cache"),
        AIMC_STATE_DIR=str(tmp_path / "state"),
        HOME=str(tmp_path / "home"),
        XDG_STATE_HOME=str(tmp_path / "xdg"),
        LOG_FORMAT="text",
    )
    out = tmp_path / "modules.json"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, str(out), *argv],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["code"] in (0, None), (result["code"], done.stdout[-2000:], done.stderr[-2000:])
    return result


def _loaded(args: list[str], tmp_path: Path) -> set[str]:
    """The modules of the second of two runs of ``aim-engine ARGS``."""
    return set(_probe(args, tmp_path)["modules"])


def _has(modules: set[str], name: str) -> bool:
    return name in modules or any(m.startswith(name + ".") for m in modules)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_command_imports_only_what_it_uses(case: str, tmp_path: Path) -> None:
    args, absent, present = CASES[case]
    modules = _loaded(args, tmp_path)
    grown = sorted({m for m in modules for name in absent if m == name or m.startswith(name + ".")})
    assert grown == [], f"{case}: imports {grown}"
    assert [name for name in present if not _has(modules, name)] == []


@pytest.mark.parametrize("case", ["compile", "validate one recipe"])
def test_start_up_runs_without_the_collector_and_the_command_with_it(
    case: str, tmp_path: Path
) -> None:
    """The entry point pauses the garbage collector until the command's module is loaded,
    then freezes what start-up made and collects as usual (aimc.__main__)."""
    args = CASES[case][0]
    result = _probe(args, tmp_path)
    assert result["gc"]["enabled"] is True
    assert result["gc"]["frozen"] > 1000  # start-up's modules, classes, functions
    first = result["first_collection"]
    assert first is not None, "the command ran without a collection"
    assert COMMANDS[args[0]].split(":")[0] in first, "a collection ran during start-up"


def test_a_program_that_calls_the_command_line_keeps_its_collector(tmp_path: Path) -> None:
    """Only the console scripts' entry pauses the collector: importing aimc.cli and calling
    its main leaves it as the program set it."""
    code = (
        "import gc, json\n"
        "seen = []\n"
        "gc.callbacks.append(lambda phase, info: seen.append(phase))\n"
        "from aimc.cli import main\n"
        "try:\n"
        "    main(['--version'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps([gc.isenabled(), gc.get_freeze_count(), 'start' in seen]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == [True, 0, True]


def test_the_summaries_are_the_commands_first_sentences() -> None:
    assert sorted(SUMMARIES) == sorted(COMMANDS)
    for name, target in COMMANDS.items():
        module, attr = target.split(":")
        command = getattr(importlib.import_module(module), attr)
        assert command.get_short_help_str(limit=10**6) == SUMMARIES[name], name


class _EagerGroup(LazyGroup):
    """The same group, its help page made by click from the imported commands."""

    format_commands = click.Group.format_commands


@pytest.mark.parametrize("width", [50, 80, 120])
def test_the_help_page_is_the_one_click_makes_from_the_commands(width: int) -> None:
    eager = _EagerGroup(
        name=cli.name,
        callback=cli.callback,
        params=cli.params,
        help=cli.help,
        context_settings=cli.context_settings,
    )
    runner = CliRunner()
    lazy_page = runner.invoke(cli, ["--help"], terminal_width=width, prog_name="aim-engine")
    eager_page = runner.invoke(eager, ["--help"], terminal_width=width, prog_name="aim-engine")
    assert lazy_page.exit_code == eager_page.exit_code == 0
    assert "Commands:" in lazy_page.output and "validate" in lazy_page.output
    assert lazy_page.output == eager_page.output
