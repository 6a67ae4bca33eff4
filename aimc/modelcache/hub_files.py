"""A few small files of one model repository read from the hub into memory, bounded.

Takes a repository id and the hub the environment names when the read starts
(``HF_ENDPOINT``, default ``https://huggingface.co``; ``HF_TOKEN``, else
``HUGGING_FACE_HUB_TOKEN``, as huggingface_hub reads them from the environment); hands on a
file's bytes (the whole file up to a bound, or the first bytes of it: a safetensors
header) and the commit the hub named for the repository's ``main`` (``X-Repo-Commit``), or
one of aimc's errors. Nothing is written: no cache, no token, no ref.

The rules are ``cache download``'s: every request goes through
:class:`aimc.modelcache.hub_guard.Guard` (credentials only to ``HF_ENDPOINT``'s own origin,
answers uncompressed, ``X-Repo-Commit`` a commit hash and the same in every answer, at most
:data:`~aimc.modelcache.hub_guard.MAX_API_BYTES` of answers in all); each file is read up
to its bound (a larger one is refused before or while its body comes); at most
:data:`MAX_REDIRECTS` redirects a request; each connect and read waits at most
:data:`TIMEOUT` seconds, and no read starts or goes on past the reader's deadline (the
caller bounds the whole in wall time: :mod:`aimc.interop._hub_facts`). Whether the hub may
be asked at all is :func:`hub_offline`'s (``HF_HUB_OFFLINE``, as huggingface_hub reads it).
``httpx2`` (huggingface_hub's HTTP client) is imported only when a read runs.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from aimc.core.diagnostics import whole_line
from aimc.core.errors import AimcError, ConfigError, NetworkError, PermissionDeniedError
from aimc.core.safety import mask, shorten
from aimc.modelcache.hub_errors import NOT_THE_HUB, first_line

__all__ = [
    "DEFAULT_ENDPOINT",
    "MAX_REDIRECTS",
    "TIMEOUT",
    "HubFiles",
    "hub_offline",
    "shown_endpoint",
    "tls_context",
]

#: The hub huggingface_hub asks when ``HF_ENDPOINT`` is not set (``constants.py``).
DEFAULT_ENDPOINT = "https://huggingface.co"
#: Seconds one connect or read may wait for the hub.
TIMEOUT = 10.0
#: Redirects one request may follow (the hub redirects a renamed repository, and a
#: large file to its CDN).
MAX_REDIRECTS = 5
#: Values of ``HF_HUB_OFFLINE`` that mean true: huggingface_hub's ``constants._is_true``.
_TRUE = frozenset({"1", "ON", "YES", "TRUE"})


def hub_offline(environ: Mapping[str, str] | None = None) -> str | None:
    """The variable that forbids asking the hub (``HF_HUB_OFFLINE=1``, else
    ``TRANSFORMERS_OFFLINE=1``, read as huggingface_hub 2.4 reads them:
    ``constants.py``, ``HF_HUB_OFFLINE``), as ``NAME=value``; None when none does."""
    env = os.environ if environ is None else environ
    name = "HF_HUB_OFFLINE" if env.get("HF_HUB_OFFLINE") else "TRANSFORMERS_OFFLINE"
    value = env.get(name) or ""
    return f"{name}={value.upper()}" if value.upper() in _TRUE else None


def _endpoint(environ: Mapping[str, str]) -> str:
    """``HF_ENDPOINT`` (trailing ``/`` removed, as huggingface_hub does), else the hub."""
    return (environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def shown_endpoint(endpoint: str) -> str:
    """``endpoint`` as aimc writes it (a recipe's comment, a message): scheme, host, port
    and path only (never a user or password), one line, masked and shortened; ``HF_ENDPOINT``
    itself when it is not an http(s) URL."""
    import httpx2  # huggingface_hub's client: loaded only when the hub is asked

    try:
        url = httpx2.URL(endpoint)
        port = f":{url.port}" if url.port else ""
        shown = f"{url.scheme}://{url.host}{port}{url.path.rstrip('/')}"
    except (httpx2.InvalidURL, TypeError, ValueError):
        return "HF_ENDPOINT"
    if url.scheme not in ("http", "https") or not url.host:
        return "HF_ENDPOINT"
    return shorten(mask(whole_line(shown)), 100)


def tls_context() -> Any:
    """The SSL context the hub's answers are verified with (certifi's CAs, or
    ``SSL_CERT_FILE``/``SSL_CERT_DIR``, as huggingface_hub's client): made once per import
    and shared by its clients, as making one takes tens of milliseconds."""
    import httpx2

    return httpx2.create_ssl_context()


class HubFiles:
    """Files of ``repo`` on the hub at one commit, read into memory (see the module).

    The first read asks for the repository's ``main`` and keeps the commit the hub names
    (:attr:`commit`); every later read asks for that commit. :attr:`unreachable` is set
    when a request could not reach the hub (no connection, a timeout), as opposed to an
    answer aimc refused. Reads may run in several threads at once.
    """

    def __init__(
        self,
        repo: str,
        deadline: float,
        environ: Mapping[str, str] | None = None,
        tls: Any = None,
    ):
        from aimc.modelcache.hub_guard import Guard

        env = os.environ if environ is None else environ
        self.repo = repo
        self.endpoint = _endpoint(env)
        self.shown = shown_endpoint(self.endpoint)
        self.deadline = deadline  # time.monotonic() past which nothing is read
        self.commit: str | None = None
        self.unreachable = False
        token = (env.get("HF_TOKEN") or env.get("HUGGING_FACE_HUB_TOKEN") or "").strip()
        self._token = token or None
        self._guard = Guard(repo, self.endpoint)
        self._lock = threading.Lock()
        self._client: Any = None
        self._tls = tls  # an SSL context to share (:func:`tls_context`); made here when None

    def _http(self) -> Any:
        """The HTTP client, made on first use (each request through the guard's hooks)."""
        import httpx2

        if self.shown == "HF_ENDPOINT":
            raise NetworkError(
                f"HF_ENDPOINT is not usable: {shorten(mask(whole_line(self.endpoint)), 80)!r} "
                "is not an http(s) URL",
                hint="unset HF_ENDPOINT for the Hugging Face hub, or name a mirror's URL",
            )
        with self._lock:
            if self._client is None:
                self._client = httpx2.Client(
                    event_hooks={
                        "request": [self._guard.on_request],
                        "response": [self._guard.on_response],
                    },
                    follow_redirects=True,
                    max_redirects=MAX_REDIRECTS,
                    verify=self._tls or tls_context(),
                )
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()

    def read(self, name: str, limit: int, first: bool = False) -> bytes | None:
        """The bytes of the file ``name`` (at most ``limit``; a larger file is refused), or
        with ``first`` its first ``limit`` bytes (asked as a byte range); None when the
        repository has no such file.

        Raises:
            NetworkError: The hub cannot be reached, took too long, or answered as the
                hub does not (no commit, too large, another range, a server error).
            PermissionDeniedError: The repository is gated or the token refused.
            ConfigError: The repository does not exist (or is private without a token).
        """
        import httpx2

        client = self._http()
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self.late()
        revision = quote(self.commit or "main", safe="")
        url = f"{self.endpoint}/{self.repo}/resolve/{revision}/{quote(name)}"
        headers = {"User-Agent": "aimc"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if first:
            headers["Range"] = f"bytes=0-{limit - 1}"
        try:
            wait = httpx2.Timeout(min(TIMEOUT, left))
            with client.stream("GET", url, headers=headers, timeout=wait) as response:
                return self._body(response, name, limit, first)
        except AimcError:
            raise
        except httpx2.TimeoutException:
            raise self.late() from None
        except httpx2.TransportError as exc:
            self.unreachable = True
            raise NetworkError(
                f"{self.shown} cannot be reached for {self.repo}: "
                f"{type(exc).__name__}: {first_line(exc)}",
                hint="check the network, a proxy and HF_ENDPOINT; --offline does not ask it",
            ) from None
        except (httpx2.HTTPError, httpx2.InvalidURL, ValueError) as exc:
            raise NetworkError(
                f"the hub's answer for {self.repo}/{name} is not usable: "
                f"{type(exc).__name__}: {first_line(exc)}",
                hint=NOT_THE_HUB,
            ) from None

    def late(self) -> NetworkError:
        """The error of a read past the deadline (the hub counts as unreachable)."""
        self.unreachable = True
        return NetworkError(
            f"{self.shown} did not answer in time for {self.repo}",
            hint="check the network and HF_ENDPOINT; --offline does not ask the hub",
        )

    def _body(self, response: Any, name: str, limit: int, first: bool) -> bytes | None:
        """The answer's bytes, once its status and commit are checked; None for a file the
        repository does not have."""
        status = response.status_code
        if status not in (200, 206):
            self._refused(response, name)
            return None  # the repository has no such file
        self._check_commit(response)
        what = f"{self.repo}/{name}"
        length = response.headers.get("Content-Length", "")
        if not first and length.isdigit() and int(length) > limit:
            raise self._too_large(what, limit)
        got = bytearray()
        for chunk in response.iter_bytes():
            if time.monotonic() > self.deadline:
                raise self.late()
            got += chunk
            if len(got) >= limit and first:
                return bytes(got[:limit])
            if len(got) > limit:
                raise self._too_large(what, limit)
        return bytes(got)

    def _too_large(self, what: str, limit: int) -> NetworkError:
        return NetworkError(
            f"the hub's {what} is larger than the {limit} bytes aimc reads of it",
            hint=NOT_THE_HUB,
        )

    def _check_commit(self, response: Any) -> None:
        """Keep the commit the first answer names (the guard checked its form and that
        every later answer names the same); an answer naming none is refused."""
        if self.commit is not None:
            return
        named = [r.headers.get("X-Repo-Commit") for r in (*response.history, response)]
        commit = next((c for c in named if c), None)
        if commit is None:
            raise NetworkError(
                f"the hub named no commit for {self.repo} (X-Repo-Commit)", hint=NOT_THE_HUB
            )
        with self._lock:
            self.commit = self._guard.commit = commit

    def _refused(self, response: Any, name: str) -> None:
        """Nothing for a file the repository lacks (404); else the error the answer says."""
        status, code = response.status_code, response.headers.get("X-Error-Code", "")
        repo = self.repo
        if code == "GatedRepo":
            raise PermissionDeniedError(
                f"{repo} is gated: access needs a token of an account that accepted its terms",
                hint="export HF_TOKEN=... (it is read from the environment, never stored)",
            )
        if code in ("RepoNotFound", "RevisionNotFound") or (status == 401 and not self._token):
            raise ConfigError(
                f"{repo} was not found on the hub ({status})",
                hint="check the id; private repositories need HF_TOKEN",
            )
        if status in (401, 403):
            raise PermissionDeniedError(
                f"the hub refused the credentials for {repo} ({status}): check HF_TOKEN",
                hint="HF_TOKEN (read from the environment) must be a valid token of an "
                "account with access to the repository",
            )
        if status != 404:  # 404 without a code: EntryNotFound, the file is not there
            raise NetworkError(f"the hub answered {status} for {repo}/{name}", hint=NOT_THE_HUB)
