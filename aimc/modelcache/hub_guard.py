"""Every request of a download bounded, and credentials only to the hub's own host.

``huggingface_hub`` makes most of a download's requests itself (model info, tree listing
pages, each file's HEAD and GET, redirects). While :func:`guarded` is active, all of them go
through one ``httpx2`` client that aimc builds (``huggingface_hub.set_client_factory``; the
same settings and request hook as huggingface_hub's default client) with two hooks that
see every request, redirect hops included:

- **Credentials** (``Authorization``) go only to the hub's own origin (``HF_ENDPOINT``:
  scheme, host and port); every other host (a CDN, a host a redirect names) gets none.
- **Bounds.** At most :data:`MAX_API_REQUESTS` requests to the hub's API (an endless
  listing's pages) and :data:`MAX_REQUESTS` in all; answers other than files share
  :data:`MAX_API_BYTES` (model info, listings, errors); a file's answer (its ``resolve``
  URL, or where the hub's answer for it redirects) is cut at the size the listing
  announced for it (less the ``Range`` start), which the free-space check passed; a
  ``Content-Length`` larger than what is left is refused before its body. Answers are
  asked for uncompressed (``Accept-Encoding: identity``) and a compressed one is refused,
  so the bytes counted are the bytes kept. An ``X-Repo-Commit`` that is not a commit hash,
  or (once :attr:`Guard.commit` is set) not that commit, is refused before
  huggingface_hub puts it in a path or a ref.
- **No Xet.** ``hf_xet`` fetches from its own (Rust) client, outside any bound aimc can set,
  after sending the token to a refresh URL the hub's answer names; huggingface_hub's Xet
  path is switched off (``HF_HUB_DISABLE_XET``) and every file comes over HTTP from the
  hub's ``resolve`` URL, which serves Xet-stored files too.

Going past a bound is :class:`aimc.core.errors.NetworkError` (exit 6), raised inside the
request, so nothing more is read or written.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from urllib.parse import unquote, urljoin, urlsplit

import httpx2

from aimc.core.errors import NetworkError
from aimc.modelcache.cache_files import COMMIT

__all__ = [
    "MAX_API_BYTES",
    "MAX_API_REQUESTS",
    "MAX_REQUESTS",
    "REQUESTS_PER_FILE",
    "Guard",
    "guarded",
]

#: Bytes of every answer that is not a listed file (info, tree pages, errors), together.
MAX_API_BYTES = 64 * 2**20
#: Requests to the hub's API (model info, tree listing pages): 200 pages of a listing.
MAX_API_REQUESTS = 200
#: Requests in all: each file's HEADs, GETs, resumes and redirects, for as many files as a
#: listing may name (``aimc.modelcache.download._MAX_FILES``), and the API's.
REQUESTS_PER_FILE = 16
MAX_REQUESTS = REQUESTS_PER_FILE * 20_000 + MAX_API_REQUESTS

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str | httpx2.URL) -> tuple[str, str, int]:
    """(scheme, host, port) of ``url`` as ``httpx2`` parses it: the parser that decides where
    a request goes. A URL it cannot parse has no origin (never the hub's)."""
    try:
        parsed = url if isinstance(url, httpx2.URL) else httpx2.URL(url)
        scheme = parsed.scheme.lower()
        return scheme, parsed.host.lower(), parsed.port or _DEFAULT_PORTS.get(scheme, 0)
    except (httpx2.InvalidURL, TypeError, ValueError):
        return "", "", -1


class _Counted(httpx2.SyncByteStream):
    """A response body that raises once more than ``limit`` bytes came."""

    def __init__(self, stream: httpx2.SyncByteStream, guard: Guard, limit: int, what: str) -> None:
        self._stream, self._guard, self._limit, self._what = stream, guard, limit, what

    def __iter__(self) -> Iterator[bytes]:
        got = 0
        for chunk in self._stream:
            got += len(chunk)
            if got > self._limit or (not self._what and not self._guard._spend(len(chunk))):
                raise self._guard._over(self._what, self._limit)
            yield chunk

    def close(self) -> None:
        self._stream.close()


class Guard:
    """The bounds of one download of ``repo`` from the hub at ``endpoint`` (see the module)."""

    def __init__(self, repo: str, endpoint: str) -> None:
        self.repo = repo
        self.hub = _origin(endpoint)
        #: the endpoint's own path (a mirror may serve the hub under one): before ``/api/``
        #: and ``/<repo>/resolve/``
        self.base = unquote(urlsplit(endpoint).path).rstrip("/")
        self._lock = threading.Lock()
        self._requests = 0
        self._api_requests = 0
        self._api_left = MAX_API_BYTES
        self._sizes: dict[str, int] = {}  # listed file -> announced bytes
        self._urls: dict[str, tuple[str, int]] = {}  # redirect target -> (file, bytes)
        self.commit: str | None = None  # once known, the only X-Repo-Commit believed

    def allow(self, sizes: dict[str, int]) -> None:
        """The listed files and their announced sizes (after the free-space check)."""
        with self._lock:
            self._sizes.update(sizes)

    def _spend(self, nbytes: int) -> bool:
        with self._lock:
            self._api_left -= nbytes
            return self._api_left >= 0

    def _over(self, what: str, limit: int) -> Exception:
        if what:  # a listed file
            message = f"the hub sent more than the {limit} bytes it announced for {what}"
        else:
            message = (
                f"the hub's answers for {self.repo} (info, listings) exceed {MAX_API_BYTES} "
                "bytes: stopped"
            )
        return NetworkError(
            message,
            hint="check HF_ENDPOINT: it should be the Hugging Face hub or a faithful mirror",
        )

    def _file(self, url: str) -> tuple[str, int] | None:
        """The listed file ``url`` fetches and its announced size, if it fetches one."""
        if url in self._urls:
            return self._urls[url]
        if _origin(url) != self.hub:
            return None
        path = unquote(urlsplit(url).path)
        prefix = f"{self.base}/{self.repo}/resolve/"
        name = path[len(prefix) :].partition("/")[2] if path.startswith(prefix) else ""
        return (name, self._sizes[name]) if name in self._sizes else None

    def on_request(self, request: httpx2.Request) -> None:
        at_hub = _origin(request.url) == self.hub
        api = at_hub and request.url.path.startswith(f"{self.base}/api/")
        with self._lock:
            self._requests += 1
            self._api_requests += api
            too_many = self._requests > MAX_REQUESTS or self._api_requests > MAX_API_REQUESTS
        if too_many:
            limit = MAX_API_REQUESTS if api else MAX_REQUESTS
            raise NetworkError(
                f"the hub needed more than {limit} requests for {self.repo}: stopped",
                hint="check HF_ENDPOINT: an endless listing or redirect is not the hub",
            )
        if not at_hub:
            for name in [k for k in request.headers if k.lower() == "authorization"]:
                del request.headers[name]
        request.headers["Accept-Encoding"] = "identity"

    def on_response(self, response: httpx2.Response) -> None:
        url = str(response.request.url)
        commit = response.headers.get("X-Repo-Commit")
        if commit is not None and not COMMIT.fullmatch(commit):
            raise NetworkError(
                f"the hub named no commit hash for {self.repo} (X-Repo-Commit)",
                hint="check HF_ENDPOINT: it should be the Hugging Face hub or a faithful mirror",
            )
        if commit is not None and self.commit is not None and commit != self.commit:
            raise NetworkError(
                f"the hub named commit {commit} for a file of {self.repo} at {self.commit}",
                hint="check HF_ENDPOINT: it should be the Hugging Face hub or a faithful mirror",
            )
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise NetworkError(
                f"the hub sent a compressed answer ({encoding[:20]}) for {self.repo} though "
                "asked for none",
                hint="check HF_ENDPOINT and a proxy",
            )
        file = self._file(url)
        location = response.headers.get("Location")
        if file is not None and location:
            with self._lock:
                self._urls[urljoin(url, location)] = file
        if file is None:
            limit, what = MAX_API_BYTES, ""
        else:
            start = 0
            match = re.fullmatch(r"bytes=(\d{1,20})-", response.request.headers.get("Range", ""))
            if match:
                start = int(match.group(1))
            limit, what = max(file[1] - start, 0), f"{self.repo}/{file[0]}"
        length = response.headers.get("Content-Length", "")
        if response.request.method != "HEAD" and length.isdigit() and int(length) > limit:
            raise self._over(what, limit)
        if not isinstance(response.stream, httpx2.SyncByteStream):  # never: a sync client
            raise TypeError("an answer without a synchronous body cannot be bounded")
        response.stream = _Counted(response.stream, self, limit, what)


#: huggingface_hub has one client per process: one guarded download at a time (another
#: thread's waits, rather than have its client closed under it).
_ONE_AT_A_TIME = threading.Lock()


@contextlib.contextmanager
def guarded(repo: str) -> Iterator[Guard]:
    """Every request huggingface_hub (and aimc through its session) makes inside the block
    goes through a :class:`Guard` for ``repo``; Xet is off. Both are undone afterwards.
    Downloads in one process run one after the other (:data:`_ONE_AT_A_TIME`)."""
    # huggingface_hub is heavy: imported only when a download runs.
    from huggingface_hub import constants, set_client_factory
    from huggingface_hub.utils import _http

    guard = Guard(repo, constants.ENDPOINT)

    def client() -> httpx2.Client:
        return httpx2.Client(
            event_hooks={
                "request": [_http.hf_request_event_hook, guard.on_request],
                "response": [guard.on_response],
            },
            follow_redirects=True,
            timeout=None,
        )

    with _ONE_AT_A_TIME:
        previous = _http._GLOBAL_CLIENT_FACTORY
        xet = constants.HF_HUB_DISABLE_XET
        constants.HF_HUB_DISABLE_XET = True
        set_client_factory(client)
        try:
            yield guard
        finally:
            set_client_factory(previous)
            constants.HF_HUB_DISABLE_XET = xet
