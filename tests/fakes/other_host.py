"""A second local HTTP server standing for "another host" than the hub (tests only;
127.0.0.1): a CDN, a Xet refresh route or an API answer a hostile hub redirects to.

It records every request it receives (method, path with query, headers) in ``received``
and answers each with ``answer(method, path)``: a status, headers and a body, the body an
iterable of chunks so that a test can send far more than announced (bounded by the test:
a sender that stops after ten times the size, never an endless one).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.hub import ServedInThread


@dataclass(frozen=True)
class Received:
    """One request as the other host saw it."""

    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]


Answer = tuple[int, dict[str, str], Iterable[bytes]]


class OtherHost(ServedInThread):
    """A threaded HTTP server on 127.0.0.1 with a free port (another origin than the hub's)."""

    def __init__(self, answer: Callable[[str, str], Answer] | None = None) -> None:
        self.answer = answer or (lambda method, path: (404, {}, [b"not here"]))
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://localhost:{self._server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # the body ends when the connection closes

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_HEAD(self) -> None:
                self._serve()

            def do_GET(self) -> None:
                self._serve()

            def _serve(self) -> None:
                with host._lock:
                    host.received.append(Received(self.command, self.path, dict(self.headers)))
                status, headers, body = host.answer(self.command, self.path)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if self.command != "GET":
                    return
                try:
                    for chunk in body:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return

        return Handler
