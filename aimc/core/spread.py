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
- **Trust.** It signals only its own children, forked here and not yet reaped (an unreaped
  child's id cannot be another process's), and only when this process leaves early (an
  error or an interrupt while they work); every child is reaped before it returns or
  raises. No child outlives it.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

__all__ = ["MAX_SLICES", "spread"]

_T = TypeVar("_T")
_R = TypeVar("_R")

#: Slices of the items at most (one byte each in the pipe, far below its buffer).
MAX_SLICES = 255


def spread(work: Callable[[_T], _R], items: Sequence[_T], processes: int) -> list[_R]:
    """``[work(item) for item in items]``, worked by ``processes`` processes: this one and
    ``processes - 1`` forked children (fewer when there are fewer slices, none without
    ``fork``). ``work`` must be pure: a child's changes to its memory are lost."""
    slices = _slices(len(items), processes)
    children = min(processes, len(slices)) - 1
    if children < 1 or not hasattr(os, "fork"):
        return [work(item) for item in items]
    # Deferred: only a large check pickles (a one-file validate does not import it).
    import pickle

    take, give = os.pipe()
    os.write(give, bytes(range(len(slices))))
    os.close(give)
    forked: dict[int, int] = {}  # child's process id -> the read end of its results
    results: dict[int, _R] = {}
    try:
        for _ in range(children):
            back, out = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: never returns
                os.close(back)
                _child(work, items, slices, take, out, pickle.dumps)
            os.close(out)
            forked[pid] = back
        _work_slices(work, items, slices, take, results)
        for pid, back in list(forked.items()):
            results.update(_collect(back, pickle.loads))
            os.close(back)
            del forked[pid]
            os.waitpid(pid, 0)
    finally:
        os.close(take)
        _end(forked)
    # What a child did not send back (an error there, or it died), worked here.
    return [results[i] if i in results else work(item) for i, item in enumerate(items)]


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
    out: int,
    dumps: Callable[[Any], bytes],
) -> None:
    """A child's life: work slices, send what it made (also when ``work`` raised: the
    parent works the rest), leave without running anything of the parent's."""
    made: dict[int, Any] = {}
    try:
        with contextlib.suppress(BaseException):
            _work_slices(work, items, slices, take, made)
        data = dumps(made)
        view = memoryview(data)
        while view:
            view = view[os.write(out, view) :]
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


def _end(forked: dict[int, int]) -> None:
    """Stop and reap the children still running (this process leaves early)."""
    for pid, back in forked.items():
        os.close(back)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
