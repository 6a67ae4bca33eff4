"""Selection policy: smallest fitting GPU count, precision order, --optimize, and refusals
with numbers."""

from __future__ import annotations

import json

import pytest

from aimc.check.catalog import Catalog
from aimc.core.errors import ConfigError
from aimc.plan.policy import Pool, resolve, shortfall
from aimc.plan.request import Request

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
    p = plan(LLAMA_70B, "h100", available_gpus=2, precision="bf16", sets=("context_length=4096",))
    assert (p.gpus, p.arg("max-model-len")) == (2, 4096)


def test_explicit_request_that_cannot_fit_is_refused_with_numbers(cli, tmp_path) -> None:
    result = cli(
        "compile",
        LLAMA_70B,
        "2",
        "--target",
        "h100",
        "--precision",
        "bf16",
        "--set",
        "context_length=32768",  # above the 7k this configuration is marked low_memory for
        "-o",
        str(tmp_path / "o"),
    )
    assert result.code == 2
    assert (
        "cannot run: 2 x h100 would need 76.6 GiB per GPU for 32768 tokens, has 72.9 "
        "(79.19 x 0.92); fits with --max-model-len 7168" in result.err
    )
    assert (
        "hint: vllm bf16 on 2 GPUs fits 7168 tokens: add --set context_length=7168; "
        "runnable on h100 at 32768 tokens: vllm bf16 on 4,8 GPUs; vllm fp8 on 2,4,8 GPUs"
        in result.err
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
    data = json.loads(out)["data"]["plan"]
    assert data["data_parallel"] == 8
    assert data["args"]["data-parallel-size"]["source"] == "--optimize throughput"


def test_list_configs_with_target_shows_memory_and_verdicts(cli) -> None:
    result = cli("list", "configs", LLAMA_70B, "--target", "h100", "--format", "json")
    rows = json.loads(result.out)["data"]
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
    assert "fits with --max-model-len 7168" in result.out
    assert "memory:         runnable: needs" in result.out


# --- issue 11: refusals with the numbers, this machine's free GPUs ------------------------


def test_a_count_the_recipe_does_not_offer_is_refused_with_the_numbers(cli, tmp_path) -> None:
    """Written to fail before issue 11: 'no configuration ... for bf16, 1 GPU' said nothing
    of memory, nor which counts fit."""
    args = ("compile", LLAMA_70B, "1", "--target", "h100", "--precision", "bf16")
    result = cli(*args, "-o", str(tmp_path / "o"))
    assert result.code == 2
    (error, hint) = result.err.splitlines()
    assert error.startswith(
        f"error: no configuration of {LLAMA_70B} on h100 for bf16, 1 GPU: 1 x h100 would need "
    )
    assert "GiB per GPU for 32768 tokens, has 72.9 (79.19 x 0.92); the weights alone" in error
    assert hint.startswith("hint: available on h100: vllm bf16 on 2,4,8 GPUs")
    assert "; runnable at 32768 tokens: vllm bf16 on 4,8 GPUs; vllm fp8 on 2,4,8 GPUs" in hint


@pytest.mark.parametrize(
    ("gpus", "why"),
    [
        (3, "tensor parallelism 3 does not divide the 64 attention heads"),
        (16, "h100 nodes have 8 GPUs"),
    ],
)
def test_impossible_counts_say_why(gpus: int, why: str) -> None:
    """Written to fail before issue 11: only 'no configuration ... for N GPUs'."""
    with pytest.raises(ConfigError) as info:
        plan("Qwen/Qwen3-32B", "h100", gpus=gpus)
    assert info.value.message.endswith(f"for {gpus} GPUs: {why}")
    assert "(all runnable at 32768 tokens)" in (info.value.hint or "")


def test_an_unoffered_count_that_would_fit_says_so() -> None:
    """Written to fail before issue 11: no estimate for a count the recipe leaves out."""
    with pytest.raises(ConfigError) as info:
        plan("Qwen/Qwen3-32B", "h100", gpus=1, precision="bf16", sets=("context_length=16384",))
    assert "the recipe does not offer it (by the estimate it would fit: needs " in (
        info.value.message
    )


def test_nothing_fitting_the_machine_gives_the_closest_numbers() -> None:
    """Written to fail before issue 11: the message had no numbers with several counts."""
    with pytest.raises(ConfigError) as info:
        plan(LLAMA_70B, "h100", available_gpus=2, precision="bf16")
    assert info.value.message.endswith(
        "fits h100 for bf16: 2 x h100 would need 76.6 GiB per GPU for 32768 tokens, has 72.9 "
        "(79.19 x 0.92); fits with --max-model-len 7168"
    )


def test_shortfall_wording() -> None:
    """Written to fail before issue 11 (shortfall is new): the one way numbers are given."""
    hw = CATALOG.hardware("h100")
    est = {
        "need_gib": 141.23,
        "budget_gib": 72.85,
        "context_length": 32768,
        "verdict": "incompatible",
        "max_context": 0,
        "weights_gib": 131.4,
        "overhead_gib": 2.2,
    }
    assert shortfall(est, 1, hw) == (
        "1 x h100 would need 141.2 GiB per GPU for 32768 tokens, has 72.9 (79.19 x 0.92); "
        "the weights alone take 131.4 GiB per GPU (+ 2.2 overhead)"
    )


def _auto(model: str, target: str, free: tuple[int, ...], busy: tuple[int, ...] = (), **kw):
    """``model`` on this machine: ``free`` and ``busy`` GPUs (device ids), as
    :func:`aimc.app.pipeline.for_target` hands them to the policy."""
    lines = tuple(f"GPU {i} (1.2 of 79.6 GiB free)" for i in busy)
    visible = len(free) + len(busy)
    request = Request(model=model, available_gpus=visible, devices=free, **kw)
    pool = Pool(free, visible, lines)
    return resolve(CATALOG.recipe(model), CATALOG.hardware(target), request, pool)


def test_this_machine_fills_its_free_gpus() -> None:
    """Written to fail before issue 11: resolve had no notion of this machine's GPUs."""
    p = _auto("Qwen/Qwen3-32B", "h100", tuple(range(8)))
    assert (p.gpus, p.data_parallel, p.devices) == (8, 1, list(range(8)))
    assert p.decisions[-2].startswith("8 GPUs: the 8 GPUs of --devices 0,1,2,3,4,5,6,7 in one")


def test_five_free_gpus_leave_one_idle_and_say_so() -> None:
    """Written to fail before issue 11: busy GPUs were counted, and idle ones unmentioned.
    Since issue 20 the plan names the four it uses (the busy ones are the target's notes)."""
    p = _auto("Qwen/Qwen3-32B", "h100", (0, 1, 2, 3, 4), busy=(5, 6, 7))
    assert (p.gpus, p.data_parallel, p.total_gpus) == (2, 2, 4)
    assert p.devices == [0, 1, 2, 3]
    assert not [d for d in p.decisions if "busy" in d]
    fill = next(d for d in p.decisions if "data-parallel replicas" in d)
    assert fill.startswith(
        "2 GPUs x 2 data-parallel replicas on the 5 GPUs of --devices 0,1,2,3,4: the recipe "
    )
    assert "; 1 GPU left idle;" in fill


def test_one_free_gpu_takes_a_precision_that_fits_one() -> None:
    """Written to fail before issue 11: a busy machine's GPUs counted as free."""
    p = _auto("Qwen/Qwen3-32B", "h100", (0,), busy=tuple(range(1, 8)))
    assert (p.precision, p.gpus, p.data_parallel) == ("fp8", 1, 1)
    assert any(
        d.startswith("precision bf16 skipped: on 2 GPUs needs 2 GPUs, --devices names 1")
        for d in p.decisions
    )
