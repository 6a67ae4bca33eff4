"""The launch use case (aimc.app.launch): one sequence of steps for ``aim-engine launch``
and ``AIMEngine.launch_model``, so that the two cannot drift apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from aim_launcher import AIMEngine
from aimc.app.launch import prepare, run_dir
from aimc.app.pipeline import for_target, make_plan
from aimc.check.catalog import Catalog
from aimc.check.hardware import Target
from aimc.cli import cli
from aimc.core.errors import ConfigError
from aimc.core.settings import Settings
from aimc.emit.emitters import compile_plan
from aimc.plan.request import Request
from tests.conftest import ROOT

EXAMPLES = ROOT / "examples" / "recipes"
#: Llama 3.1 405B in bf16 on H100s spans two nodes (tests/test_multinode.py).
MULTINODE = ["meta-llama/Llama-3.1-405B-Instruct", "--target", "h100", "--precision", "bf16"]


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AIMC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DEFAULT_PORT", raising=False)
    return tmp_path / "state"


def test_a_plan_over_several_nodes_is_refused_alike_by_cli_and_api(state: Path) -> None:
    """Failed before: only the CLI refused to start one node of a multi-node plan;
    ``launch_model`` (its own copy of the launch) compiled, wrote and ran the head node's
    half. Now both refuse it with the same error, before anything is written."""
    done = CliRunner().invoke(cli, ["launch", *MULTINODE])
    assert isinstance(done.exception, ConfigError), done.output
    assert done.exception.exit_code == 2
    answer = AIMEngine(target="h100").launch_model(MULTINODE[0], precision="bf16")
    assert answer["success"] is False
    assert answer["error"]["code"] == "CONFIGURATION_ERROR"
    assert answer["error"]["message"] == done.exception.message
    assert answer["error"]["hint"] == done.exception.hint
    assert "spans 2 nodes" in answer["error"]["message"]
    assert not state.exists() or not list(state.rglob("*.*"))  # no folder, no record


def test_prepare_writes_the_run_folder_and_readies_the_server_env(state: Path) -> None:
    """The steps before the start: the compiled files in ``$AIMC_STATE_DIR/builds/NAME``
    (or the folder given), the server's environment with ``CACHE_DIR``, and the plan's
    decisions as notes."""
    catalog = Catalog.default([EXAMPLES])
    target = Target(catalog.hardware("cpu"))
    settings = Settings.load()
    request = Request(model="aimc-examples/tiny-llama", default_port=settings.default_port_given)
    plan = make_plan(catalog, request, target, settings.cache_dir)
    request, _ = for_target(request, target)
    launch = prepare(plan, request, "cpu", settings)
    assert launch.name == plan.name
    assert launch.folder == run_dir(settings, plan.name) == state / "builds" / plan.name
    expected = compile_plan(plan, request, "cpu").files
    assert {p.name: p.read_text() for p in launch.folder.iterdir()} == expected
    assert json.loads(expected["manifest.json"])["plan"]["name"] == launch.name
    assert launch.env["CACHE_DIR"] == str(settings.cache_dir)
    assert launch.notes[: len(plan.decisions)] == tuple(plan.decisions)
    elsewhere = prepare(plan, request, "cpu", settings, name="other", folder=state / "mine")
    assert (elsewhere.name, elsewhere.folder) == ("other", state / "mine")
    assert (state / "mine" / "launch.sh").read_text() == expected["launch.sh"]
    with pytest.raises(ConfigError, match="invalid run name"):
        prepare(plan, request, "cpu", settings, name="../escape")
