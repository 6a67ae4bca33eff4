"""Nothing a user writes runs: hostile text in an env name, a ``--set`` value, a recipe or
model path or an image is refused (exit 2, one line, nothing written) or written as data.

Each test feeds one way in and checks what the compiled folder does: launch.sh is run with a
recording stand-in for Python (``_run_launch``), aim.env is sourced in a clean shell
(``_source_env``), and vllm.yaml and compose.yaml are parsed; each must run or set exactly
what was planned, and no ``touch PWNED`` ever runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.core.errors import ConfigError
from aimc.core.write import write_artifacts
from aimc.emit.emitters import compile_plan
from aimc.emit.render import render, server_argv
from aimc.plan.model import Plan
from aimc.plan.request import Request
from tests.conftest import ROOT

RECORDER = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["RECORD"], "w") as f:
    json.dump({"argv": sys.argv[1:], "env": dict(os.environ)}, f)
"""


SHIPPED = ROOT / "recipes" / "models" / "Qwen" / "Qwen3-8B.yaml"


def _yaml(text: str) -> object:
    return YAML(typ="safe", pure=True).load(text)


def _sandbox_files(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


def _run_launch(folder: Path, sandbox: Path) -> dict:
    """Run ``launch.sh`` with a recording stand-in for Python; returns what it saw."""
    python = sandbox / "fake-python"
    python.write_text(RECORDER)
    python.chmod(0o755)
    record = sandbox / "record.json"
    env = {
        "PATH": os.environ["PATH"],
        "AIM_PYTHON": str(python),
        "RECORD": str(record),
        "CACHE_DIR": str(sandbox / "cache"),
    }
    result = subprocess.run(
        ["bash", str(folder / "launch.sh")],
        env=env,
        cwd=sandbox,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    seen: dict = json.loads(record.read_text())
    return seen


def _source_env(folder: Path, sandbox: Path) -> dict[str, str]:
    """``set -a; . aim.env`` in a clean shell; the variables it exported."""
    script = 'set -a; . "$1"; set +a; env -0'
    out = subprocess.run(
        ["env", "-i", "PATH=/usr/bin:/bin", "bash", "-c", script, "_", str(folder / "aim.env")],
        cwd=sandbox,
        capture_output=True,
        timeout=30,
        check=True,
    ).stdout.decode()
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)


HOSTILE_ENV_NAMES = [
    "X;touch${IFS}PWNED;Y",
    "`touch PWNED`",
    "$(touch PWNED)",
    "A\ntouch PWNED\nB",
    "A B",
    "1X",
    "X-Y",
]


@pytest.mark.parametrize("name", HOSTILE_ENV_NAMES, ids=range(len(HOSTILE_ENV_NAMES)))
def test_hostile_env_names_are_refused(cli, tmp_path: Path, name: str) -> None:
    """Failed before: the name went unquoted into ``export NAME=...`` and ``aim.env``."""
    out = tmp_path / "build"
    args = ("compile", "Qwen/Qwen3-8B", "--target", "h100", "-o", str(out))
    result = cli(*args, "--set", f"env.{name}=1", cwd=tmp_path)
    assert result.code == 2, result.err
    assert "is not a valid key here" in result.err
    assert "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not out.exists()
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("image=--privileged", "is not valid here"),
        ("image=Registry/Upper:1", "is not valid here"),
        ("image=a$b", "is not valid here"),
        ("host=0.0.0.0 --privileged", "is not valid here"),
        ("chat-template=--trust-remote-code", "would read it as another flag"),
        ("tool-call-parser=-x", "would read it as another flag"),
    ],
)
def test_set_checks_images_hosts_and_flag_like_values(cli, item: str, message: str) -> None:
    """Failed before: ``--set image=--privileged`` became a ``docker run`` option and
    ``--set`` skipped the checks ``--config`` applies."""
    result = cli("compile", "Qwen/Qwen3-8B", "--target", "mi300x", "--set", item)
    assert result.code == 2
    assert message in result.err


def _user_recipes(parent: Path, dirname: str) -> Path:
    root = parent / dirname
    (root / "models" / "Qwen").mkdir(parents=True)
    shutil.copy(SHIPPED, root / "models" / "Qwen" / "Qwen3-8B.yaml")
    return root


EVIL_DIR = "r\ntrust-remote-code: true\ntouch PWNED\n#"


@pytest.mark.parametrize("how", ["--recipes", "AIMC_RECIPES"])
def test_a_newline_in_a_recipe_path_stays_in_the_comment(cli, tmp_path: Path, how: str) -> None:
    """Failed before: the provenance header printed the recipe path raw: a newline in it
    became a shell line in launch.sh and a key in vllm.yaml."""
    # $AIMC_RECIPES is split at ':', so its hostile folder name has none.
    recipes = _user_recipes(tmp_path, EVIL_DIR if how == "--recipes" else "r\ntouch PWNED\n#")
    out = tmp_path / "build"
    args = ["compile", "Qwen/Qwen3-8B", "--target", "h100", "--launcher", "process", "-o", str(out)]
    if how == "--recipes":
        result = cli(*args, "--recipes", str(recipes), cwd=tmp_path)
    else:
        result = cli(*args, env={"AIMC_RECIPES": str(recipes)}, cwd=tmp_path)
    assert result.code == 0, result.err
    assert f"({how})" in (out / "launch.sh").read_text()  # the user's recipe was used
    assert "trust-remote-code" not in _yaml((out / "vllm.yaml").read_text())  # type: ignore[operator]
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    seen = _run_launch(out, sandbox)
    assert "--trust-remote-code" not in seen["argv"]
    _source_env(out, sandbox)
    assert not list(tmp_path.rglob("PWNED"))


def test_a_newline_in_a_local_models_parent_stays_in_the_comment(cli, tmp_path: Path) -> None:
    """Failed before: a local model folder's path reached the header raw."""
    folder = tmp_path / EVIL_DIR / "tiny"
    folder.mkdir(parents=True)
    config = {
        "architectures": ["LlamaForCausalLM"],
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "max_position_embeddings": 512,
        "vocab_size": 256,
        "torch_dtype": "float32",
    }
    (folder / "config.json").write_text(json.dumps(config))
    out = tmp_path / "build"
    result = cli("compile", str(folder), "--target", "cpu", "-o", str(out), cwd=tmp_path)
    assert result.code == 0, result.err
    native = _yaml((out / "vllm.yaml").read_text())
    assert "trust-remote-code" not in native  # type: ignore[operator]
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    seen = _run_launch(out, sandbox)
    assert str(folder) in seen["argv"]
    assert not list(tmp_path.rglob("PWNED"))


def test_compose_escapes_a_dollar_in_the_image() -> None:
    """Failed before: compose.yaml's ``image:`` was the one string not ``$$``-escaped."""
    request = Request(model="Qwen/Qwen3-8B")
    plan = make_plan(Catalog.default(), request, "h100")
    hostile = dataclasses.replace(plan, image="vllm/vllm-openai:${TAG}")
    compose = _yaml(render(hostile, "x")["compose.yaml"])
    assert compose["services"]["server"]["image"] == "vllm/vllm-openai:$${TAG}"  # type: ignore[index]


HOSTILE_TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["$(touch PWNED)", "`touch PWNED`", "a;touch PWNED", "a\ntouch PWNED",
                     "${IFS}", "--privileged", "'", '"', "\\", "a: b", "- x", "{x: 1}", "&a",
                     "*a", "!!python/object:os.system", "#", "\r", "\x85", "\u2028"]),
)  # fmt: skip


FIELDS = st.sampled_from(
    ["env-name", "env-value", "chat-template", "served_model_name", "image", "host",
     "context_length", "memory_utilization", "tool-call-parser"]
)  # fmt: skip


def _set_item(field: str, text: str) -> str:
    if field == "env-name":
        return f"env.{text}=1"
    if field == "env-value":
        return f"env.AIM_X={text}"
    return f"{field}={text}"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(FIELDS, HOSTILE_TEXT, st.sampled_from(["process", "docker"]))
def test_hostile_values_in_every_field_never_run(field: str, text: str, launcher: str) -> None:
    """Any text in any writable field: refused with a ConfigError, or written so that
    launch.sh runs only the server with exactly the planned argv, aim.env sourced sets
    exactly the planned variables, and every YAML file parses to exactly the planned keys."""
    request = Request(model="Qwen/Qwen3-8B", launcher=launcher, sets=(_set_item(field, text),))
    try:
        plan = make_plan(Catalog.default(), request, "mi300x")
        files = compile_plan(plan, request, "mi300x").files
    except ConfigError:
        return
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        out, sandbox = base / "out", base / "sandbox"
        sandbox.mkdir()
        write_artifacts(out, files)
        expected_env = {name: str(s.value) for name, s in plan.env.items()}
        sourced = _source_env(out, sandbox)
        assert {k: sourced.get(k) for k in expected_env} == expected_env
        assert set(sourced) - set(expected_env) <= {"PATH", "PWD", "SHLVL", "_", "OLDPWD"}
        native = _yaml(files["vllm.yaml"])
        assert set(native) == {"model", *plan.args}  # type: ignore[arg-type]
        if plan.launcher == "process":
            seen = _run_launch(out, sandbox)
            assert seen["argv"] == plan.command + server_argv(plan)
        else:
            compose = _yaml(files["compose.yaml"])
            assert set(compose) == {"services"}  # type: ignore[arg-type]
            service = compose["services"]["server"]  # type: ignore[index]
            assert service["image"] == plan.image
            unescaped = [w.replace("$$", "$") for w in service["command"]]
            assert unescaped == plan.command + server_argv(plan)
        assert _sandbox_files(sandbox) <= {"fake-python", "record.json", "cache"}


def test_plan_json_keeps_hostile_text_as_data() -> None:
    """A plan read back from a manifest holds the same strings (no re-typing)."""
    request = Request(model="Qwen/Qwen3-8B", sets=("chat-template=$(touch PWNED)\n#",))
    plan = make_plan(Catalog.default(), request, "h100")
    assert Plan.from_json(json.loads(json.dumps(plan.to_json()))) == plan


def test_a_model_folder_docker_cannot_mount_is_refused(cli, tmp_path: Path) -> None:
    """Failed before: ``-v a:b/m:/models/m:ro`` was written, which docker splits at ':'."""
    folder = tmp_path / "a:b" / "m"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(
        json.dumps({"num_attention_heads": 2, "hidden_size": 64, "num_hidden_layers": 2})
    )
    args = ("compile", str(folder), "--target", "cpu", "--launcher", "docker")
    result = cli(*args, "--set", "image=vllm/vllm-openai:v0.32.0", "-o", str(tmp_path / "o"))
    assert result.code == 2
    assert "cannot be mounted into a container" in result.err
    assert not (tmp_path / "o").exists()
