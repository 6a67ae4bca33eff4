"""Selection policy: smallest fitting GPU count, precision order, --optimize, and refusals
with numbers."""

from __future__ import annotations

import json

import pytest

from aimc.catalog import Catalog
from aimc.errors import ConfigError
from aimc.policy import resolve
from aimc.resolve import Request

CATALOG = Catalog.default()
LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"


def plan(model: str, target: str, **kw):
    return resolve(CATALOG.recipe(model), CATALOG.hardware(target), Request(model=model, **kw))


def test_smallest_gpu_count_that_fits_at_the_recipe_context() -> None:
    p = plan(LLAMA_70B, "h100")
    assert (p.precision, p.gpus) == ("bf16", 4)
    assert "2 GPUs: low-memory" in p.decisions[1]
    assert plan(LLAMA_70B, "mi300x").gpus == 1


def test_lower_precision_when_the_preferred_one_does_not_fit_the_machine() -> None:
    p = plan(LLAMA_70B, "h100", available_gpus=2)
    assert (p.precision, p.gpus) == ("fp8", 2)
    assert p.decisions[0].startswith("precision bf16 skipped: on 2 GPUs 32768 tokens need")
    assert p.decisions[1].startswith("precision fp8: the highest-quality precision that fits")


def test_a_shorter_context_makes_it_fit() -> None:
    p = plan(LLAMA_70B, "h100", available_gpus=2, precision="bf16", sets=("context_length=16384",))
    assert (p.gpus, p.arg("max-model-len")) == (2, 16384)


def test_explicit_request_that_cannot_fit_is_refused_with_numbers(cli, tmp_path) -> None:
    result = cli(
        "compile",
        LLAMA_70B,
        "2",
        "--target",
        "h100",
        "--precision",
        "bf16",
        "-o",
        str(tmp_path / "o"),
    )
    assert result.code == 2
    assert (
        "cannot run: 32768 tokens need 74.8 GiB per GPU, 72.9 usable; fits with "
        "--max-model-len 19456" in result.err
    )
    assert (
        "hint: vllm bf16 on 2 GPUs fits 19456 tokens: add --set context_length=19456" in result.err
    )
    assert not (tmp_path / "o").exists()


def test_nothing_fits_lists_what_would(cli) -> None:
    with pytest.raises(ConfigError) as info:
        plan(LLAMA_70B, "h100", available_gpus=2, precision="bf16")
    assert (
        "no configuration of meta-llama/Llama-3.1-70B-Instruct fits h100 for bf16"
        in info.value.message
    )
    assert "--set context_length=" in (info.value.hint or "")


def test_optimize_latency_takes_the_most_gpus() -> None:
    p = plan("Qwen/Qwen3-8B", "mi300x", optimize="latency")
    assert p.gpus == 8 and p.data_parallel == 1
    assert any("--optimize latency" in d for d in p.decisions)


def test_optimize_throughput_adds_data_parallel_replicas() -> None:
    p = plan("Qwen/Qwen3-8B", "h100", optimize="throughput")
    assert (p.gpus, p.data_parallel, p.total_gpus) == (1, 8, 8)
    assert p.arg("data-parallel-size") == 8
    p2 = plan(LLAMA_70B, "h100", optimize="throughput", available_gpus=8)
    assert (p2.gpus, p2.data_parallel) == (4, 2)


def test_throughput_renders_all_gpus_for_the_container(cli) -> None:
    out = cli(
        "show-config",
        "Qwen/Qwen3-8B",
        "--target",
        "h100",
        "--optimize",
        "throughput",
        "--format",
        "json",
    ).out
    data = json.loads(out)["plan"]
    assert data["data_parallel"] == 8
    assert data["args"]["data-parallel-size"]["source"] == "--optimize throughput"


def test_list_configs_with_target_shows_memory_and_verdicts(cli) -> None:
    result = cli("list", "configs", LLAMA_70B, "--target", "h100", "--format", "json")
    rows = json.loads(result.out)
    verdicts = {(r["precision"], r["gpus"]): r["verdict"] for r in rows}
    assert verdicts[("bf16", 2)] == "low-memory" and verdicts[("bf16", 4)] == "runnable"
    row = next(r for r in rows if (r["precision"], r["gpus"]) == ("bf16", 2))
    assert row["weights_gib"] == pytest.approx(65.7, abs=0.1)
    assert row["budget_gib"] == pytest.approx(72.85, abs=0.01)


def test_explain_table_has_the_candidates_with_reasons(cli) -> None:
    result = cli("show-config", LLAMA_70B, "--target", "h100", "--explain")
    assert (
        "configurations of meta-llama/Llama-3.1-70B-Instruct on h100 (GiB per GPU):" in result.out
    )
    assert "fits with --max-model-len 19456" in result.out
    assert "memory:         runnable: needs" in result.out
