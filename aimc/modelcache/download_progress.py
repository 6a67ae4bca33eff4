"""Download progress on stderr: a bar on a terminal, periodic records otherwise.

Takes a model id, the bytes to fetch and the cache's ``blobs`` folder it is fetched into;
watches the bytes arriving there (finished blobs and ``.incomplete`` files) from a thread,
so it does not depend on how ``huggingface_hub`` reports progress. On a terminal it redraws
one line (``\\r``); otherwise it reports every :data:`INTERVAL` seconds through
:func:`aimc.core.log.note` (with ``LOG_FORMAT=json`` one JSON record a line, with a
``progress`` object: ``model``, ``done_bytes``, ``total_bytes``, ``percent``).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

from aimc.core.diagnostics import whole_line
from aimc.core.log import note
from aimc.core.safety import mask
from aimc.modelcache.cache import human_size

__all__ = ["INTERVAL", "Progress"]

#: Seconds between two progress records when stderr is not a terminal.
INTERVAL = 1.0


def _bytes_in(folder: Path, skip: frozenset[str]) -> int:
    total = 0
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name in skip or not entry.is_file(follow_symlinks=False):
                    continue
                try:
                    total += entry.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
    except OSError:
        return 0
    return total


class Progress:
    """Context manager reporting the bytes of ``total`` received into ``blobs``."""

    def __init__(self, model: str, total: int, blobs: Path, enabled: bool = True) -> None:
        self.model = mask(whole_line(model))
        self.total = total
        self.blobs = blobs
        self.enabled = enabled
        self.terminal = sys.stderr.isatty()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._skip: frozenset[str] = frozenset()
        self._start = 0.0

    def done(self) -> int:
        """Bytes received so far (at most ``total``)."""
        return min(_bytes_in(self.blobs, self._skip), self.total)

    def _report(self, final: bool = False) -> None:
        done = self.total if final else self.done()
        percent = round(100 * done / self.total, 1) if self.total else 100.0
        elapsed = max(time.monotonic() - self._start, 1e-6)
        rate = human_size(int(done / elapsed)) + "/s"
        text = f"{self.model}: {human_size(done)} of {human_size(self.total)} ({percent}%) {rate}"
        if self.terminal:
            width = 30
            filled = int(width * percent / 100)
            bar = "#" * filled + "-" * (width - filled)
            sys.stderr.write(f"\r[{bar}] {text}" + ("\n" if final else ""))
            sys.stderr.flush()
            return
        note(
            f"downloading {text}",
            progress={
                "model": self.model,
                "done_bytes": done,
                "total_bytes": self.total,
                "percent": percent,
            },
        )

    def _run(self) -> None:
        interval = 0.2 if self.terminal else INTERVAL
        while not self._stop.wait(interval):
            self._report()

    def __enter__(self) -> Progress:
        if self.enabled:
            # Blobs already complete are not part of this download; a part file being
            # resumed is (its bytes count from the start, like a resumed bar's initial).
            try:
                names = os.listdir(self.blobs)
            except OSError:
                names = []
            self._skip = frozenset(n for n in names if not n.endswith(".resume.incomplete"))
            self._start = time.monotonic()
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=5)
        if kind is None:
            self._report(final=True)
        elif self.terminal:
            sys.stderr.write("\n")
