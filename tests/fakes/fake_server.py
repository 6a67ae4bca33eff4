"""A stand-in for an OpenAI-compatible model server, for runner tests and benchmarks.

Started in place of the real server (as $AIM_PYTHON, or by a stand-in docker). Reads
``--port`` and ``--served-model-name`` from its arguments and behaves as FAKE_MODE says:

- ``ready``: answers /health and /v1/models at once;
- ``late``: /health is 503 for FAKE_DELAY seconds, then 200;
- ``never``: /health is 503 forever;
- ``exit``: prints a message and exits with code 3 after FAKE_DELAY seconds.

With FAKE_PREAMBLE (a file) it first copies that file's bytes to its output (a log already
large, and hostile, before the server says anything). With FAKE_LOG_LINES (a file: e.g.
``tests/data/vllm-0.32-cpu-startup.log``, vLLM's real startup lines) it first prints those
lines, FAKE_LINE_DELAY seconds apart, and becomes healthy only after the last one.
FAKE_LIST_DELAY: seconds /v1/models waits after /health answers before it lists the model.

``POST /v1/completions`` with ``stream: true`` answers as vLLM does (server-sent events, one
token a chunk, ``usage`` in the last chunk when asked, then ``data: [DONE]``); FAKE_STREAM
makes it hostile: ``endless`` (chunks forever), ``trickle`` (one line, a byte every 0.2 s,
forever), ``huge`` (one 8 MiB line), ``binary``
(non-UTF-8 bytes), ``badjson`` (events that are not JSON), ``error`` (HTTP 500),
``badstatus`` (a status line that is not HTTP, also for /v1/models), ``headers`` (more
headers than a client reads, also for /v1/models), ``echokey`` (every second request is
answered by a bad status line that echoes its ``Authorization`` header). The
``Authorization`` header of each request is appended to FAKE_AUTH when set.

Like vLLM 0.32 (``vllm/entrypoints/serve/middleware/authenticate.py``) it requires an API
key when ``--api-key`` or ``VLLM_API_KEY`` (in its own environment: the one a container or
process got) is set: every request whose path starts with ``/v1`` (``/v2``, ``/inference``,
``/cohere``) but OPTIONS needs ``Authorization: Bearer <key>`` and is answered 401
``{"error": "Unauthorized"}`` otherwise; ``/health`` stays open. FAKE_API_KEY overrides the
key (a server started with a key the caller does not have).

It starts a ``sleep`` child in its process group (to check that the whole group is
stopped), writes its pid and the child's to FAKE_PIDS, and the time it became ready or died
to FAKE_EVENTS (for the latency benchmark).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _arg(name: str, default: str) -> str:
    argv = sys.argv[1:]
    return argv[argv.index(name) + 1] if name in argv else default


def _event(kind: str) -> None:
    if os.environ.get("FAKE_EVENTS"):
        with open(os.environ["FAKE_EVENTS"], "a") as f:
            f.write(f"{kind} {time.time()}\n")


def main() -> None:
    mode = os.environ.get("FAKE_MODE", "ready")
    delay = float(os.environ.get("FAKE_DELAY", "0"))
    port = int(_arg("--port", "8000"))
    model = _arg("--served-model-name", "fake")
    if os.environ.get("FAKE_PREAMBLE"):
        import shutil

        with open(os.environ["FAKE_PREAMBLE"], "rb") as preamble:
            shutil.copyfileobj(preamble, sys.stdout.buffer, 1 << 20)
        sys.stdout.buffer.flush()
    print(f"fake server: mode {mode}, port {port}, model {model}", flush=True)
    child = subprocess.Popen(["sleep", "300"])
    if os.environ.get("FAKE_PIDS"):  # whole or absent: written aside, then renamed
        pids = os.environ["FAKE_PIDS"]
        with open(f"{pids}.{os.getpid()}", "w") as f:
            json.dump({"server": os.getpid(), "child": child.pid}, f)
        os.replace(f"{pids}.{os.getpid()}", pids)
    if mode == "exit":
        time.sleep(delay)
        print("fake server: cannot allocate KV cache, giving up", flush=True)
        _event("died")
        child.kill()
        sys.exit(3)
    lines_file = os.environ.get("FAKE_LOG_LINES")
    if lines_file:
        line_delay = float(os.environ.get("FAKE_LINE_DELAY", "0.05"))
        with open(lines_file, encoding="utf-8") as f:
            for line in f:
                print(line.rstrip("\n"), flush=True)
                time.sleep(line_delay)
    start = time.monotonic()
    ready_at = start + (delay if mode == "late" else 0)
    stream_mode = os.environ.get("FAKE_STREAM", "")
    list_delay = float(os.environ.get("FAKE_LIST_DELAY", "0"))
    posts = itertools.count(1)
    # vLLM: --api-key wins over VLLM_API_KEY; an empty one is no key.
    api_key = (
        os.environ.get("FAKE_API_KEY") or _arg("--api-key", "") or os.environ.get("VLLM_API_KEY")
    )

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _refused(self) -> bool:
            """vLLM's AuthenticationMiddleware: answer 401 and return True for a guarded
            path without the bearer token."""
            if not api_key or not self.path.startswith(("/v1", "/v2", "/inference", "/cohere")):
                return False
            scheme, _, token = self.headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "bearer" and token == api_key:
                return False
            body = b'{"error":"Unauthorized"}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return True

        def do_GET(self) -> None:
            if self._refused():
                return
            healthy = mode != "never" and time.monotonic() >= ready_at
            if self.path == "/health":
                self.send_response(200 if healthy else 503)
                self.end_headers()
                return
            if self.path == "/v1/models" and stream_mode in ("badstatus", "headers"):
                self._not_http("NOT-HTTP garbage")
                return
            listed = healthy and time.monotonic() >= ready_at + list_delay
            if self.path == "/v1/models" and listed:
                body = json.dumps({"object": "list", "data": [{"id": model}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_response(404)
            self.end_headers()

        def do_POST(self) -> None:
            if os.environ.get("FAKE_AUTH"):
                with open(os.environ["FAKE_AUTH"], "a") as f:
                    f.write(self.headers.get("Authorization", "-") + "\n")
            length = int(self.headers.get("Content-Length", "0"))
            try:
                body = json.loads(self.rfile.read(length))
            except ValueError:
                body = {}
            if self._refused():
                return
            if stream_mode in ("badstatus", "headers"):
                self._not_http("NOT-HTTP garbage")
                return
            if stream_mode == "echokey" and next(posts) % 2 == 0:
                self._not_http(f"LEAK {self.headers.get('Authorization', '-')}")
                return
            if self.path != "/v1/completions" or stream_mode == "error":
                self.send_response(500 if stream_mode == "error" else 404)
                self.end_headers()
                self.wfile.write(b"no")
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._stream(body)

        def _not_http(self, status_line: str) -> None:
            """What http.client cannot parse: ``status_line`` as the status line, or (mode
            ``headers``) a valid one with 101 headers."""
            if stream_mode == "headers":
                self.wfile.write(b"HTTP/1.1 200 OK\r\n" + b"X-N: y\r\n" * 101 + b"\r\n{}")
            else:
                self.wfile.write(status_line.encode() + b"\r\n\r\n")
            self.close_connection = True

        def _event(self, data: object) -> None:
            self.wfile.write(b"data: " + json.dumps(data).encode() + b"\n\n")
            self.wfile.flush()

        def _stream(self, body: dict) -> None:
            tokens = int(body.get("max_tokens", 16))
            prompt = str(body.get("prompt", ""))
            if stream_mode == "endless":
                while True:
                    self._event({"choices": [{"index": 0, "text": "x"}]})
            if stream_mode == "trickle":
                self.wfile.write(b"data: ")
                while True:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.2)
            if stream_mode == "huge":
                self.wfile.write(b"data: " + b"x" * (8 << 20) + b"\n\n")
                return
            if stream_mode == "binary":
                self.wfile.write(b"data: \xff\xfe\x00\x80\n\n")
            if stream_mode == "badjson":
                self.wfile.write(b"data: {not json\n\ndata: [1, 2\n\n")
            for i in range(tokens):
                time.sleep(0.002)
                self._event({"choices": [{"index": 0, "text": f" t{i}"}]})
            usage = {
                "prompt_tokens": len(prompt.split()),
                "completion_tokens": tokens,
                "total_tokens": len(prompt.split()) + tokens,
            }
            self._event({"choices": [], "usage": usage})
            self.wfile.write(b"data: [DONE]\n\n")

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    if mode in ("ready", "late"):

        def announce() -> None:
            time.sleep(max(0.0, ready_at - time.monotonic()))
            _event("ready")
            print("fake server: ready", flush=True)

        threading.Thread(target=announce, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
