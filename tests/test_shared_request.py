"""A :class:`~aimc.plan.shared.Shared` serves the request it was made for at any GPU count
and refuses any other: for requests that differ in any fields (GPU count included), its
context is refused exactly when the two differ in a field other than the GPU count, as
``replace(request, gpus=None) != replace(made_for, gpus=None)`` says."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimc.check.catalog import Catalog
from aimc.plan.candidates import candidates
from aimc.plan.request import Request
from aimc.plan.shared import Shared

CATALOG = Catalog.default([])
RECIPE = CATALOG.recipe("Qwen/Qwen3-8B")
H100 = CATALOG.hardware("h100")
CANDIDATE = candidates(RECIPE, "h100")[0]

_requests = st.builds(
    Request,
    model=st.sampled_from([RECIPE.model_id, "other/model"]),
    gpus=st.none() | st.sampled_from([1, 2, 4]),
    precision=st.none() | st.just("bf16"),
    backend=st.none() | st.just("vllm"),
    port=st.none() | st.sampled_from([1, 8000]),
    launcher=st.none() | st.just("process"),
    sets=st.sampled_from([(), ("port=9000",)]),
    default_port=st.none() | st.just(8001),
    available_gpus=st.none() | st.just(2),
    optimize=st.none() | st.just("latency"),
    nodes=st.none() | st.just(2),
    checkpoint_bytes=st.sampled_from([{}, {"x": 1}]),
    measured=st.sampled_from([(), (1,)]),
    devices=st.none() | st.just((0, 1)),
    debug=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(_requests, st.lists(_requests, min_size=1, max_size=4))
def test_another_request_is_refused_exactly_when_it_differs_but_in_gpus(
    made_for: Request, asked: list[Any]
) -> None:
    shared = Shared(RECIPE, made_for)
    assert shared.request == replace(made_for, gpus=None)
    for request in asked:
        same = replace(request, gpus=None) == replace(made_for, gpus=None)
        if same:
            assert shared.context(RECIPE, H100, request, CANDIDATE).request is request
        else:
            with pytest.raises(ValueError, match="serves the request it was made for"):
                shared.context(RECIPE, H100, request, CANDIDATE)
