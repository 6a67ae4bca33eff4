""":meth:`aimc.plan.shared.Shared.runtime` is plain
:func:`~aimc.plan.vllm_memory.vllm_runtime` of the recipe's facts and architecture: for any
sequence of profiles (distinct objects, some of equal data, differing in one input),
GPU counts, stages, variables and flags, asked in any order of one Shared, each answer is
the one vllm_runtime gives for those arguments alone."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from aimc.check.catalog import Catalog
from aimc.plan.request import Request
from aimc.plan.shared import Shared
from aimc.plan.vllm_memory import vllm_runtime

CATALOG = Catalog.default([])
RECIPES = [CATALOG.recipe(m) for m in ("Qwen/Qwen3-8B", "openai/gpt-oss-120b")]
H100 = dict(CATALOG.hardware("h100").data)
#: Profiles that differ in one input the runtime reads (memory, name, architecture), and
#: one equal to another but a distinct object.
PROFILES: list[dict[str, Any]] = [
    H100,
    {**H100, "memory_gib": 180.0},
    {**H100, "memory_gib": 40.0},
    {**H100, "name": "a100-80gb", "description": "A100"},
    {**H100, "architecture": "sm100"},
    copy.deepcopy(H100),
]
ENVS = st.sampled_from(
    [
        {},
        {"VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS": "0"},
        {"VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS": "1"},
    ]
)
ARGS = st.sampled_from([{}, {"max-num-seqs": 64}, {"enforce-eager": True}])
ASKS = st.lists(
    st.tuples(
        st.integers(0, len(PROFILES) - 1),
        ARGS,
        ENVS,
        st.sampled_from([1, 2, 4, 8]),
        st.sampled_from([1, 2]),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(RECIPES), ASKS)
def test_each_runtime_is_the_plain_one(recipe: Any, asks: list[tuple[Any, ...]]) -> None:
    shared = Shared(recipe, Request(model=recipe.model_id))
    facts = recipe.data["model"]["facts"]
    architecture = str(recipe.data["model"].get("architecture", ""))
    for index, args, env, tp, pp in asks:
        hardware = PROFILES[index]
        got = shared.runtime(hardware, args, env, tp, pp)
        assert got == vllm_runtime(facts, hardware, args, env, tp, pp, architecture)


def test_a_runtime_is_kept_for_the_same_profile_object_alone() -> None:
    """The same profile object and arguments: the very same runtime; an equal profile
    that is another object: its own (equal) one."""
    recipe = RECIPES[0]
    shared = Shared(recipe, Request(model=recipe.model_id))
    first = shared.runtime(PROFILES[0], {}, {}, 2, 1)
    assert shared.runtime(PROFILES[0], {}, {}, 2, 1) is first
    other = shared.runtime(PROFILES[-1], {}, {}, 2, 1)
    assert other == first and other is not first
