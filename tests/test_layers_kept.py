"""The layers :func:`aimc.plan.layers.layers_of` keeps on a choice and on a profile's
sources serve only what they were made for: a configuration's low_memory context applies
when its GPU count is asked for and not when the count is left open, in either order on
one :class:`~aimc.plan.shared.Shared`; a profile's multi-GPU variables only with more than
one GPU; each plan the one plain :func:`~aimc.plan.resolve.build_plan` makes."""

from __future__ import annotations

import itertools

from aimc.check.catalog import Catalog
from aimc.plan.candidates import candidates
from aimc.plan.request import Request
from aimc.plan.resolve import build_plan
from aimc.plan.shared import Shared

CATALOG = Catalog.default([])


def _plan_json(recipe, hardware, request, c, shared=None):  # type: ignore[no-untyped-def]
    return build_plan(recipe, hardware, request, c, shared=shared).to_json()


def test_a_low_memory_context_only_for_its_asked_count_in_either_order() -> None:
    """Failed with a configuration's layer kept for the choice alone (the count listed or
    not left out of its key): the second plan got the first's context."""
    recipe, h100 = CATALOG.recipe("meta-llama/Llama-3.1-70B-Instruct"), CATALOG.hardware("h100")
    (c,) = [c for c in candidates(recipe, "h100") if c.config_id.endswith("tp2")]
    asked, open_count = Request(model=recipe.model_id, gpus=2), Request(model=recipe.model_id)
    for order in itertools.permutations([asked, open_count]):
        shared = Shared(recipe, open_count)
        got = {id(r): _plan_json(recipe, h100, r, c, shared) for r in order}
        for r in order:
            assert got[id(r)] == _plan_json(recipe, h100, r, c)
        assert got[id(asked)]["args"]["max-model-len"]["value"] == 7168
        assert got[id(open_count)]["args"]["max-model-len"]["value"] != 7168


def test_a_profiles_multi_gpu_variables_only_with_more_than_one_gpu() -> None:
    """One profile, one Shared, one and then several GPUs and back: each plan's
    environment is plain build_plan's (the multi-GPU variables with several GPUs alone)."""
    hardware = CATALOG.hardware("mi300x")
    assert hardware.data["multi_gpu_env"]
    recipe = CATALOG.recipe("Qwen/Qwen3-8B")
    cands = [c for c in candidates(recipe, "mi300x")]
    sizes = {c.gpus for c in cands}
    assert 1 in sizes and len(sizes) > 1
    shared = Shared(recipe, Request(model=recipe.model_id))
    for c in [*cands, *reversed(cands)]:
        request = Request(model=recipe.model_id, gpus=c.gpus)
        got = _plan_json(recipe, hardware, request, c, shared)
        assert got == _plan_json(recipe, hardware, request, c)
        multi = set(hardware.data["multi_gpu_env"]) & set(got["env"])
        assert bool(multi) == (c.gpus > 1)
