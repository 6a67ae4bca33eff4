"""A stand-in for an OpenAI-compatible model server, for runner tests and benchmarks.

Started in place of the real server (as $AIM_PYTHON, or by a stand-in docker). Reads
``--port`` and ``--served-model-name`` from its arguments and behaves as FAKE_MODE says:

- ``ready``: answers /health and /v1/models at once;
- ``late``: /health is 503 for FAKE_DELAY seconds, then 200;
- ``never``: /health is 503 forever;
- ``exit``: prints a message and exits with code 3 after FAKE_DELAY seconds.

It starts a ``sleep`` child in its process group (to check that the whole group is
stopped), writes its pid and the child's to FAKE_PIDS, and the time it became ready or died
to FAKE_EVENTS (for the latency benchmark).
"""

from __future__ import annotations

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
    print(f"fake server: mode {mode}, port {port}, model {model}", flush=True)
    child = subprocess.Popen(["sleep", "300"])
    if os.environ.get("FAKE_PIDS"):
        with open(os.environ["FAKE_PIDS"], "w") as f:
            json.dump({"server": os.getpid(), "child": child.pid}, f)
    if mode == "exit":
        time.sleep(delay)
        print("fake server: cannot allocate KV cache, giving up", flush=True)
        _event("died")
        child.kill()
        sys.exit(3)
    start = time.monotonic()
    ready_at = start + (delay if mode == "late" else 0)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            healthy = mode != "never" and time.monotonic() >= ready_at
            if self.path == "/health":
                self.send_response(200 if healthy else 503)
                self.end_headers()
                return
            if self.path == "/v1/models" and healthy:
                body = json.dumps({"object": "list", "data": [{"id": model}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_response(404)
            self.end_headers()

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
