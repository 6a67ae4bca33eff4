"""The estimate's parts made without dataclasses' generic helpers are what those make:
:meth:`Estimate.to_json` and the verdict added to a sized estimate."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from aimc.plan.estimate import Estimate, _caveat, _judged, _verdict
from aimc.plan.vllm_memory import Graphs, Runtime

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


@settings(max_examples=300, deadline=None)
@given(
    estimates,
    _gib,
    st.floats(min_value=0, max_value=1e3),
    st.floats(min_value=0.01, max_value=1),
    runtimes,
)
def test_a_judged_estimate_is_the_sized_one_with_its_verdict(
    sized: Estimate, kv_free: float, memory: float, util: float, runtime: Runtime | None
) -> None:
    verdict, reason = _verdict(sized, kv_free, memory, util, runtime)
    caveat = _caveat(sized, kv_free, memory, runtime)
    want = replace(
        sized, verdict=verdict, reason="; ".join(filter(None, (reason, caveat))), caveat=caveat
    )
    got = _judged(sized, kv_free, memory, util, runtime)
    assert got == want
    assert [getattr(got, f.name) for f in fields(got)] == [
        getattr(want, f.name) for f in fields(want)
    ]
