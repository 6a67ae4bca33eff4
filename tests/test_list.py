"""`aim-engine list models|recipes|configs` in every format."""

from __future__ import annotations

import json
from pathlib import Path

from ruamel.yaml import YAML

from tests.conftest import ROOT

SHIPPED_IDS = sorted(
    p.relative_to(ROOT / "recipes/models").with_suffix("").as_posix()
    for p in (ROOT / "recipes/models").rglob("*.yaml")
)


def test_list_models_json_lists_every_shipped_recipe(cli) -> None:
    result = cli("list", "models", "--format", "json")
    assert result.code == 0
    rows = json.loads(result.out)["data"]
    assert [r["model"] for r in rows] == SHIPPED_IDS
    assert len(rows) >= 10
    qwen = next(r for r in rows if r["model"] == "Qwen/Qwen3-32B")
    assert qwen["weights"] == {
        "bf16": "Qwen/Qwen3-32B",
        "fp8": "Qwen/Qwen3-32B-FP8",
        "int4": "Qwen/Qwen3-32B-AWQ",
    }
    assert "mi300x" in qwen["hardware"] and "h100" in qwen["hardware"]


def test_list_models_table_has_a_header_and_a_row_per_model(cli) -> None:
    result = cli("list", "models")
    lines = result.out.splitlines()
    assert lines[0].split()[:2] == ["MODEL", "PRECISIONS"]
    assert len(lines) == 1 + len(SHIPPED_IDS)


def test_filter_is_case_insensitive(cli) -> None:
    rows = json.loads(cli("list", "recipes", "--filter", "QWEN", "--format", "json").out)["data"]
    assert rows and all("qwen" in r["model"].lower() for r in rows)
    assert all(Path(r["path"]).is_file() and len(r["sha256"]) == 64 for r in rows)


def test_list_configs_yaml(cli) -> None:
    result = cli("list", "configs", "openai/gpt-oss-20b", "--format", "yaml")
    assert result.code == 0
    rows = YAML(typ="safe").load(result.out)
    assert {r["config"] for r in rows} == {"amd-vllm", "nvidia-vllm"}
    assert all(r["precision"] == ["mxfp4"] for r in rows)


def test_list_configs_of_a_model_by_case_insensitive_id(cli) -> None:
    rows = json.loads(cli("list", "configs", "qwen/qwen3-8b", "--format", "json").out)["data"]
    assert {r["model"] for r in rows} == {"Qwen/Qwen3-8B"}


def test_unknown_model_suggests_a_close_one(cli) -> None:
    result = cli("list", "configs", "Qwen/Qwen3-33B")
    assert result.code == 2
    assert "error: no recipe for model 'Qwen/Qwen3-33B'" in result.err
    assert "did you mean 'Qwen/Qwen3-32B'" in result.err


def test_unknown_type_is_a_usage_error(cli) -> None:
    result = cli("list", "modelz")
    assert result.code == 2
    assert "'modelz' is not one of" in result.err


def test_unknown_command_suggests_one(cli) -> None:
    result = cli("validat")
    assert result.code == 2
    assert "Did you mean 'validate'?" in result.err
