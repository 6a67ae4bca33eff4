"""An env name is a variable name, judged whole: :func:`aimc.core.safety.check_env` refuses a
valid start with anything after it, wherever the name comes from (``--set``, ``--config``, a
recipe, a plan handed to the Python API) and in every renderer that writes one (launch.sh,
aim.env, compose.yaml, the Kubernetes manifests); nothing is written and nothing runs.

Each test fails if ``check_env`` matched only a prefix of the name (``match`` for
``fullmatch``), which no test caught once.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aim_launcher import AIMConfigGenerator, AIMDockerManager
from aimc.core.errors import ConfigError
from aimc.core.safety import check_env
from aimc.emit.k8s import render_k8s
from aimc.emit.render import render
from tests.conftest import ROOT
from tests.helpers.plans import plan_with_env
from tests.helpers.runs import FAKE

#: Each starts with a valid name, so only a whole-name match refuses it.
HOSTILE_ENV_NAMES = [
    "A;touch PWNED;B",
    "A$(touch PWNED)",
    "A`touch PWNED`",
    "A\ntouch PWNED",
    "A\n",
    "A B",
    "A=B",
    "A-B",
    "A.B",
    "A\x00B",
    "A" * 129,  # a valid shape, longer than ENV_NAME's 128 characters
]


_VALID_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(_VALID_NAME, st.text(min_size=1, max_size=20))
def test_a_name_with_anything_after_a_valid_prefix_is_refused(prefix: str, rest: str) -> None:
    """``check_env`` judges the whole name: a valid start never lets the rest through."""
    name = prefix + rest
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", name, re.ASCII):
        check_env(name, "x", "test")  # a valid name (the rest was name characters)
        return
    with pytest.raises(ConfigError, match="is not a variable name"):
        check_env(name, "x", "test")


def test_name_length_bound() -> None:
    check_env("A" * 128, "x", "test")
    with pytest.raises(ConfigError, match="is not a variable name"):
        check_env("A" * 129, "x", "test")


@pytest.fixture
def api_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The API's state and cache in ``tmp_path``, the current folder a sandbox (where an
    injected ``touch PWNED`` would land)."""
    monkeypatch.setenv("AIMC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    python = tmp_path / "fake-python"
    python.write_text(f'#!/bin/bash\nexec {sys.executable} {FAKE} "$@"\n')
    python.chmod(0o755)
    monkeypatch.setenv("AIM_PYTHON", str(python))
    monkeypatch.setenv("FAKE_MODE", "ready")
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    monkeypatch.chdir(sandbox)
    return tmp_path


def _nothing_written(base: Path, name: str) -> None:
    assert not (base / "state" / "builds" / name).exists()
    assert not list((base / "state").rglob("*.json")) if (base / "state").exists() else True
    assert not list(base.rglob("PWNED"))


@pytest.mark.parametrize("name", HOSTILE_ENV_NAMES, ids=range(len(HOSTILE_ENV_NAMES)))
def test_run_command_directly_refuses_a_hostile_env_name(api_env: Path, name: str) -> None:
    """The Python API refuses the name and writes nothing. Nothing but ``check_env`` stands
    between this name and ``export A;touch PWNED;B=x`` in launch.sh, and once no test fed
    one through the API."""
    config = {"command": ["/bin/true"], "port": 8999, "env": {name: "x"}}
    result = AIMDockerManager().run_command_directly(config, "aim-envname", 0, timeout=5)
    assert result["success"] is False
    assert result["error"]["code"] == "CONFIGURATION_ERROR"
    assert "is not a variable name" in result["error"]["message"]
    _nothing_written(api_env, "aim-envname")


@pytest.mark.parametrize("name", HOSTILE_ENV_NAMES[:4], ids=range(4))
def test_run_command_directly_refuses_a_plan_with_a_hostile_env_name(
    api_env: Path, name: str
) -> None:
    """A ``plan`` configuration (a dict the caller may have edited) is rendered again: its
    env names pass the same check."""
    from ruamel.yaml import YAML

    examples = ROOT / "examples"
    recipe = YAML(typ="safe").load(
        (examples / "recipes/models/aimc-examples/tiny-llama.yaml").read_text()
    )
    recipe["weights"]["fp32"]["path"] = str(examples / "models/tiny-llama")
    config = AIMConfigGenerator(target="cpu").generate_config(recipe, 1)
    assert config is not None
    plan = json.loads(config["files"]["manifest.json"])["plan"]
    plan["env"] = {name: {"value": "x", "layer": "user", "source": "test"}}
    result = AIMDockerManager().run_command_directly({"plan": plan}, "aim-envplan", 1, timeout=5)
    assert result["success"] is False, result
    assert result["error"]["code"] == "CONFIGURATION_ERROR"
    assert "is not a variable name" in result["error"]["message"]
    _nothing_written(api_env, "aim-envplan")


@pytest.mark.parametrize("name", HOSTILE_ENV_NAMES, ids=range(len(HOSTILE_ENV_NAMES)))
@pytest.mark.parametrize("launcher", ["process", "docker"])
def test_every_renderer_refuses_a_hostile_env_name(launcher: str, name: str) -> None:
    """launch.sh, aim.env and compose.yaml (``render``) and, for a container, the Kubernetes
    manifests (``render_k8s``) refuse a plan whose env name is not a variable name, even
    one that did not come through :func:`aimc.plan.resolve.make_plan`."""
    plan = plan_with_env(launcher, name)
    with pytest.raises(ConfigError, match="is not a variable name"):
        render(plan, "test")
    if launcher == "docker":
        with pytest.raises(ConfigError, match="is not a variable name"):
            render_k8s(plan, "test")


def test_a_valid_env_name_renders_everywhere() -> None:
    """The refusals above are about the name: the same plan with a valid one renders."""
    for launcher in ("process", "docker"):
        plan = plan_with_env(launcher, "AIM_OK")
        files = render(plan, "test")
        assert "export AIM_OK=1" in files["launch.sh"]
        assert "AIM_OK=1" in files["aim.env"].splitlines()
    assert "AIM_OK" in render_k8s(plan, "test")["deployment.yaml"]


def test_compile_refuses_a_hostile_env_name_from_every_source(cli, tmp_path: Path) -> None:
    """--set, --config and a recipe file: refused (exit 2), no folder written."""
    from ruamel.yaml import YAML

    yaml = YAML()
    recipe = yaml.load((ROOT / "recipes/models/Qwen/Qwen3-8B.yaml").read_text())
    recipe["defaults"]["env"] = {"A\n": "x"}
    (tmp_path / "r" / "models" / "Qwen").mkdir(parents=True)
    with (tmp_path / "r" / "models" / "Qwen" / "Qwen3-8B.yaml").open("w") as f:
        yaml.dump(recipe, f)
    (tmp_path / "config.json").write_text(json.dumps({"env": {"A;touch PWNED;B": "x"}}))
    base = ("compile", "Qwen/Qwen3-8B", "--target", "h100")
    for extra in (
        ("--set", "env.A;touch PWNED;B=x"),
        ("--config", "config.json"),
        ("--recipes", "r"),
        ("--config", "config.json", "--emit", "k8s", "--launcher", "docker"),
    ):
        out = tmp_path / "out"
        result = cli(*base, *extra, "-o", str(out), cwd=tmp_path)
        assert result.code == 2, (extra, result.err)
        assert "Traceback" not in result.err
        assert not out.exists()
    assert not list(tmp_path.rglob("PWNED"))
