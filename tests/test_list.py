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


# --- list configs as launch and show-config read a model -----------------------------------


def _model_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    config = {
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 4096,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "num_hidden_layers": 32,
        "max_position_embeddings": 8192,
        "torch_dtype": "bfloat16",
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_list_configs_takes_a_local_model_folder(cli, tmp_path: Path) -> None:
    """Failed before: 'no recipe for model' (exit 2), where launch and show-config
    serve the folder."""
    folder = _model_folder(tmp_path / "my-model")
    env = {"CACHE_DIR": str(tmp_path / "cache"), "AIMC_STATE_DIR": str(tmp_path / "state")}
    listed = cli("list", "configs", str(folder), "--target", "h100", "--format", "json", env=env)
    assert listed.code == 0, listed.err
    rows = json.loads(listed.out)["data"]
    shown = cli("show-config", str(folder), "--target", "h100", "--format", "json", env=env)
    candidates = json.loads(shown.out)["data"]["candidates"]
    assert [(r["config"], r["gpus"], r["verdict"]) for r in rows] == [
        (c["config"], c["gpus"], c["verdict"]) for c in candidates
    ]
    assert {r["model"] for r in rows} == {"local/my-model"} and len(rows) == 4


def _bench_line(config: str, gpus: int, tokens: float, version: str, hashed: str) -> str:
    key = {
        "model": "Qwen/Qwen3-8B",
        "target": "h100",
        "configuration": config,
        "precision": "bf16",
        "gpus": gpus,
        "data_parallel": 1,
        "backend": "vllm",
        "backend_version": version,
        "args_hash": hashed,
    }
    figures = {
        "output_tokens_per_s": tokens,
        "request_throughput": 1.0,
        "ttft_ms": {"p50": 10.0, "p95": 20.0},
        "itl_ms": {"p50": 1.0, "p95": 2.0},
    }
    return json.dumps(
        {"version": 1, "time": "2026-12-01T00:00:00Z", "key": key, "figures": figures}
    )


def test_list_configs_shows_only_measurements_of_what_the_configuration_serves(
    cli, tmp_path: Path
) -> None:
    """Failed before: list configs showed the newest figures of a configuration
    whatever backend release or engine arguments they were measured with, where
    --optimize (rightly) ignores them."""
    from aimc.plan.measured import args_hash

    env = {"CACHE_DIR": str(tmp_path / "cache"), "AIMC_STATE_DIR": str(tmp_path / "state")}

    def plan(gpus: int) -> dict:
        shown = cli("show-config", "Qwen/Qwen3-8B", "--target", "h100", "--gpu-count",
                    str(gpus), "--backend", "vllm", "--precision", "bf16", "--format", "json",
                    env=env)  # fmt: skip
        return json.loads(shown.out)["data"]["plan"]

    one, two = plan(1), plan(2)
    hash1 = args_hash({k: v["value"] for k, v in one["args"].items()})
    hash2 = args_hash({k: v["value"] for k, v in two["args"].items()})
    assert hash1 != hash2 and one["configuration"] == two["configuration"]
    config, version = one["configuration"], one["backend_version"]
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "bench.jsonl").write_text(
        "\n".join(
            [
                _bench_line(config, 1, 111.0, "0.0.1", hash1),  # another release
                _bench_line(config, 1, 222.0, version, "0" * 16),  # other engine arguments
                _bench_line(config, 2, 333.0, version, hash2),  # what tp2 serves
            ]
        )
        + "\n"
    )
    listed = cli("list", "configs", "Qwen/Qwen3-8B", "--target", "h100", "--format", "json",
                 env=env)  # fmt: skip
    rows = {(r["config"], r["precision"], r["gpus"]): r for r in json.loads(listed.out)["data"]}
    assert rows[(config, "bf16", 1)]["tokens_per_s"] is None
    assert rows[(config, "bf16", 1)]["measured"] is None
    assert rows[(config, "bf16", 2)]["tokens_per_s"] == 333.0
    assert rows[(config, "bf16", 2)]["measured"].startswith(str(tmp_path / "state"))
