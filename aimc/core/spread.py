"""Work spread over the CPUs: ``work`` over many items in this process and forked children.

Takes a pure, CPU-bound ``work`` and its items (:func:`spread`); hands on the results in
the items' order, as ``[work(item) for item in items]`` would. ``validate`` of a large
repository is this (issue 26): a pool of :mod:`concurrent.futures` cost its imports and
start (~25 ms), a process more than the CPUs, and the pickling of every item; here the
children inherit the items (``fork``), this process takes a share itself, and only results
travel, once per child, at its end.

- **Shares.** The items are cut into at most 255 slices; a pipe holds one byte per slice,
  written before the first fork, and each process reads one byte at a time (one ``read``
  of one byte: no two processes take the same slice) until the pipe is empty, so a
  slower CPU takes fewer slices.
- **Results.** Each child pickles what it made (by item index) into a pipe of its own when
  it is out of slices, and leaves with :func:`os._exit` (no ``atexit``, no flushing of
  buffers it inherited: nothing this process meant to print is printed twice). An item
  whose result does not come back (``work`` raised there, the child died) is worked here
  afterwards, so an error is raised here, as without children.
- **Trust.** It forks only where it alone can reap its children: one thread (a signal
  meant for it cannot land in another, and a fork copies no other) and SIGCHLD at its
  default (ignored, the kernel reaps children at once; a handler may reap them itself:
  either way a child's id could be another process's by the time it is signalled).
  Elsewhere it works alone. Signals are held (blocked) from each fork until the child is
  recorded, while one is reaped and forgotten, and through the clean-up, so an interrupt
  never leaves a child unrecorded or a recorded one reaped, nor cuts the clean-up short;
  a child takes them back before it works. A child is signalled (SIGKILL) only when this
  process leaves early (an error, an interrupt) and only while it is unreaped (its id
  cannot be another's); every child is reaped before :func:`spread` returns or raises. A
  process killed outright (SIGKILL, SIGTERM without a handler) cleans nothing up: its
  children finish their shares and leave (their results' pipe is gone). An error in this
  process's own share is raised after the others' shares, in the items' order: the first
  item's, as without children.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn, TypeVar

__all__ = ["MAX_SLICES", "spread"]

_T = TypeVar("_T")
_R = TypeVar("_R")

#: Slices of the items at most (one byte each in the pipe, far below its buffer).
MAX_SLICES = 255
#: Every signal: what :func:`_held` holds.
_SIGNALS = signal.valid_signals()


def spread(work: Callable[[_T], _R], items: Sequence[_T], processes: int) -> list[_R]:
    """``[work(item) for item in items]``, worked by ``processes`` processes: this one and
    ``processes - 1`` forked children (fewer when there are fewer slices or a fork fails,
    none where it may not fork: :func:`_may_fork`). ``work`` must be pure: a child's
    changes to its memory are lost."""
    slices = _slices(len(items), processes)
    children = min(processes, len(slices)) - 1
    if children < 1 or not _may_fork():
        return [work(item) for item in items]
    # Deferred: only a large check pickles (a one-file validate does not import it).
    import pickle

    entry_mask = signal.pthread_sigmask(signal.SIG_BLOCK, ())  # (changes nothing)
    forked: dict[int, int] = {}  # child's process id -> the read end of its results
    opened: list[int] = []  # the slices pipe's ends still open
    results: dict[int, _R] = {}
    try:
        with _held():  # each end recorded as it is made
            opened += os.pipe()
            os.write(opened[1], bytes(range(len(slices))))
            os.close(opened.pop())  # before any fork: the pipe ends once its bytes are taken
        take = opened[0]
        for _ in range(children):
            if not _fork(work, items, slices, take, forked, pickle.dumps):
                break
        with contextlib.suppress(Exception):  # its item is worked again below, in order
            _work_slices(work, items, slices, take, results)
        for pid in list(forked):
            results.update(_collect(forked[pid], pickle.loads))
            with _held():  # reaped and forgotten together
                os.waitpid(pid, 0)
                os.close(forked.pop(pid))
    finally:
        # Signals held while what is left is closed, stopped and reaped. The first call
        # holds them: no call before it here, where a signal could cut in; one that came
        # just before is handled after it (no other can), and raised once all is done.
        stopped: BaseException | None = None
        try:
            signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        except BaseException as exc:
            stopped = exc
        _clean_up(opened, forked)
        signal.pthread_sigmask(signal.SIG_SETMASK, entry_mask)  # one held is handled here
        if stopped is not None:
            raise stopped
    # What a child did not send back (an error there, or it died), and what this process
    # failed at, worked here in order: an error is the first item's, as without children.
    return [results[i] if i in results else work(item) for i, item in enumerate(items)]


def _may_fork() -> bool:
    """Whether children can be forked and reaped here alone: ``fork`` and signal masks,
    one thread (:func:`_one_thread`), SIGCHLD at its default action."""
    return (
        hasattr(os, "fork")
        and hasattr(signal, "pthread_sigmask")
        and threading.current_thread() is threading.main_thread()
        and _one_thread()
        and signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL
    )


def _one_thread() -> bool:
    """Whether this process runs one thread: as the kernel counts them where it says
    (``/proc/self/task``: also a thread a library started without :mod:`threading`, such
    as pytest-xdist's), else as Python does."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return threading.active_count() == 1 and _thread._count() == 0


@contextlib.contextmanager
def _held() -> Iterator[set[int | signal.Signals]]:
    """Every signal held (blocked) inside, taken back after (one that came meanwhile is
    handled then); yields the mask to take back (a child's, :func:`_child`)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, ())
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        yield old
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _fork(
    work: Callable[[_T], Any],
    items: Sequence[_T],
    slices: list[range],
    take: int,
    forked: dict[int, int],
    dumps: Callable[[Any], bytes],
) -> bool:
    """Fork a child that works slices from ``take``, recorded in ``forked`` before any
    signal is handled; False when it cannot be forked."""
    with _held() as mask:
        back, out = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(back)
            os.close(out)
            return False
        if pid == 0:
            _child(work, items, slices, take, (back, out), dumps, mask)  # never returns
        os.close(out)
        forked[pid] = back
    return True


def _slices(count: int, processes: int) -> list[range]:
    """``range(count)`` cut into up to :data:`MAX_SLICES` runs, eight per process."""
    number = max(1, min(MAX_SLICES, processes * 8, count))
    size, extra = divmod(count, number)
    out, start = [], 0
    for k in range(number):
        stop = start + size + (k < extra)
        out.append(range(start, stop))
        start = stop
    return out


def _work_slices(
    work: Callable[[_T], _R],
    items: Sequence[_T],
    slices: list[range],
    take: int,
    results: dict[int, _R],
) -> None:
    """Work the slices whose bytes this process reads from ``take``, until it is empty,
    into ``results`` (by item index); an error of ``work`` propagates."""
    while byte := os.read(take, 1):
        for i in slices[byte[0]]:
            results[i] = work(items[i])


def _child(
    work: Callable[[_T], Any],
    items: Sequence[_T],
    slices: list[range],
    take: int,
    pipe: tuple[int, int],
    dumps: Callable[[Any], bytes],
    mask: set[int | signal.Signals],
) -> NoReturn:
    """A child's life: take back the signal ``mask``, work slices, send what it made
    (also when ``work`` raised or it was interrupted: the parent works the rest) on
    ``pipe``'s write end, leave without running anything of the parent's."""
    made: dict[int, Any] = {}
    try:
        with contextlib.suppress(BaseException):
            os.close(pipe[0])
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            _work_slices(work, items, slices, take, made)
        data = dumps(made)
        view = memoryview(data)
        while view:
            view = view[os.write(pipe[1], view) :]
    finally:
        os._exit(0)


def _collect(back: int, loads: Callable[[bytes], Any]) -> dict[int, Any]:
    """The results a child sent on ``back`` ({} when it sent nothing whole)."""
    chunks = []
    while chunk := os.read(back, 1 << 16):
        chunks.append(chunk)
    try:
        return dict(loads(b"".join(chunks)))
    except Exception:  # cut short: the child died while sending
        return {}


def _clean_up(opened: list[int], forked: dict[int, int]) -> None:
    """Close ``opened`` and stop and reap the children still in ``forked`` (signals held)."""
    while opened:
        os.close(opened.pop())
    _end(forked)


def _end(forked: dict[int, int]) -> None:
    """Stop and reap the children in ``forked`` (signals held; this process leaves
    early): one still running, and so unreaped, is killed; one reaped is not signalled."""
    while forked:
        pid, back = forked.popitem()
        os.close(back)
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # reaped already: its id may be another process's
            continue
        if done == 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
