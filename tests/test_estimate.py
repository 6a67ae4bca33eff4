"""The memory estimator on models whose memory is public, and its special cases."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimc.check.catalog import Catalog
from aimc.plan.candidates import candidates
from aimc.plan.estimate import (
    GIB,
    _kv_for,
    _max_context,
    estimate,
    kv_bytes_per_token,
    weights_size,
)
from aimc.plan.policy import assess
from aimc.plan.request import Request

CATALOG = Catalog.default()


def facts(model: str) -> dict:
    return CATALOG.recipe(model).data["model"]["facts"]


LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"
H100 = CATALOG.hardware("h100").data["memory_gib"]
MI300X = CATALOG.hardware("mi300x").data["memory_gib"]


def test_llama_70b_bf16_weights_are_about_141_gb() -> None:
    assert weights_size(facts(LLAMA_70B), "bf16") / 1e9 == pytest.approx(141.1, abs=0.5)


def test_llama_70b_bf16_needs_two_h100_but_fits_one_mi300x() -> None:
    f = facts(LLAMA_70B)
    assert estimate(f, "bf16", 1, H100, 0.92, 8192).verdict == "incompatible"
    assert estimate(f, "bf16", 2, H100, 0.92, 8192).verdict == "runnable"
    assert estimate(f, "bf16", 1, MI300X, 0.92, 32768).verdict == "runnable"


def test_llama_8b_kv_is_128_kib_per_token() -> None:
    f = facts("meta-llama/Llama-3.1-8B-Instruct")
    assert kv_bytes_per_token(f, 1, 2) == 128 * 1024
    e = estimate(f, "bf16", 1, 79.19, 0.95, 8192)
    # vLLM 0.19 on H100 at 0.95: "Model loading took 14.99 GiB", "GPU KV cache size:
    # 476,016 tokens" (tests/data/vllm_memory_points.yaml)
    assert e.weights_gib == pytest.approx(14.99, rel=0.03)
    assert e.kv_capacity_tokens == pytest.approx(476_016, rel=0.10)


def test_fp8_kv_cache_halves_the_kv_term() -> None:
    f = facts("Qwen/Qwen3-32B")
    auto = estimate(f, "bf16", 2, MI300X, 0.9, 32768)
    fp8 = estimate(f, "bf16", 2, MI300X, 0.9, 32768, kv_cache_dtype="fp8")
    assert fp8.kv_bytes_per_token == auto.kv_bytes_per_token / 2
    assert fp8.kv_gib == pytest.approx(auto.kv_gib / 2)
    assert fp8.kv_capacity_tokens == pytest.approx(2 * auto.kv_capacity_tokens, rel=1e-3)


def test_tensor_parallel_beyond_kv_heads_replicates_them() -> None:
    f = facts("Qwen/Qwen3-235B-A22B")  # 4 KV heads
    per_layer_head = 2 * f["head_dim"] * 2
    assert kv_bytes_per_token(f, 4, 2) == f["layers"] * per_layer_head
    assert kv_bytes_per_token(f, 8, 2) == kv_bytes_per_token(f, 4, 2)
    assert kv_bytes_per_token(f, 2, 2) == 2 * kv_bytes_per_token(f, 4, 2)


def test_mla_stores_one_latent_vector_per_layer_on_every_gpu() -> None:
    f = facts("deepseek-ai/DeepSeek-R1")
    expected = 61 * (512 + 64) * 2  # layers x (kv_lora_rank + qk_rope_head_dim) x bf16
    assert kv_bytes_per_token(f, 1, 2) == expected
    assert kv_bytes_per_token(f, 8, 2) == expected  # not divided by tensor parallelism


def test_sliding_window_layers_hold_at_most_their_window() -> None:
    f = facts("openai/gpt-oss-20b")  # 24 layers, 12 of them with a 128-token window
    per_full_layer = 2 * 8 * 64 * 2
    e = estimate(f, "mxfp4", 1, H100, 0.92, 131072, weights_bytes=14.02 * GIB)
    expected = 12 * per_full_layer * 131072 + 12 * per_full_layer * 128
    assert e.kv_gib * GIB == pytest.approx(expected)
    assert e.kv_bytes_per_token == 12 * per_full_layer


def test_low_memory_says_the_longest_context_that_fits() -> None:
    e = estimate(facts(LLAMA_70B), "bf16", 2, H100, 0.92, 32768)
    assert e.verdict == "low-memory"
    assert 16384 < e.max_context < 32768
    fits = e.max_context // 1024 * 1024
    assert f"fits with --max-model-len {fits}" in e.reason
    assert estimate(facts(LLAMA_70B), "bf16", 2, H100, 0.92, fits).verdict == "runnable"


def test_quantized_weights_keep_embeddings_in_16_bits() -> None:
    f = facts("meta-llama/Llama-3.1-8B-Instruct")
    embed = 2 * 128256 * 4096
    assert weights_size(f, "fp8") == pytest.approx((f["parameters"] - embed) + 2 * embed)


def test_every_shipped_configuration_can_start_on_the_hardware_it_claims() -> None:
    checked = 0
    for recipe in CATALOG.recipes():
        for name in sorted({c.hardware for c in candidates(recipe)}):
            for a in assess(recipe, CATALOG.hardware(name), Request(recipe.model_id)):
                assert a.verdict in ("runnable", "low-memory"), (
                    f"{recipe.model_id} {a.candidate} on {name}: {a.reason}"
                )
                checked += 1
    assert checked > 300


# Quantized checkpoints: the formula against what vLLM loaded (tests/data/vllm_memory_points.yaml).
QWEN_32B = "Qwen/Qwen3-32B"


def test_int4_is_4_bits_plus_a_scale_and_zero_point_per_128_values() -> None:
    f = facts(QWEN_32B)
    embed = 2 * f["vocab_size"] * f["hidden_size"]  # embedding + LM head, kept in 16 bits
    linear = f["parameters"] - embed
    expected = linear * (0.5 + 2.5 / 128) + 2 * embed
    assert weights_size(f, "int4") == pytest.approx(expected)
    # Qwen/Qwen3-32B-AWQ on vLLM 0.28: "Checkpoint size: 18.00 GiB"
    assert weights_size(f, "int4") / GIB == pytest.approx(18.00, rel=0.01)


def test_int4_weights_per_gpu_match_vllm() -> None:
    # Qwen/Qwen3-32B-AWQ, TP 2: "Model loading took 9.01 GiB" (vLLM 0.28)
    e = estimate(facts(QWEN_32B), "int4", 2, 23.52, 0.85, 8192)
    assert e.weights_gib == pytest.approx(9.01, rel=0.02)
    # RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w4a16 (GPTQ, symmetric, no zero points),
    # TP 1: "Model loading took 5.38 GiB" (vLLM 0.19)
    e = estimate(facts("meta-llama/Llama-3.1-8B-Instruct"), "int4", 1, H100, 0.95, 8192)
    assert e.weights_gib == pytest.approx(5.38, rel=0.03)


def test_int8_weights_per_gpu_match_vllm() -> None:
    # RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w8a8, TP 1: 8.49 GiB (vLLM 0.19)
    e = estimate(facts("meta-llama/Llama-3.1-8B-Instruct"), "int8", 1, H100, 0.95, 8192)
    assert e.weights_gib == pytest.approx(8.49, rel=0.01)
    # RedHatAI/Llama-3.3-70B-Instruct-quantized.w8a8, TP 2: 33.88 GiB and 244,304 tokens
    e = estimate(facts("meta-llama/Llama-3.3-70B-Instruct"), "int8", 2, H100, 0.95, 8192)
    assert e.weights_gib == pytest.approx(33.88, rel=0.01)
    assert e.kv_capacity_tokens == pytest.approx(244_304, rel=0.05)


def test_quantized_weights_shrink_in_precision_order() -> None:
    f = facts(LLAMA_70B)
    sizes = [weights_size(f, p) for p in ("bf16", "fp8", "int8", "int4")]
    assert sizes[0] > sizes[1] == sizes[2] > sizes[3]
    assert sizes[3] / sizes[0] == pytest.approx(0.28, abs=0.01)  # embeddings stay 16-bit


def test_a_recipe_size_gib_wins_over_the_formula() -> None:
    recipe = CATALOG.recipe(QWEN_32B)
    assert recipe.data["weights"]["int4"]["size_gib"] == 18.0
    (a,) = [
        a
        for a in assess(recipe, CATALOG.hardware("h100"), Request(QWEN_32B))
        if a.candidate.precision == "int4" and a.candidate.gpus == 2
    ]
    assert a.plan is not None
    assert a.plan.estimate["weights_basis"] == "recipe"
    assert a.plan.estimate["weights_gib"] == pytest.approx(9.0)


def _searched(facts: dict[str, Any], per_token: float, kv_free: float) -> int:
    """The longest request that fits, by the plain binary search over 0 .. max_context
    (what :func:`aimc.plan.estimate._max_context` gave before its window)."""
    lo, hi = 0, facts["max_context"] if kv_free > 0 else 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _kv_for(facts, per_token, mid) <= kv_free * GIB:
            lo = mid
        else:
            hi = mid - 1
    return lo


_SLIDING = st.one_of(
    st.none(),
    st.builds(lambda layers, size: {"layers": layers, "size": size},
              st.integers(0, 64), st.integers(1, 1 << 17)),
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    layers=st.integers(1, 128),
    sliding=_SLIDING,
    max_context=st.integers(0, 1 << 20),
    per_token=st.one_of(st.just(0.0), st.floats(1e-3, 1e7)),
    kv_free=st.one_of(st.sampled_from([0.0, -1.0, 1e-9]), st.floats(1e-6, 1e4)),
)
def test_the_longest_request_is_the_plain_search_s(
    layers: int, sliding: dict[str, int] | None, max_context: int, per_token: float, kv_free: float
) -> None:
    """Fails if the window around the arithmetic's guess ever gives another answer than
    the plain search: any model shape (sliding-window layers up to all of them), any
    budget, from none to far more than the context needs."""
    model: dict[str, Any] = {"layers": layers, "max_context": max_context}
    if sliding is not None:
        model["sliding_window"] = {**sliding, "layers": min(sliding["layers"], layers)}
    assert _max_context(model, per_token, kv_free) == _searched(model, per_token, kv_free)


def test_the_longest_request_of_every_shipped_model_is_the_plain_search_s() -> None:
    for model in CATALOG.model_ids():
        f = facts(model)
        for tp in (1, 2, 8):
            per_token = kv_bytes_per_token(f, tp, 2)
            for kv_free in (0.5, 3.0, 17.25, 60.0, 1000.0):
                assert _max_context(f, per_token, kv_free) == _searched(f, per_token, kv_free)
