"""Stop signals while a server starts: noted, then acted on between the runner's polls.

Ctrl-C, SIGTERM and SIGHUP that arrive while the runner waits for readiness must not cut
its cleanup short (a half-stopped process group, a record left behind). While a
:class:`SignalGuard` is active they are noted instead of acted on; the runner calls
:meth:`SignalGuard.check` between polls, which raises :class:`Interrupted`, and the runner
stops the server before the exception goes on. The command line turns it into exit code
128 + the signal.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

__all__ = ["STOP_SIGNALS", "Interrupted", "SignalGuard"]

#: Signals that stop a server still starting, as Ctrl-C does.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived while waiting for readiness; the server was stopped.

    Attributes:
        signum: The signal (SIGINT, SIGTERM or SIGHUP).
    """

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class SignalGuard:
    """While active, SIGINT, SIGTERM and SIGHUP are noted instead of acted on at once.

    The wait loop checks :attr:`signum` between polls, so cleanup is never cut short by a
    signal. Signals that were ignored stay ignored; outside the main thread nothing is
    installed (Python allows handlers only there).
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._saved: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in STOP_SIGNALS:
            previous = signal.getsignal(sig)
            if previous is None or previous == signal.SIG_IGN:
                continue
            self._saved[sig] = previous
            signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._saved.items():
            signal.signal(sig, previous)
        self._saved.clear()

    def check(self) -> None:
        """Raises: Interrupted: A stop signal arrived."""
        if self.signum is not None:
            raise Interrupted(self.signum)
