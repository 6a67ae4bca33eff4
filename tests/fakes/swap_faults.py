"""Fault injection for the artifact writer: kill it before each file-system step in turn.

Usage: ``python -m tests.fakes.swap_faults DIR OLD.json NEW.json SIGNAL FALLBACK``.

For N = 1, 2, ... a forked child writes NEW over a folder holding OLD and sends itself
SIGNAL just before its N-th file-system call (rename, mkdir, rmdir, chmod, link, file
write, tree removal, the exchange); with FALLBACK=1 the one-call exchange is unavailable,
so the two-rename path runs. After each child the folder's state is read (``old``,
``new``, ``missing`` or ``mixed``), then a clean write of NEW runs and the siblings it
leaves are listed. Prints one JSON list of {n, exit, state, left_by_child, rewrite_ok,
leftovers, done}; stops after the
first child that finished without reaching its N.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import sys
from typing import Any

import aimc.core.write as w


def _read(folder: pathlib.Path) -> dict[str, str] | None:
    if not folder.is_dir():
        return None
    return {p.name: p.read_text() for p in folder.iterdir()}


def _child(out: pathlib.Path, new: dict[str, str], n: int, sig: int, fallback: bool) -> None:
    count = [0]

    def tick() -> None:
        count[0] += 1
        if count[0] == n:
            os.kill(os.getpid(), sig)

    def wrap(owner: Any, name: str) -> None:
        real = getattr(owner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            tick()
            return real(*args, **kwargs)

        setattr(owner, name, call)

    if fallback:
        w._exchange = lambda a, b: False  # type: ignore[assignment]
    for name in ("rename", "mkdir", "rmdir", "chmod", "link", "unlink"):
        wrap(os, name)
    wrap(pathlib.Path, "write_text")
    wrap(shutil, "rmtree")
    wrap(w, "_exchange")
    try:
        w.write_artifacts(out, new)
    except KeyboardInterrupt:
        os._exit(130)
    os._exit(0 if count[0] < n else 3)


def main() -> None:
    base, old_file, new_file, sig_text, fallback = sys.argv[1:6]
    old = json.loads(pathlib.Path(old_file).read_text())
    new = json.loads(pathlib.Path(new_file).read_text())
    root = pathlib.Path(base)
    results = []
    for n in range(1, 400):
        parent = root / f"case-{n}"
        parent.mkdir()
        out = parent / "build"
        w.write_artifacts(out, old)
        pid = os.fork()
        if pid == 0:
            _child(out, new, n, int(sig_text), fallback == "1")
        _, status = os.waitpid(pid, 0)
        seen = _read(out)
        state = (
            "old"
            if seen == old
            else "new"
            if seen == new
            else "missing"
            if seen is None
            else "mixed"
        )
        before = sorted(p.name for p in parent.iterdir() if p.name != "build")
        w.write_artifacts(out, new)
        after = _read(out) == new
        leftovers = sorted(p.name for p in parent.iterdir() if p.name != "build")
        finished = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        results.append(
            {
                "n": n,
                "exit": status,
                "state": state,
                "left_by_child": before,
                "rewrite_ok": after,
                "leftovers": leftovers,
                "done": finished,
            }
        )
        shutil.rmtree(parent)
        if finished:
            break
    print(json.dumps(results))


if __name__ == "__main__":
    main()
