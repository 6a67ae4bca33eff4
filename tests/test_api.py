"""The AIM Engine Python API as its reference uses it (``from aim_launcher import ...``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from aim_launcher import AIMConfigGenerator, AIMDockerManager, AIMEngine, AIMRecipeSelector
from aimc.runner import load_records, stop_record
from tests.conftest import ROOT
from tests.test_runner import FAKE, free_port

EXAMPLES = ROOT / "examples" / "recipes"


@pytest.fixture
def fake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    python = tmp_path / "fake-python"
    python.write_text(f'#!/bin/bash\nexec {sys.executable} {FAKE} "$@"\n')
    python.chmod(0o755)
    monkeypatch.setenv("AIM_PYTHON", str(python))
    monkeypatch.setenv("AIMC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FAKE_MODE", "ready")
    yield
    for record in load_records():
        stop_record(record)


def test_list_models() -> None:
    models = AIMEngine(cache_dir=None).list_models()
    assert {"Qwen/Qwen3-32B", "openai/gpt-oss-20b"} <= {m["model"] for m in models}


def test_optimal_configuration() -> None:
    selector = AIMRecipeSelector(target="mi300x")
    plan = selector.get_optimal_configuration("Qwen/Qwen3-32B", customer_gpu_count=8)
    assert plan is not None
    assert (plan["gpus"], plan["precision"], plan["backend"]) == (8, "bf16", "vllm")
    fp8 = selector.get_optimal_configuration("Qwen/Qwen3-32B", customer_precision="fp8")
    assert fp8 is not None and fp8["model_source"] == "Qwen/Qwen3-32B-FP8"
    assert selector.get_optimal_configuration("Qwen/Qwen3-32B", customer_gpu_count=3) is None
    assert selector._detect_vllm_gpus() == 0  # this machine has no GPU


def test_generate_config_from_a_recipe_dict() -> None:
    from ruamel.yaml import YAML

    recipe = YAML(typ="safe").load((ROOT / "recipes/models/Qwen/Qwen3-8B.yaml").read_text())
    config = AIMConfigGenerator(target="h100").generate_config(recipe, 2)
    assert config is not None
    assert config["command"][:3] == ["Qwen/Qwen3-8B", "--tensor-parallel-size", "2"]
    assert {"launch.sh", "manifest.json", "aim.env"} <= set(config["files"])
    assert AIMConfigGenerator(target="h100").generate_config(recipe, 3) is None
    assert AIMConfigGenerator(target="h100").generate_config({"kind": "Recipe"}, 1) is None


def test_launch_model_success_and_error_responses(fake_env) -> None:
    engine = AIMEngine(target="cpu", recipe_dirs=[EXAMPLES])
    port = free_port()
    result = engine.launch_model("aimc-examples/tiny-llama", port=port, timeout=60)
    assert result["success"] is True, result
    assert result["data"]["endpoint_url"] == f"http://localhost:{port}"
    assert result["data"]["status"] == "running"
    missing = engine.launch_model("no-such/model")
    assert missing["success"] is False
    assert missing["error"]["code"] == "CONFIGURATION_ERROR"
    assert missing["timestamp"].endswith("Z")


def test_run_command_directly(fake_env) -> None:
    import json

    from ruamel.yaml import YAML

    recipe = YAML(typ="safe").load((EXAMPLES / "models/aimc-examples/tiny-llama.yaml").read_text())
    recipe["weights"]["fp32"]["path"] = str(ROOT / "examples/models/tiny-llama")
    port = free_port()
    config = AIMConfigGenerator(target="cpu").generate_config(recipe, 1, port=port)
    assert config is not None
    assert json.loads(config["files"]["manifest.json"])["plan"]["port"] == port
    result = AIMDockerManager().run_command_directly(config, "aim-api-test", 1, timeout=60)
    assert result["success"] is True, result
    assert result["data"]["container_name"] == "aim-api-test"
    wrong = AIMDockerManager().run_command_directly(config, "aim-api-test-2", 2)
    assert wrong["success"] is False


def _tiny_recipe() -> dict:
    from ruamel.yaml import YAML

    recipe = YAML(typ="safe").load((EXAMPLES / "models/aimc-examples/tiny-llama.yaml").read_text())
    recipe["weights"]["fp32"]["path"] = str(ROOT / "examples/models/tiny-llama")
    return dict(recipe)


@pytest.mark.parametrize("name", ["../escape", "a/b", "UPPER", ""])
def test_run_command_directly_refuses_a_name_that_is_a_path(
    fake_env, tmp_path: Path, name: str
) -> None:
    """Before issue 9 the container name was joined into a path: ``../escape`` wrote the
    artifacts outside the state folder."""
    config = AIMConfigGenerator(target="cpu").generate_config(_tiny_recipe(), 1, port=free_port())
    assert config is not None
    result = AIMDockerManager().run_command_directly(config, name, 1, timeout=10)
    assert result["success"] is False
    assert result["error"]["code"] == "CONFIGURATION_ERROR"
    assert not (tmp_path / "state" / "escape").exists()
    assert not list(tmp_path.rglob("manifest.json"))


def test_a_long_model_name_still_gives_a_valid_run_name() -> None:
    """Run names are at most 63 characters; the plan's default name is cut to fit."""
    import json

    from aimc.runner import validate_name

    recipe = _tiny_recipe()
    recipe["model"]["id"] = "org/" + "very-long-model-name-" * 5
    config = AIMConfigGenerator(target="cpu").generate_config(recipe, 1)
    assert config is not None
    name = json.loads(config["files"]["manifest.json"])["plan"]["name"]
    assert len(name) <= 63
    assert validate_name(name) == name


def test_run_command_directly_runs_a_command_configuration(fake_env, tmp_path: Path) -> None:
    """Before issue 11 ``{"command": [...]}`` raised KeyError: 'files'."""
    port = free_port()
    marker = tmp_path / "env-seen"
    config = {
        "command": [sys.executable, str(FAKE), "--port", str(port), "--served-model-name", "m"],
        "port": port,
        "env": {"FAKE_PIDS": str(marker)},
        "model": "m",
    }
    result = AIMDockerManager().run_command_directly(config, "aim-command-test", 1, timeout=60)
    assert result["success"] is True, result
    assert result["data"]["endpoint_url"] == f"http://localhost:{port}"
    assert marker.exists()  # the env reached the process
    (record,) = [r for r in load_records() if r.name == "aim-command-test"]
    assert record.port == port
    assert Path(record.folder, "launch.sh").read_text().rstrip().endswith("--served-model-name m")


def test_run_command_directly_refuses_what_is_not_a_command(fake_env) -> None:
    for config in ({}, {"command": []}, {"command": "python3 -m x"}, {"command": ["a\0b"]}):
        result = AIMDockerManager().run_command_directly(config, "aim-bad", 1, timeout=5)
        assert result["success"] is False
        assert result["error"]["code"] == "CONFIGURATION_ERROR"


def test_get_optimal_configuration_is_none_without_gpus() -> None:
    """Before issue 11 it raised GPUDetectionError on a machine without GPUs."""
    selector = AIMRecipeSelector(target="auto")
    assert selector.get_optimal_configuration("Qwen/Qwen3-32B", customer_gpu_count=8) is None


def test_list_models_honours_its_format() -> None:
    """Before issue 11 ``format`` was ignored."""
    engine = AIMEngine()
    table = engine.list_models(format="table")
    full = engine.list_models(format="json")
    assert [r["model"] for r in table] == [r["model"] for r in full]
    assert set(table[0]) < set(full[0])
    with pytest.raises(ValueError, match="format"):
        engine.list_models(format="xml")


def test_launch_model_without_gpus_is_a_detection_error_response(fake_env) -> None:
    """Failed before issue 20: with no GPU and no GPU count, ``target="auto"`` served a
    model with a cpu configuration on the CPU without a word (this machine has no GPU)."""
    engine = AIMEngine(recipe_dirs=[EXAMPLES])
    result = engine.launch_model("aimc-examples/tiny-llama", port=free_port(), timeout=30)
    assert result["success"] is False, result
    assert result["error"]["code"] == "GPU_DETECTION_FAILED"
    assert result["error"]["message"].startswith("no GPU detected")
    assert not load_records()
    selector = AIMRecipeSelector(recipe_dirs=[EXAMPLES])
    assert selector.get_optimal_configuration("aimc-examples/tiny-llama") is None
