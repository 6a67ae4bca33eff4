"""The estimate's parts made the quick way are what the plain way makes:
:meth:`Estimate.to_json` (without dataclasses' generic helpers), the estimate made of its
numbers and verdict (one dataclass, by position), and the CUDA-graph term of vLLM's
runtime (kept for a few numbers)."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, fields, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimc.plan.estimate import Estimate, _caveat, _judged, _verdict, estimate
from aimc.plan.vllm_memory import Graphs, Runtime, capture_sizes, graph_memory, vllm_runtime

_gib = st.floats(min_value=-1e4, max_value=1e6, allow_nan=False)
_tokens = st.integers(min_value=0, max_value=10**7)
_text = st.text(max_size=20)

estimates = st.builds(
    Estimate,
    weights_gib=_gib,
    weights_basis=_text,
    kv_bytes_per_token=_gib,
    kv_gib=_gib,
    overhead_gib=_gib,
    budget_gib=_gib,
    need_gib=_gib,
    context_length=_tokens,
    max_context=_tokens,
    kv_capacity_tokens=_tokens,
    verdict=_text,
    reason=_text,
    graph_gib=_gib,
    caveat=_text,
)

runtimes = st.none() | st.builds(
    Runtime,
    max_num_seqs=st.integers(1, 4096),
    max_num_batched_tokens=st.integers(1, 65536),
    graphs=st.none()
    | st.builds(
        Graphs,
        piecewise=st.integers(0, 100),
        full=st.integers(0, 100),
        largest=st.integers(1, 2048),
        central_gib=_gib,
        gib=_gib,
        band_gib=st.floats(min_value=0, max_value=10),
        uncertain=st.lists(_text, max_size=2).map(tuple),
    ),
    graphs_subtracted=st.booleans(),
    kv_cache_memory_gib=st.none() | st.floats(min_value=0, max_value=1e3),
    pre_baseline_gib=st.floats(min_value=0, max_value=3),
)


def _plain_json(e: Estimate) -> dict[str, Any]:
    """to_json as dataclasses.fields reads it."""
    data = {f.name: getattr(e, f.name) for f in fields(e)}
    for key in ("weights_gib", "kv_gib", "overhead_gib", "budget_gib", "need_gib", "graph_gib"):
        data[key] = round(data[key], 2)
    data["kv_bytes_per_token"] = round(e.kv_bytes_per_token, 1)
    return data


@settings(max_examples=300, deadline=None)
@given(estimates)
def test_to_json_is_every_field_in_order_rounded(e: Estimate) -> None:
    got = e.to_json()
    assert list(got) == [f.name for f in fields(Estimate)]
    assert got == _plain_json(e)


def _numbers(whole: Estimate) -> Estimate:
    """``whole``'s numbers as :func:`estimate` makes them before _judged: an empty verdict,
    reason and caveat."""
    return replace(whole, verdict="", reason="", caveat="")


@settings(max_examples=300, deadline=None)
@given(
    estimates,
    _gib,
    st.floats(min_value=0, max_value=1e3),
    st.floats(min_value=0.01, max_value=1),
    runtimes,
)
def test_a_judged_estimate_is_the_sized_one_with_its_verdict(
    whole: Estimate, kv_free: float, memory: float, util: float, runtime: Runtime | None
) -> None:
    verdict, reason = _verdict(whole, kv_free, memory, util, runtime)
    caveat = _caveat(whole, kv_free, memory, runtime)
    want = replace(
        whole, verdict=verdict, reason="; ".join(filter(None, (reason, caveat))), caveat=caveat
    )
    got = _judged(_numbers(whole), kv_free, memory, util, runtime)
    assert got == want
    assert [getattr(got, f.name) for f in fields(got)] == [
        getattr(want, f.name) for f in fields(want)
    ]
    # _judged sets the fields itself, as Estimate's __init__ does: the same attributes in
    # the same order (to_json's), nothing else, and still frozen.
    assert list(vars(got).items()) == list(vars(want).items())
    assert got.to_json() == want.to_json() and hash(got) == hash(want)
    with pytest.raises(FrozenInstanceError):
        got.verdict = "runnable"  # type: ignore[misc]


_FACTS = [
    {"parameters": 8e9, "hidden_size": 4096, "layers": 36, "kv_heads": 8, "head_dim": 128,
     "max_context": 40960, "vocab_size": 151936},
    {"parameters": 120e9, "hidden_size": 2880, "layers": 36, "kv_heads": 8, "head_dim": 64,
     "max_context": 131072, "experts": 128, "sliding_window": {"layers": 18, "size": 128}},
    {"parameters": 671e9, "hidden_size": 7168, "layers": 61, "kv_heads": 128, "head_dim": 128,
     "max_context": 163840, "experts": 256,
     "mla": {"kv_lora_rank": 512, "qk_rope_head_dim": 64}},
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    facts=st.sampled_from(_FACTS),
    precision=st.sampled_from(["fp32", "bf16", "fp8", "int4", "nvfp4"]),
    tp=st.sampled_from([1, 2, 4, 8]),
    memory=st.floats(min_value=1, max_value=300),
    util=st.floats(min_value=0.05, max_value=1),
    context=st.integers(0, 200_000),
    kv_dtype=st.sampled_from(["auto", "fp8"]),
    weights_bytes=st.none() | st.floats(min_value=0, max_value=2e12),
    kv_budget=st.none() | st.floats(min_value=0, max_value=100),
    pp=st.sampled_from([1, 2]),
    runtime=runtimes,
)
def test_an_estimate_is_made_as_estimates_init_makes_it(
    facts: dict[str, Any],
    precision: str,
    tp: int,
    memory: float,
    util: float,
    context: int,
    kv_dtype: str,
    weights_bytes: float | None,
    kv_budget: float | None,
    pp: int,
    runtime: Runtime | None,
) -> None:
    """estimate() sets the fields itself and judges them in place: the very attributes,
    in the order, Estimate(...) of its fields sets (to_json's), nothing else; equal,
    hashed alike and frozen."""
    got = estimate(
        facts, precision, tp, memory, util, context, kv_dtype, weights_bytes, "recipe",
        kv_budget, pp, runtime,
    )  # fmt: skip
    want = Estimate(**{f.name: getattr(got, f.name) for f in fields(Estimate)})
    assert list(vars(got).items()) == list(vars(want).items())
    assert got == want and hash(got) == hash(want) and got.to_json() == want.to_json()
    assert got.verdict in ("runnable", "low-memory", "incompatible") and got.reason
    with pytest.raises(FrozenInstanceError):
        got.reason = ""  # type: ignore[misc]


@settings(max_examples=300, deadline=None)
@given(
    hidden=st.integers(256, 16384),
    layers=st.integers(1, 128),
    shape=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    tp=st.sampled_from([1, 2, 4, 8]),
    pp=st.sampled_from([1, 2, 3]),
    memory=st.sampled_from([16.0, 40.0, 80.0, 141.0, 192.0]),
    seqs=st.none() | st.integers(1, 4096),
    tokens=st.none() | st.integers(1, 65536),
    given_sizes=st.none() | st.lists(st.integers(1, 2048), min_size=1, max_size=8),
    ceiling=st.none() | st.integers(1, 2048),
    mode=st.sampled_from(["FULL_AND_PIECEWISE", "PIECEWISE", "FULL", "NONE", "FULL_DECODE_ONLY"]),
)
def test_the_runtime_graphs_are_those_of_the_plain_capture_sizes(
    hidden: int,
    layers: int,
    shape: tuple[bool, bool, bool],
    tp: int,
    pp: int,
    memory: float,
    seqs: int | None,
    tokens: int | None,
    given_sizes: list[int] | None,
    ceiling: int | None,
    mode: str,
) -> None:
    """vllm_runtime's memo of the graph term (keyed on a few numbers) gives what
    graph_memory makes of the capture sizes spelled out, for any batch, sizes and mode."""
    moe, mla, sliding = shape
    facts: dict[str, Any] = {"hidden_size": hidden, "layers": layers}
    facts |= {"experts": 8} if moe else {}
    facts |= {"mla": {"kv_lora_rank": 512, "qk_rope_head_dim": 64}} if mla else {}
    facts |= {"sliding_window": {"layers": 1, "size": 128}} if sliding else {}
    args: dict[str, Any] = {"compilation-config": {"cudagraph_mode": mode}}
    args |= {"max-num-seqs": seqs} if seqs else {}
    args |= {"max-num-batched-tokens": tokens} if tokens else {}
    args |= {"cudagraph-capture-sizes": given_sizes} if given_sizes else {}
    args |= {"max-cudagraph-capture-size": ceiling} if ceiling else {}
    hw = {"memory_gib": memory, "name": "x", "architecture": "sm90"}
    got = vllm_runtime(facts, hw, args, {}, tp, pp)
    run_seqs, run_tokens = got.max_num_seqs, got.max_num_batched_tokens
    sizes = (
        sorted(set(given_sizes))
        if given_sizes
        else capture_sizes(run_seqs, run_tokens, ceiling or 512)
    )
    per_stage = -(-layers // pp)
    want = graph_memory(facts, per_stage, tp, [s for s in sizes if s <= run_tokens], mode, run_seqs)
    assert got.graphs == want


@pytest.mark.parametrize(
    ("kv_bytes_gib", "usable"),
    [
        (None, "(80 x 0.9)"),
        (
            8.0,
            "+ --kv-cache-memory-bytes GiB per GPU exceed the 78.7 GiB usable (80 less 1.3 "
            "before vLLM's baseline)",
        ),
    ],
)
def test_the_usable_memory_is_spelled_out_when_the_weights_leave_no_kv_cache(
    kv_bytes_gib: float | None, usable: str
) -> None:
    """The words of the verdict that the usable memory cannot hold the weights: the budget
    as memory x utilization, or, with --kv-cache-memory-bytes, as memory less what precedes
    vLLM's baseline."""
    runtime = Runtime(1024, 8192, None, True, kv_bytes_gib, 1.3)
    budget = 78.7 if kv_bytes_gib is not None else 72.0
    sized = Estimate(70.0, "checkpoint", 1e5, 1.0, 2.0, budget, 73.0, 4096, 0, 0, "", "")
    verdict, reason = _verdict(sized, 0.0, 80.0, 0.9, runtime)
    assert verdict == "incompatible"
    assert reason.startswith("not enough memory: weights 70.0 + overhead 2.0 ")
    assert reason.endswith(usable)
    assert ("--kv-cache-memory-bytes" in reason) == (kv_bytes_gib is not None)
