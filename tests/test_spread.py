"""aimc.core.spread: work over this process and forked children, as if in one.

The cases that fork run in a fresh interpreter (tests/helpers/spread_cases.py): one thread,
as the command line is (a pytest-xdist worker runs two, where spread forks nothing)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aimc.core.spread import MAX_SLICES, _slices
from tests.helpers.spread_cases import in_fresh_python


@pytest.mark.parametrize(
    "case",
    [
        "results_in_order",
        "children_take_shares",
        "error_in_a_child",
        "first_error_in_item_order",
        "a_child_dies",
        "interrupted_here",
        "interrupted_at_a_fork",
        "child_interrupted_at_its_fork",
        "unpicklable_results",
        "alone_when_sigchld_is_ignored",
        "alone_when_sigchld_is_handled",
        "alone_beside_a_thread",
        "alone_in_another_thread",
    ],
)
def test_spread(case: str, tmp_path: Path) -> None:
    done = in_fresh_python(f"from tests.helpers.spread_cases import {case}; {case}()", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == "" and done.stderr == ""


@given(st.integers(0, 5000), st.integers(1, 64))
def test_slices_cover_every_item_once_in_order(count: int, processes: int) -> None:
    slices = _slices(count, processes)
    assert [i for s in slices for i in s] == list(range(count))
    assert 1 <= len(slices) <= MAX_SLICES
    assert max(map(len, slices)) - min(map(len, slices)) <= 1


def test_children_never_print_what_this_process_has_not_flushed(tmp_path: Path) -> None:
    """Output buffered before the fork is written once, by this process (children leave
    with os._exit: no flush, no atexit)."""
    script = (
        "import atexit, os\n"
        "from aimc.core import spread as s\n"
        "fork, forks = os.fork, []\n"
        "s.os.fork = lambda: forks.append(1) or fork()\n"
        "atexit.register(lambda: print('atexit ran', len(forks) == 3))\n"
        "print('before', flush=False)\n"
        "print(sum(x for x, _ in s.spread(lambda x: (x, x), list(range(400)), 4)))\n"
    )
    done = in_fresh_python(script, tmp_path)
    assert done.stdout == f"before\n{sum(range(400))}\natexit ran True\n", done.stderr
    assert done.stderr == ""
