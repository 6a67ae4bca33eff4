"""The endpoint of a server: is the port taken, does ``/health`` answer, is the model
listed. Every request is bounded (1 MiB of body, the whole exchange ``timeout`` + 1 s) and
carries ``Authorization: Bearer $VLLM_API_KEY`` when the key is set (:func:`api_key`)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
from collections.abc import Mapping
from typing import Any

from aimc.core.errors import ConfigError

__all__ = ["API_KEY_ENV", "api_key", "http_get", "is_ready", "port_in_use", "probe"]


def port_in_use(port: int) -> bool:
    """True when something already listens on ``port`` on this machine."""
    for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(0.2)
            try:
                if s.connect_ex((address, port)) == 0:
                    return True
            except OSError:
                continue
    return False


#: The variable that holds the API key of a vLLM server (vLLM 0.32 ``vllm/envs.py``; its
#: ``--api-key`` flag wins over it, and aimc never writes that flag: a secret).
API_KEY_ENV = "VLLM_API_KEY"
#: What a bearer token can be so that vLLM matches it: Starlette reads header bytes as
#: Latin-1 and the HTTP parser strips surrounding blanks, while vLLM hashes the key's UTF-8
#: (``vllm/entrypoints/serve/middleware/authenticate.py``): printable ASCII, no blank at an
#: end, and nothing a header line cannot carry.
_BEARER = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,4094}[\x21-\x7e])?")
#: HTTP statuses of a server that wants a key it was not given.
_UNAUTHORIZED = (401, 403)


def api_key(env: Mapping[str, str] | None = None) -> str | None:
    """The API key a server started with ``env`` (default: this process's environment)
    requires, to send as ``Authorization: Bearer``: ``$VLLM_API_KEY``, or None when it is
    unset or empty. The key is a pass-through secret: it is never written or shown.

    Raises:
        ConfigError: It is not a key that can be sent in an HTTP header (the message never
            holds the value).
    """
    key = (os.environ if env is None else env).get(API_KEY_ENV) or None
    if key is not None and not _BEARER.fullmatch(key):
        raise ConfigError(
            f"{API_KEY_ENV} cannot be sent as an HTTP bearer token: it must be printable "
            "ASCII, at most 4096 characters, without a space at either end",
            hint=f"set {API_KEY_ENV} to the key without surrounding spaces or other "
            "characters (the server could never match it)",
        )
    return key


def http_get(url: str, timeout: float = 1.0, api_key: str | None = None) -> tuple[int, bytes]:
    """GET ``url``: (status, at most 1 MiB of body), or (0, b"") when there is no answer;
    with ``api_key``, as ``Authorization: Bearer <key>``.

    ``timeout`` bounds each socket operation, and the whole exchange ends ``timeout`` + 1 s
    after it began: a server that trickles one byte at a time resets the socket timeout on
    every read, so at the deadline its connections are shut, which ends any read (and a
    status or header line that never ends) in progress. Any malformed answer is "no
    answer", never an error of aimc's.
    """
    # Imported here: urllib.request is slow to import, and 'compile' imports this module.
    import http.client
    import threading
    import urllib.error
    import urllib.request

    sockets: list[socket.socket] = []

    class Connection(http.client.HTTPConnection):
        def connect(self) -> None:
            super().connect()
            sockets.append(self.sock)

    class TLSConnection(http.client.HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            sockets.append(self.sock)

    class Plain(urllib.request.HTTPHandler):
        def http_open(self, req: Any) -> Any:
            return self.do_open(Connection, req)

    class TLS(urllib.request.HTTPSHandler):
        def https_open(self, req: Any) -> Any:
            options = {"context": getattr(self, "_context", None)}
            if hasattr(self, "_check_hostname"):
                options["check_hostname"] = self._check_hostname
            return self.do_open(TLSConnection, req, **options)

    def shut() -> None:
        for sock in list(sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(timeout + 1, shut)
    watchdog.daemon = True
    watchdog.start()
    try:
        opener = urllib.request.build_opener(Plain, TLS)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        request = urllib.request.Request(url, headers=headers)
        with opener.open(request, timeout=timeout) as response:
            return int(response.status), response.read(1 << 20)
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException):
        return 0, b""
    finally:
        watchdog.cancel()


def _healthy(port: int, health_path: str, timeout: float = 1.0, api_key: str | None = None) -> bool:
    return http_get(f"http://127.0.0.1:{port}{health_path}", timeout, api_key)[0] == 200


def _listing(
    port: int, model: str, timeout: float = 1.0, api_key: str | None = None
) -> tuple[bool, int]:
    """(``/v1/models`` lists ``model``, its HTTP status: 0 for no answer); listed without
    asking when no model is named (a command run through the API may serve no model list)."""
    if not model:
        return True, 200
    status, body = http_get(f"http://127.0.0.1:{port}/v1/models", timeout, api_key)
    if status != 200:
        return False, status
    try:
        ids = [m.get("id") for m in json.loads(body).get("data", [])]
    except (ValueError, AttributeError, TypeError, RecursionError):
        return False, status
    return model in ids, status


def _lists(port: int, model: str, timeout: float = 1.0, api_key: str | None = None) -> bool:
    """``/v1/models`` lists ``model`` (or no model is named: a command run through the API
    may serve no model list)."""
    return _listing(port, model, timeout, api_key)[0]


def probe(
    port: int, health_path: str, model: str, timeout: float = 1.0, api_key: str | None = None
) -> str:
    """What the endpoint answers, each request within ``timeout`` s and sent with
    ``api_key`` (:func:`api_key`) when given: ``ready`` (``/health`` answers 200 and
    ``/v1/models`` lists ``model``), ``unauthorized`` (``/health`` answers but
    ``/v1/models`` is 401 or 403: the server wants an API key that was not sent, or not its
    own; vLLM guards ``/v1/*`` and leaves ``/health`` open), ``healthy`` (not listed yet)
    or ``down``."""
    if not _healthy(port, health_path, timeout, api_key):
        return "down"
    listed, status = _listing(port, model, timeout, api_key)
    if listed:
        return "ready"
    return "unauthorized" if status in _UNAUTHORIZED else "healthy"


def is_ready(
    port: int, health_path: str, model: str, timeout: float = 1.0, api_key: str | None = None
) -> bool:
    """``/health`` answers 200 and ``/v1/models`` lists ``model`` (when one is named: a
    command run through the API may serve no model list), each within ``timeout`` s."""
    return probe(port, health_path, model, timeout, api_key) == "ready"
