"""A local stand-in for the Hugging Face hub's file endpoints (tests only; 127.0.0.1).

Serves model repositories the test builds in memory, the way ``huggingface_hub`` 2.x asks
for them:

=============================================  =========================================
request                                        answer
=============================================  =========================================
``GET /api/models/{repo}[/revision/{rev}]``   ``{"id", "sha", "siblings"}``
``GET /api/models/{repo}/tree/{rev}``          the file list (path, size, oid, lfs)
``HEAD|GET /{repo}/resolve/{rev}/{file}``      the bytes, with ``X-Repo-Commit``, ``ETag``,
                                               ``X-Linked-Etag``/``X-Linked-Size`` (LFS),
                                               ``Content-Length``; ``Range: bytes=N-``
=============================================  =========================================

Knobs: ``gated`` repositories answer 401 with ``X-Error-Code: GatedRepo`` unless the request
carries ``Authorization: Bearer <token>``; ``slow`` streams files in small chunks with a
pause (so a test can kill a download midway); ``advertise`` overrides the size a file is
said to have (a repository larger than the disk, a lying hub); ``extra_headers`` go with
every answer (huge or odd headers). Hostile hubs: ``info_sha`` is the commit the info
endpoint names instead of the real one; ``head_answers`` answers a file's HEAD with a status
and headers instead (a 500, a redirect to another host); ``resize`` is the size a file's
HEAD announces from its second HEAD on (a hub changing its answer after the free-space
check), ``later_head_answers`` the whole answer from the second HEAD on;
``reject_bad_tokens`` answers a request carrying another token than the hub's with
401 "Invalid credentials in Authorization header", as the real hub does; ``api_answers``
answers the info (``"info"``) or tree (``"tree"``) endpoint with a status, headers and a body
instead (a redirect to another host, an endless listing); ``get_answers`` answers a file's
GET so (a redirect loop, a server error); ``stall`` holds a file's answer that many seconds
before its first byte (a hub that hangs; ``stop()`` lets it go). Every request is
logged in ``requests``, the first byte of every ranged GET in ``ranges``.
Run as a script (``python tests/fakes/hub.py SPEC.json``) it serves the repositories of a
JSON spec and prints its URL.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit


@dataclass
class Repo:
    """One repository: its files at one commit."""

    files: dict[str, bytes]
    commit: str
    gated: bool = False
    advertise: dict[str, int] = field(default_factory=dict)

    def oid(self, name: str) -> str:
        data = self.files[name]
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()

    def sha256(self, name: str) -> str:
        return hashlib.sha256(self.files[name]).hexdigest()

    def is_lfs(self, name: str) -> bool:
        return name.endswith((".safetensors", ".bin", ".pth"))

    def size(self, name: str) -> int:
        return self.advertise.get(name, len(self.files[name]))


Served = TypeVar("Served", bound="ServedInThread")
#: Seconds between a served thread's checks for ``shutdown()`` (the standard library's 0.5
#: made every test with a stand-in wait half a second per server at its end).
SHUTDOWN_POLL = 0.02


class QuietServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` that prints nothing when a client drops its connection (a
    client that stops reading an answer it refused resets it): the standard library's
    traceback would land in the output of a command the test runs in this process."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class ServedInThread:
    """A ``ThreadingHTTPServer`` (``self._server``) served from a daemon thread: the stand-in
    hub's and the other host's ``start`` and ``stop``."""

    _server: ThreadingHTTPServer
    _thread: threading.Thread | None = None

    def start(self: Served) -> Served:
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(SHUTDOWN_POLL,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)


class FakeHub(ServedInThread):
    """A threaded HTTP server on 127.0.0.1 with a free port; ``url`` goes in HF_ENDPOINT."""

    def __init__(self, token: str = "hf_localtesttoken0123456789abcdef") -> None:
        self.repos: dict[str, Repo] = {}
        self.token = token
        self.slow = 0.0  # pause between 1 KiB chunks, seconds
        self.requests: list[tuple[str, str]] = []
        self.ranges: list[tuple[str, int]] = []  # (file, first byte) of each ranged GET
        self.extra_headers: dict[str, str] = {}  # sent with every answer (hostile hubs)
        self.info_sha: str | None = None  # the commit the info endpoint names instead
        self.head_answers: dict[str, tuple[int, dict[str, str]]] = {}  # file -> HEAD answer
        self.resize: dict[str, int] = {}  # file -> size its second and later HEADs announce
        #: file -> (status, headers) its second and later HEADs answer (a hub changing its mind)
        self.later_head_answers: dict[str, tuple[int, dict[str, str]]] = {}
        self.reject_bad_tokens = False  # 401 "Invalid credentials" for another token
        #: "info" | "tree" -> (status, headers, body) answered instead (hostile hubs)
        self.api_answers: dict[str, tuple[int, dict[str, str], bytes]] = {}
        #: file -> (status, headers, body) its GETs answer instead (hostile hubs)
        self.get_answers: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.stall: dict[str, float] = {}  # file -> seconds before its answer starts
        self._released = threading.Event()  # set by stop(): stalled answers go on
        self._heads: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = QuietServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._released.set()
        super().stop()

    def add(
        self,
        repo: str,
        files: dict[str, bytes],
        gated: bool = False,
        advertise: dict[str, int] | None = None,
    ) -> str:
        """Serve ``files`` as ``repo`` at ``main``; its commit hash."""
        digest = hashlib.sha1(repo.encode())
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + files[name])
        commit = digest.hexdigest()
        self.repos[repo] = Repo(dict(files), commit, gated, dict(advertise or {}))
        return commit

    def gets(self, repo: str, name: str) -> int:
        """How many GET requests asked for ``name`` of ``repo``."""
        with self._lock:
            return sum(
                1
                for m, p in self.requests
                if m == "GET" and p.endswith(f"/{name}") and f"/{repo}/resolve/" in p
            )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body in separate writes: no 40 ms wait

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def end_headers(self) -> None:
                for key, value in hub.extra_headers.items():
                    self.send_header(key, value)
                super().end_headers()

            def _send(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", headers.get("Content-Length", str(len(body))))
                self.end_headers()
                if self.command == "GET" and body:
                    self.wfile.write(body)

            def _error(self, status: int, code: str, message: str) -> None:
                body = json.dumps({"error": message}).encode()
                headers = {"Content-Type": "application/json", "X-Error-Message": message}
                if code:
                    headers["X-Error-Code"] = code
                self._send(status, headers, body)

            def _repo(self, repo_id: str) -> Repo | None:
                repo = hub.repos.get(repo_id)
                if repo is None:
                    self._error(404, "RepoNotFound", "Repository not found")
                    return None
                auth = self.headers.get("Authorization", "")
                if hub.reject_bad_tokens and auth and auth != f"Bearer {hub.token}":
                    message = "Invalid credentials in Authorization header"
                    self._error(401, "", message)
                    return None
                if repo.gated and auth != f"Bearer {hub.token}":
                    self._error(401, "GatedRepo", "Access to this repository is restricted")
                    return None
                return repo

            def _serve(self, body: bool) -> None:
                path = unquote(urlsplit(self.path).path)
                with hub._lock:
                    hub.requests.append((self.command, path))
                parts = path.strip("/").split("/")
                if parts[:2] == ["api", "models"] and len(parts) >= 4:
                    repo = self._repo("/".join(parts[2:4]))
                    if repo is None:
                        return
                    kind = "info" if len(parts) == 4 or parts[4] == "revision" else "tree"
                    if kind in hub.api_answers:
                        status, answer, content = hub.api_answers[kind]
                        return self._send(status, answer, content)
                    if kind == "info":
                        info = {
                            "id": "/".join(parts[2:4]),
                            "sha": repo.commit if hub.info_sha is None else hub.info_sha,
                            "private": False,
                            "gated": "manual" if repo.gated else False,
                            "siblings": [{"rfilename": n} for n in sorted(repo.files)],
                        }
                        return self._send(
                            200, {"Content-Type": "application/json"}, json.dumps(info).encode()
                        )
                    if len(parts) >= 6 and parts[4] == "tree":
                        tree = []
                        for name in sorted(repo.files):
                            entry: dict[str, Any] = {
                                "type": "file",
                                "path": name,
                                "size": repo.size(name),
                                "oid": repo.oid(name),
                            }
                            if repo.is_lfs(name):
                                entry["lfs"] = {
                                    "oid": repo.sha256(name),
                                    "size": repo.size(name),
                                    "pointerSize": 134,
                                }
                            tree.append(entry)
                        return self._send(
                            200, {"Content-Type": "application/json"}, json.dumps(tree).encode()
                        )
                if len(parts) >= 5 and parts[2] == "resolve":
                    repo = self._repo("/".join(parts[:2]))
                    if repo is None:
                        return
                    name = "/".join(parts[4:])
                    if parts[3] not in ("main", repo.commit) or name not in repo.files:
                        return self._error(404, "EntryNotFound", "Entry not found")
                    return self._file(repo, name)
                self._error(404, "RepoNotFound", "not found")

            def _file(self, repo: Repo, name: str) -> None:
                if name in hub.stall:
                    hub._released.wait(hub.stall[name])
                if self.command == "GET" and name in hub.get_answers:
                    status, answer, content = hub.get_answers[name]
                    return self._send(status, answer, content)
                data = repo.files[name]
                size = repo.size(name)
                if self.command == "HEAD":
                    with hub._lock:
                        hub._heads[name] = hub._heads.get(name, 0) + 1
                        later = hub._heads[name] > 1
                    if later and name in hub.later_head_answers:
                        status, answer = hub.later_head_answers[name]
                        return self._send(status, answer)
                    if name in hub.head_answers:
                        status, answer = hub.head_answers[name]
                        return self._send(status, answer)
                    if later:
                        size = hub.resize.get(name, size)
                headers = {"X-Repo-Commit": repo.commit, "Accept-Ranges": "bytes"}
                if repo.is_lfs(name):
                    headers["ETag"] = f'"{repo.oid(name)}"'
                    headers["X-Linked-Etag"] = f'"{repo.sha256(name)}"'
                    headers["X-Linked-Size"] = str(size)
                else:
                    headers["ETag"] = f'"{repo.oid(name)}"'
                start = 0
                ranged = self.headers.get("Range", "")
                if ranged.startswith("bytes=") and self.command == "GET":
                    start = int(ranged[6:].split("-")[0] or 0)
                    with hub._lock:
                        hub.ranges.append((name, start))
                    headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                status = 206 if start else 200
                chunk = data[start:]
                headers["Content-Length"] = str(len(chunk))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if self.command != "GET":
                    return
                try:
                    for i in range(0, len(chunk), 1024):
                        self.wfile.write(chunk[i : i + 1024])
                        self.wfile.flush()
                        if hub.slow:
                            time.sleep(hub.slow)
                except (BrokenPipeError, ConnectionResetError):
                    return

        return Handler


def main(spec_file: str) -> None:
    """Serve the repositories of a JSON spec ``{repo: {file: text}}`` until killed."""
    spec = json.loads(Path(spec_file).read_text())
    hub = FakeHub()
    for repo, files in spec.items():
        hub.add(repo, {name: text.encode() for name, text in files.items()})
    hub.start()
    print(hub.url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1])
