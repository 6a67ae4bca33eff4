"""The cases of tests/test_spread.py that fork: each runs in a fresh interpreter (one
thread, as the command line is; a pytest-xdist worker runs two, where spread forks
nothing), started by the test with ``python -c "from tests.helpers.spread_cases import
NAME; NAME()"`` (:func:`in_fresh_python`, which tests/test_validate.py uses too). A case
fails with an AssertionError (a non-zero exit)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from aimc.core import spread as spread_module
from aimc.core.spread import spread

ROOT = Path(__file__).resolve().parents[2]


def in_fresh_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``code`` run by a fresh interpreter (one thread: spread forks there), with aimc
    and the tests importable, in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )


def _square(x: int) -> tuple[int, int]:
    return x, x * x


class Forks:
    """The children spread forks and how each ended (its waitpid status)."""

    def __init__(self) -> None:
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

        spread_module.os.fork = recorded_fork  # type: ignore[assignment]
        spread_module.os.waitpid = recorded_waitpid  # type: ignore[assignment]
        self._restore = (fork, waitpid)

    def undo(self) -> None:
        spread_module.os.fork, spread_module.os.waitpid = self._restore  # type: ignore[assignment]

    def all_reaped(self) -> bool:
        """Every child is gone: reaped here, no longer this process's child."""
        for pid in self.pids:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                continue
            return False
        return set(self.ended) == set(self.pids)


def _raises(kind: type[BaseException], call: Callable[[], object]) -> BaseException:
    try:
        call()
    except kind as exc:
        return exc
    raise AssertionError(f"did not raise {kind.__name__}")


def results_in_order() -> None:
    """Random lists over 1-4 processes: the results of one process, in order; and it
    forked (this is one thread)."""
    forks = Forks()
    pick = random.Random(26)
    for _ in range(40):
        items = [pick.randint(-(10**12), 10**12) for _ in range(pick.randint(0, 150))]
        processes = pick.randint(1, 4)
        assert spread(_square, items, processes) == [_square(x) for x in items]
    assert forks.pids and forks.all_reaped()


def children_take_shares() -> None:
    forks = Forks()

    def slow(x: int) -> tuple[int, int]:
        time.sleep(0.004)
        return x, os.getpid()

    got = spread(slow, list(range(300)), 3)
    assert [x for x, _ in got] == list(range(300))
    assert {pid for _, pid in got} == {os.getpid(), *forks.pids}  # all three worked
    assert len(forks.pids) == 2 and forks.all_reaped()
    assert all(os.WIFEXITED(s) and os.WEXITSTATUS(s) == 0 for s in forks.ended.values())


def error_in_a_child() -> None:
    """Whichever process meets it: a child's error leaves its item unsent, and this
    process, working it again, raises it (``work`` is pure)."""
    forks = Forks()

    def fails(x: int) -> int:
        if x in (20, 150):
            raise ValueError(f"bad item {x}")
        time.sleep(0.001)
        return x

    assert "bad item" in str(_raises(ValueError, lambda: spread(fails, list(range(200)), 2)))
    assert forks.pids and forks.all_reaped()


def first_error_in_item_order() -> None:
    """As without children, whichever process met which error first."""

    def fails(x: int) -> int:
        if x in (35, 90, 170):
            raise ValueError(f"item {x}")
        time.sleep(0.001)
        return x

    for processes in (2, 3, 2, 3):
        error = _raises(ValueError, lambda p=processes: spread(fails, list(range(200)), p))
        assert str(error) == "item 35", error


def a_child_dies() -> None:
    forks = Forks()
    parent = os.getpid()

    def dies_in_a_child(x: int) -> int:
        if os.getpid() != parent:
            os._exit(3)
        time.sleep(0.001)
        return -x

    assert spread(dies_in_a_child, list(range(100)), 3) == [-x for x in range(100)]
    assert len(forks.pids) == 2 and forks.all_reaped()
    assert {os.WEXITSTATUS(s) for s in forks.ended.values()} <= {0, 3}  # 0: no slice left


def interrupted_here() -> None:
    forks = Forks()
    parent = os.getpid()

    def interrupt_here(x: int) -> int:
        if os.getpid() == parent:
            raise KeyboardInterrupt
        time.sleep(0.05)  # the children are still at work when this process leaves
        return x

    started = time.monotonic()
    _raises(KeyboardInterrupt, lambda: spread(interrupt_here, list(range(400)), 3))
    assert time.monotonic() - started < 5  # not after the children's ~10 s of work
    assert len(forks.pids) == 2 and forks.all_reaped()
    assert all(os.WIFSIGNALED(s) for s in forks.ended.values())  # stopped, then reaped


def interrupted_at_a_fork() -> None:
    """Ctrl-C right after a fork returns, here: handled once the child is recorded (it is
    stopped and reaped, none is left working)."""
    fork = os.fork
    pids: list[int] = []

    def interrupted_fork() -> int:
        pid = fork()
        if pid:
            pids.append(pid)
        os.kill(os.getpid(), signal.SIGINT)  # as a terminal's Ctrl-C lands (both processes)
        return pid

    spread_module.os.fork = interrupted_fork  # type: ignore[assignment]
    try:
        _raises(KeyboardInterrupt, lambda: spread(_square, list(range(100)), 2))
    finally:
        spread_module.os.fork = fork
    assert len(pids) == 1
    _raises(ChildProcessError, lambda: os.waitpid(pids[0], os.WNOHANG))  # reaped


def child_interrupted_at_its_fork() -> None:
    """Ctrl-C in a child right after its fork: its own (it leaves; its items are worked
    here), never raised into what called spread."""
    fork = os.fork
    parent = os.getpid()

    def child_interrupted() -> int:
        pid = fork()
        if pid == 0:
            os.kill(os.getpid(), signal.SIGINT)
        return pid

    spread_module.os.fork = child_interrupted  # type: ignore[assignment]
    try:
        assert spread(_square, list(range(100)), 2) == [_square(x) for x in range(100)]
    finally:
        spread_module.os.fork = fork
    assert os.getpid() == parent


def unpicklable_results() -> None:
    forks = Forks()

    def unpicklable(x: int) -> object:
        return lambda: x  # a child cannot send this back

    got = spread(unpicklable, list(range(50)), 2)
    assert [f() for f in got] == list(range(50))  # type: ignore[operator]
    assert forks.pids and forks.all_reaped()


def _alone(make: Callable[[], list[object]]) -> None:
    forks = Forks()
    assert make() == [[_square(x) for x in [1, 2, 3] * 30]]
    assert forks.pids == []


def alone_when_sigchld_is_ignored() -> None:
    """The kernel reaps children at once: a child's id could be another's by the time it
    is signalled. No child, the same results."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    _alone(lambda: [spread(_square, [1, 2, 3] * 30, 2)])


def alone_when_sigchld_is_handled() -> None:
    signal.signal(signal.SIGCHLD, lambda *_: None)
    _alone(lambda: [spread(_square, [1, 2, 3] * 30, 2)])


def alone_beside_a_thread() -> None:
    """Another thread, one of threading's or one started without it (as pytest-xdist's):
    a signal meant for this one could land there."""
    import _thread

    stop = threading.Event()
    _thread.start_new_thread(stop.wait, ())
    time.sleep(0.05)
    try:
        _alone(lambda: [spread(_square, [1, 2, 3] * 30, 2)])
    finally:
        stop.set()


def alone_in_another_thread() -> None:
    got: list[object] = []
    worker = threading.Thread(target=lambda: got.append(spread(_square, [1, 2, 3] * 30, 2)))

    def run() -> list[object]:
        worker.start()
        worker.join()
        return got

    _alone(run)
