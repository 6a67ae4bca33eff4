"""aimc.core.spread: work over this process and forked children, as if in one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimc.core import spread as spread_module
from aimc.core.spread import MAX_SLICES, _slices, spread

ROOT = Path(__file__).resolve().parents[1]


def _square(x: int) -> tuple[int, int]:
    return x, x * x


class _Forks:
    """The children spread forks and how each ended (its waitpid status)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pids: list[int] = []
        self.ended: dict[int, int] = {}
        fork, waitpid = os.fork, os.waitpid

        def recorded_fork() -> int:
            pid = fork()
            if pid:
                self.pids.append(pid)
            return pid

        def recorded_waitpid(pid: int, options: int) -> tuple[int, int]:
            got = waitpid(pid, options)
            if got[0] == pid:
                self.ended[pid] = got[1]
            return got

        monkeypatch.setattr(spread_module.os, "fork", recorded_fork)
        monkeypatch.setattr(spread_module.os, "waitpid", recorded_waitpid)

    def all_reaped(self) -> bool:
        """Every child is gone: reaped here, no longer this process's child."""
        for pid in self.pids:
            with pytest.raises(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        return set(self.ended) == set(self.pids)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(-(10**12), 10**12), max_size=120), st.integers(1, 4))
def test_results_are_those_of_one_process_in_order(items: list[int], processes: int) -> None:
    assert spread(_square, items, processes) == [_square(x) for x in items]


@given(st.integers(0, 5000), st.integers(1, 64))
def test_slices_cover_every_item_once_in_order(count: int, processes: int) -> None:
    slices = _slices(count, processes)
    assert [i for s in slices for i in s] == list(range(count))
    assert 1 <= len(slices) <= MAX_SLICES
    assert max(map(len, slices)) - min(map(len, slices)) <= 1


def test_children_take_shares_and_end_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    forks = _Forks(monkeypatch)

    def slow(x: int) -> tuple[int, int]:
        time.sleep(0.004)
        return x, os.getpid()

    got = spread(slow, list(range(300)), 3)
    assert [x for x, _ in got] == list(range(300))
    assert {pid for _, pid in got} == {os.getpid(), *forks.pids}  # all three worked
    assert len(forks.pids) == 2 and forks.all_reaped()
    assert all(os.WIFEXITED(s) and os.WEXITSTATUS(s) == 0 for s in forks.ended.values())


def test_an_error_in_a_child_is_raised_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whichever process meets it: a child's error leaves its item unsent, and this
    process, working it again, raises it (``work`` is pure)."""
    forks = _Forks(monkeypatch)

    def fails(x: int) -> int:
        if x in (20, 150):
            raise ValueError(f"bad item {x}")
        time.sleep(0.001)
        return x

    with pytest.raises(ValueError, match="bad item"):
        spread(fails, list(range(200)), 2)
    assert forks.pids and forks.all_reaped()


def test_a_child_that_dies_leaves_no_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    forks = _Forks(monkeypatch)
    parent = os.getpid()

    def dies_in_a_child(x: int) -> int:
        if os.getpid() != parent:
            os._exit(3)
        time.sleep(0.001)
        return -x

    assert spread(dies_in_a_child, list(range(100)), 3) == [-x for x in range(100)]
    assert len(forks.pids) == 2 and forks.all_reaped()
    assert {os.WEXITSTATUS(s) for s in forks.ended.values()} <= {0, 3}  # 0: it found no slice


def test_an_error_here_stops_and_reaps_the_children(monkeypatch: pytest.MonkeyPatch) -> None:
    forks = _Forks(monkeypatch)
    parent = os.getpid()

    def fails_here(x: int) -> int:
        if os.getpid() == parent:
            raise KeyError(x)
        time.sleep(0.05)  # the children are still at work when this process leaves
        return x

    with pytest.raises(KeyError):
        spread(fails_here, list(range(400)), 3)
    assert len(forks.pids) == 2 and forks.all_reaped()


def test_unpicklable_results_are_made_here(monkeypatch: pytest.MonkeyPatch) -> None:
    forks = _Forks(monkeypatch)

    def unpicklable(x: int) -> object:
        return lambda: x  # a child cannot send this back

    got = spread(unpicklable, list(range(50)), 2)
    assert [f() for f in got] == list(range(50))  # type: ignore[operator]
    assert forks.all_reaped()


def test_children_never_print_what_this_process_has_not_flushed(tmp_path: Path) -> None:
    """Output buffered before the fork is written once, by this process (children leave
    with os._exit: no flush, no atexit)."""
    script = (
        "import atexit, sys\n"
        "from aimc.core.spread import spread\n"
        "atexit.register(lambda: print('atexit ran'))\n"
        "print('before', flush=False)\n"
        "print(sum(x for x, _ in spread(lambda x: (x, x), list(range(400)), 4)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
        check=True,
    )
    assert done.stdout == f"before\n{sum(range(400))}\natexit ran\n"
    assert done.stderr == ""
