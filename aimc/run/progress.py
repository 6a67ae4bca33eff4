"""Progress of a starting server: its phase, read from its log, shown while ``run`` waits.

Takes the lines a server writes to its log (and whether ``/health`` answers yet) and hands
on the phase it is in, in the order vLLM 0.32 goes through them (each backend's log lines
that enter a phase are its :attr:`~aimc.backends.Backend.phase_markers`):

====================  ==================================================================
phase                 entered on a log line holding (vLLM 0.32's own messages)
====================  ==================================================================
starting              (the first phase: the process runs)
loading weights       ``Starting to load model``, ``Loading safetensors checkpoint``,
                      ``Loading weights took``, ``Model loading took``
profiling memory      ``Memory profiling takes``, ``KV cache size:``, ``GiB for KV cache``,
                      ``Available KV cache memory``
capturing graphs      ``Capturing CUDA graphs``, ``Graph capturing finished``,
                      ``Warming up model``, ``Compiling a graph``
health ok             (``/health`` answered 200; the model is not listed yet)
model listed          (``/v1/models`` lists the model: ready)
====================  ==================================================================

A phase never goes back (a late ``Loading weights`` line of another worker keeps the
later phase). :class:`StartWatch` reads the log as it grows (a bounded amount per poll, a
line cut at :data:`LINE_MAX` characters, any bytes) and reports each phase entered once, in
order (several in one poll included),
either on a terminal as one live status line (elapsed time, phase, the last log line) on
stderr, or as a note (a ``LOG_FORMAT`` record) on stderr. Nothing goes to stdout. The
last line is shown masked (:func:`aimc.core.safety.mask`) with control characters removed, so
a log can neither leak a token nor move the terminal's cursor.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from aimc.backends import BACKENDS
from aimc.core.log import note
from aimc.core.safety import mask

__all__ = ["PHASES", "StartWatch", "phase_of", "printable"]

PHASES = (
    "starting",
    "loading weights",
    "profiling memory",
    "capturing graphs",
    "health ok",
    "model listed",
)

#: Longest log line kept (characters); the rest of a longer line is dropped.
LINE_MAX = 4096
#: Most bytes of log read per poll: a server that writes faster is skipped ahead.
READ_MAX = 1 << 20

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def phase_of(line: str) -> str | None:
    """The phase a log line announces, or None."""
    for phase in PHASES:
        for entry in BACKENDS.values():
            if any(m in line for m in entry.phase_markers.get(phase, ())):
                return phase
    return None


def printable(text: str, limit: int = 200) -> str:
    """``text`` safe to show on one terminal line: secrets masked, control characters
    (escape sequences, carriage returns, bidi overrides) replaced by spaces, cut to
    ``limit`` characters."""

    return _CONTROL.sub(" ", mask(text[: limit * 4]))[:limit].strip()


class StartWatch:
    """Follows a starting server's log and reports its phase.

    Call it as the runner's ``progress`` callback (elapsed seconds, the log file, whether
    ``/health`` answers) and :meth:`done` once the model is listed.

    Args:
        terminal: The stream of the live status line (a terminal), or None for notes.
        note: Reports a phase change when there is no terminal: (message, phase, elapsed).
    """

    def __init__(
        self,
        terminal: TextIO | None = None,
        note: Callable[[str, str, float], None] | None = None,
    ):
        self.terminal = terminal
        self._note = note
        self.phase = "starting"
        self.last_line = ""
        self._offset = 0
        self._partial = b""
        self._pending: list[str] = ["starting"]  # entered, not reported yet
        self._drawn = False
        self._log: Path | None = None

    # --- reading ------------------------------------------------------------------------

    def _read(self, log: Path) -> list[str]:
        try:
            fd = os.open(log, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return []
        try:
            size = os.fstat(fd).st_size
            if size < self._offset:  # truncated: start again
                self._offset, self._partial = 0, b""
            if size - self._offset > READ_MAX:
                self._offset, self._partial = size - READ_MAX, b""
            os.lseek(fd, self._offset, os.SEEK_SET)
            data = os.read(fd, READ_MAX)
        except OSError:
            return []
        finally:
            os.close(fd)
        self._offset += len(data)
        # A progress bar redraws with '\r': each redraw is a line of its own.
        parts = (self._partial + data).replace(b"\r", b"\n").split(b"\n")
        self._partial = parts.pop()[:LINE_MAX]
        return [p[:LINE_MAX].decode("utf-8", "replace") for p in parts]

    def feed(self, lines: list[str]) -> None:
        """Take log lines: the phase they announce, and the last non-empty one."""
        for line in lines:
            phase = phase_of(line)
            if phase is not None:
                self._advance(phase)
            if line.strip():
                self.last_line = line

    def _advance(self, phase: str) -> None:
        if PHASES.index(phase) > PHASES.index(self.phase):
            self.phase = phase
            self._pending.append(phase)

    # --- reporting ------------------------------------------------------------------------

    def __call__(self, elapsed: float, log: Path, healthy: bool) -> None:
        self._log = log
        self.feed(self._read(log))
        if healthy:
            self._advance("health ok")
        self._report(elapsed)

    def done(self, elapsed: float, log: Path | None = None) -> None:
        """The model is listed (so ``/health`` answered): the phases the log (``log``, else
        the one polled) went through since the last poll, then the last phase; ends the
        status line."""
        log = log or self._log
        if log is not None:
            self.feed(self._read(log))
        self._advance("health ok")
        self._advance("model listed")
        self._report(elapsed)
        self.close()

    def close(self) -> None:
        """End the status line (if one was drawn) so that what follows starts a line."""
        if self.terminal is not None and self._drawn:
            self.terminal.write("\n")
            self.terminal.flush()
            self._drawn = False

    def _report(self, elapsed: float) -> None:
        if self.terminal is not None:
            self._draw(elapsed)
        elif self._note is not None:
            # Each phase once, in order, even when one poll went past several.
            for phase in self._pending:
                self._note(f"server phase: {phase} ({elapsed:.0f} s)", phase, elapsed)
        self._pending.clear()

    def _draw(self, elapsed: float) -> None:
        assert self.terminal is not None
        width = max(shutil.get_terminal_size((100, 20)).columns - 1, 20)
        head = f"[{elapsed:5.0f}s] {self.phase}"
        text = f"{head} | {printable(self.last_line, width)}" if self.last_line else head
        self.terminal.write("\r" + text[:width].ljust(width))
        self.terminal.flush()
        self._drawn = True


def for_stderr(fmt: str) -> StartWatch:
    """The watch ``run`` and ``launch`` use: a status line when stderr is a terminal (and
    the output is not ``--format json``), else phase changes as notes (``LOG_FORMAT``)."""
    if fmt != "json" and sys.stderr.isatty():
        return StartWatch(terminal=sys.stderr)

    def phase_note(message: str, phase: str, elapsed: float) -> None:
        note(message, phase=phase, elapsed_s=round(elapsed, 1))

    return StartWatch(note=phase_note)
