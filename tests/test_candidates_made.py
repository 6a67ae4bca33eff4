"""A group's candidate (made without the frozen dataclass's ``__init__``) is the
:class:`~aimc.plan.candidates.Candidate` of the same fields: equal, hashed alike, the same
attributes in the same order, printed alike, still frozen."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, fields

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimc.plan.candidates import Candidate, Group

_text = st.text(max_size=8)


@settings(max_examples=200, deadline=None)
@given(
    index=st.integers(0, 50),
    config_id=_text,
    hardware=_text,
    precision=_text,
    backend=_text,
    gpus=st.integers(1, 64),
    nodes=st.integers(1, 8),
)
def test_a_groups_candidate_is_the_plain_one(
    index: int, config_id: str, hardware: str, precision: str, backend: str, gpus: int, nodes: int
) -> None:
    group = Group(index, config_id, hardware, precision, backend, ((gpus, nodes),))
    got = group.candidate(gpus, nodes)
    want = Candidate(index, config_id, hardware, precision, gpus, backend, nodes)
    assert type(got) is Candidate and got == want and hash(got) == hash(want)
    assert list(vars(got).items()) == list(vars(want).items())
    assert [getattr(got, f.name) for f in fields(Candidate)] == list(vars(want).values())
    assert repr(got) == repr(want) and group.candidates() == [want]
    with pytest.raises(FrozenInstanceError):
        got.gpus = 2  # type: ignore[misc]
