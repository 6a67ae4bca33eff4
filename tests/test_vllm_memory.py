"""vLLM 0.32's accounting in the estimator (issue 24): batch defaults, capture sizes, the
CUDA-graph term subtracted from the KV cache budget, its switches, --kv-cache-memory-bytes,
the utilization vLLM refuses, and verdicts near the edge."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from aimc.check.catalog import Catalog
from aimc.core.errors import ConfigError
from aimc.plan.estimate import GIB, estimate
from aimc.plan.policy import resolve
from aimc.plan.request import Request
from aimc.plan.vllm_memory import (
    _NO_FLAGS,
    RUNTIME_ARGS,
    RUNTIME_ENV,
    _flags,
    batch_defaults,
    capture_sizes,
    graph_memory,
    vllm_runtime,
)
from tests.conftest import ROOT

CATALOG = Catalog.default()
H100 = CATALOG.hardware("h100").data
LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"


def facts(model: str) -> dict:
    return CATALOG.recipe(model).data["model"]["facts"]


def plan_estimate(model: str, target: str = "h100", **kw) -> dict:
    recipe, hardware = CATALOG.recipe(model), CATALOG.hardware(target)
    return resolve(recipe, hardware, Request(model=model, **kw)).estimate


def test_batch_defaults_follow_the_gpu_as_vllm_does() -> None:
    # engine/arg_utils.py get_batch_defaults, API server column
    assert batch_defaults(79.19, "h100 NVIDIA H100 80GB") == (1024, 8192)
    assert batch_defaults(80, "a100-80gb NVIDIA A100 80GB") == (256, 2048)
    assert batch_defaults(191.5, "mi300x AMD Instinct MI300X") == (1024, 16384)
    assert batch_defaults(23.6, "NVIDIA RTX A5000") == (256, 2048)


@pytest.mark.parametrize(
    ("seqs", "tokens", "ceiling", "printed"),
    [
        # the counts published logs print ("Profiling CUDA graph memory: ...", capture bars)
        (256, 2048, 512, (51, 35, 512)),  # lmcache#3430, RTX A5000
        (1024, 8192, 512, (51, 51, 512)),  # vLLM 0.19 on H100 (llm-d-planner logs)
        (1024, 8192, 1024, (83, 83, 1024)),  # gpt-oss on H100: "83/83"
        (1, 8192, 512, (2, 1, 2)),  # club-3090#652, --max-num-seqs 1
    ],
)
def test_capture_sizes_are_the_ones_vllm_prints(seqs, tokens, ceiling, printed) -> None:
    sizes = capture_sizes(seqs, tokens, ceiling)
    g = graph_memory(facts("Qwen/Qwen3-8B"), 36, 1, sizes, "FULL_AND_PIECEWISE", seqs)
    assert g is not None
    assert (g.piecewise, g.full, g.largest) == printed


def test_the_graph_bound_is_above_every_pool_vllm_019_measured_on_h100() -> None:
    """bench/data/vllm_019_h100_startup_logs.yaml: 'CUDA graph pool memory: A GiB (actual)'
    of 59 runs (train and test); the bound is what the estimate subtracts."""
    points = YAML(typ="safe").load(
        (ROOT / "bench/data/vllm_019_h100_startup_logs.yaml").read_text()
    )
    for p in points:
        f = p["model_facts"]
        largest = 1024 if "FULL=83" in p["cudagraph_profile"] else 512
        mode = "FULL_AND_PIECEWISE" if "FULL" in p["cudagraph_profile"] else "PIECEWISE"
        model = {"hidden_size": f["hidden_size"], "experts": f["moe"]}
        sizes = capture_sizes(1024, 8192, largest)
        g = graph_memory(model, f["layers_per_stage"], p["tensor_parallel_size"], sizes, mode, 1024)
        assert g is not None
        assert p["figures"]["cuda_graph_pool_actual_gib"] <= g.gib, p["id"]


def test_the_graph_estimate_comes_out_of_the_kv_cache() -> None:
    """Before issue 24 graphs were outside the budget: the KV cache was the same with and
    without them."""
    f = facts("Qwen/Qwen3-8B")
    rt = vllm_runtime(f, H100, {}, {}, 1)
    with_graphs = estimate(f, "bf16", 1, 79.19, 0.92, 32768, runtime=rt)
    eager = estimate(
        f,
        "bf16",
        1,
        79.19,
        0.92,
        32768,
        runtime=vllm_runtime(f, H100, {"enforce-eager": True}, {}, 1),
    )
    assert with_graphs.graph_gib == pytest.approx(rt.graphs.gib) and rt.graphs.gib > 0.5
    assert eager.graph_gib == 0
    freed = (
        eager.kv_capacity_tokens - with_graphs.kv_capacity_tokens
    ) * with_graphs.kv_bytes_per_token
    assert freed / GIB == pytest.approx(rt.graphs.gib, abs=0.01)


def test_the_switches_that_drop_the_graph_term_reach_the_plan() -> None:
    base = plan_estimate("Qwen/Qwen3-8B", gpus=1)
    eager = plan_estimate("Qwen/Qwen3-8B", gpus=1, sets=("args.enforce-eager=true",))
    off = plan_estimate(
        "Qwen/Qwen3-8B", gpus=1, sets=("env.VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=0",)
    )
    assert base["graph_gib"] > 0.5
    assert eager["graph_gib"] == off["graph_gib"] == 0
    assert eager["kv_capacity_tokens"] > base["kv_capacity_tokens"]


def test_sglang_keeps_graphs_outside_its_static_pool() -> None:
    est = plan_estimate("Qwen/Qwen3-8B", gpus=1, backend="sglang")
    assert est["graph_gib"] == 0


def test_kv_cache_memory_bytes_replaces_the_budget() -> None:
    est = plan_estimate("Qwen/Qwen3-8B", gpus=1, sets=("args.kv-cache-memory-bytes=8G",))
    per_token = est["kv_bytes_per_token"]
    assert est["kv_capacity_tokens"] == int(8 * GIB / per_token) // 16 * 16
    assert est["verdict"] == "runnable"


def test_a_utilization_above_the_free_memory_is_refused_as_vllm_does() -> None:
    """vLLM 0.32 request_memory(): free memory at the baseline (after the CUDA context and
    NCCL) must hold utilization x total."""
    with pytest.raises(ConfigError) as info:
        resolve(
            CATALOG.recipe("Qwen/Qwen3-8B"),
            CATALOG.hardware("h100"),
            Request(model="Qwen/Qwen3-8B", gpus=2, sets=("memory_utilization=0.99",)),
        )
    assert "--gpu-memory-utilization 0.99 asks 78.4 GiB per GPU, more than the 77.1 GiB free" in (
        info.value.message
    )
    ok = plan_estimate("Qwen/Qwen3-8B", gpus=1, sets=("memory_utilization=0.99",))
    assert ok["verdict"] == "runnable"  # one GPU: no NCCL before the baseline


def test_llama_70b_bf16_on_two_h100_no_longer_fits_16k() -> None:
    """The issue's headline: 0.54 GiB to spare by the old estimate, less than the graphs."""
    est = estimate(
        facts(LLAMA_70B),
        "bf16",
        2,
        79.19,
        0.92,
        16384,
        runtime=vllm_runtime(facts(LLAMA_70B), H100, {}, {}, 2),
    )
    assert est.verdict == "low-memory"
    assert est.max_context < 8192
    old = estimate(facts(LLAMA_70B), "bf16", 2, 79.19, 0.92, 16384)
    assert old.verdict == "runnable"


def test_a_verdict_within_the_graph_band_says_so() -> None:
    f = facts("Qwen/Qwen3-32B")
    rt = vllm_runtime(f, H100, {}, {}, 1)
    edge = estimate(f, "bf16", 1, 79.19, 0.92, 32768, runtime=rt)
    assert edge.verdict == "low-memory"
    assert "near the edge: short by 0.3 GiB per GPU, within the 0.6 GiB band" in edge.reason
    assert edge.caveat in edge.reason
    far = estimate(f, "bf16", 1, 79.19, 0.92, 8192, runtime=rt)
    assert far.verdict == "runnable" and far.caveat == ""


def test_moe_gets_the_wider_band_and_says_why() -> None:
    f = facts("Qwen/Qwen3-30B-A3B")
    g = vllm_runtime(f, H100, {}, {}, 1).graphs
    dense = vllm_runtime(facts("Qwen/Qwen3-32B"), H100, {}, {}, 1).graphs
    assert g is not None and dense is not None
    assert g.uncertain == ("MoE",)
    assert g.band_gib > dense.band_gib
    assert g.gib - g.central_gib > dense.gib - dense.central_gib


def test_gpt_oss_captures_up_to_1024_as_vllm_raises_it() -> None:
    f = facts("openai/gpt-oss-120b")
    g = vllm_runtime(f, H100, {}, {}, 2, architecture="GptOssForCausalLM").graphs
    assert g is not None and (g.piecewise, g.largest) == (83, 1024)
    assert "capture sizes up to 1024" in g.uncertain


def test_flags_and_compilation_config_change_the_captures() -> None:
    f = facts("Qwen/Qwen3-8B")
    small = vllm_runtime(f, H100, {"max-num-seqs": 16}, {}, 1).graphs
    assert small is not None and (small.piecewise, small.full, small.largest) == (7, 5, 32)
    piecewise = vllm_runtime(
        f, H100, {"compilation-config": '{"cudagraph_mode": "PIECEWISE"}'}, {}, 1
    )
    assert piecewise.graphs is not None and piecewise.graphs.full == 0
    none = vllm_runtime(f, H100, {"compilation-config": {"cudagraph_mode": "NONE"}}, {}, 1)
    assert none.graphs is None
    sizes = vllm_runtime(f, H100, {"cudagraph-capture-sizes": [1, 2, 4, 8]}, {}, 1).graphs
    assert sizes is not None and (sizes.piecewise, sizes.largest) == (4, 8)


class _Asked(Mapping[str, Any]):
    """A mapping that records every key asked of it (iterating it asks for them all; its
    length reads none)."""

    def __init__(self, data: dict[str, Any]):
        self.data, self.asked = data, set[str]()

    def __getitem__(self, key: str) -> Any:
        self.asked.add(key)
        return self.data[key]

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return key in self.data

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return self.data.get(key, default)

    def __iter__(self) -> Iterator[str]:
        self.asked.add("<every key>")
        return iter(self.data)

    def __len__(self) -> int:  # whether there are any: no key read
        return len(self.data)


_VALUES = (
    st.none()
    | st.booleans()
    | st.integers(-2, 20000)
    | st.sampled_from(
        ["throughput", "0", "8G", "512", "[1, 2, 4]", "1,2", '{"cudagraph_mode": "PIECEWISE"}']
    )
)
_ARGS = st.dictionaries(
    st.sampled_from(sorted(RUNTIME_ARGS | {"max-model-len", "dtype", "port", "seed"})), _VALUES
)
_ENV = st.dictionaries(
    st.sampled_from(sorted(RUNTIME_ENV | {"VLLM_USE_V1", "NCCL_DEBUG"})), st.sampled_from("01x")
)


@settings(max_examples=200, deadline=None)
@given(
    args=_ARGS, env=_ENV, tp=st.integers(1, 8), model=st.sampled_from([LLAMA_70B, "Qwen/Qwen3-32B"])
)
def test_vllm_runtime_reads_only_the_flags_and_variables_it_names(
    args: dict[str, Any], env: dict[str, str], tp: int, model: str
) -> None:
    """The plan hands vllm_runtime only RUNTIME_ARGS and RUNTIME_ENV (resolve._estimate):
    they are all it reads, and the runtime of those alone is the runtime of them all."""
    asked_args, asked_env = _Asked(args), _Asked(env)
    whole = vllm_runtime(facts(model), H100, asked_args, asked_env, tp)
    assert asked_args.asked <= RUNTIME_ARGS
    assert asked_env.asked <= RUNTIME_ENV
    named = {k: v for k, v in args.items() if k in RUNTIME_ARGS}
    assert _flags({}, 8, 16, 32) == (8, 16, 32, *_NO_FLAGS)  # what no flags leave
    assert (
        vllm_runtime(
            facts(model), H100, named, {k: v for k, v in env.items() if k in RUNTIME_ENV}, tp
        )
        == whole
    )
