"""How fast the runner notices that a server became ready, or died.

    .venv/bin/python bench/runner_latency.py [--runs 5]

Uses the stand-in server (tests/fakes/fake_server.py), which records the moment it starts
answering (or exits). The delay is the time from that moment to the runner's return.
Goal: <= 0.5 s for ready, <= 1 s for death. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAKE = ROOT / "tests" / "fakes" / "fake_server.py"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _measure(mode: str, tmp: Path, folder: Path, port: int, env: dict[str, str]) -> float:
    events = tmp / f"events-{mode}-{time.monotonic_ns()}"
    run_env = {**env, "FAKE_MODE": mode, "FAKE_DELAY": "2", "FAKE_EVENTS": str(events)}
    subprocess.run(
        [sys.executable, "-m", "aimc", "run", str(folder), "--timeout", "60"],
        env=run_env,
        capture_output=True,
    )
    returned = time.time()
    _kind, stamp = events.read_text().split()[:2]
    subprocess.run([sys.executable, "-m", "aimc", "stop", "--all"], env=env, capture_output=True)
    return returned - float(stamp)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    python = tmp / "fake-python"
    python.write_text(f'#!/bin/bash\nexec {sys.executable} {FAKE} "$@"\n')
    python.chmod(0o755)
    port = _port()
    env = {**os.environ, "AIM_PYTHON": str(python), "AIMC_STATE_DIR": str(tmp / "state")}
    folder = tmp / "build"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "aimc",
            "compile",
            "aimc-examples/tiny-llama",
            "--target",
            "cpu",
            "--recipes",
            str(ROOT / "examples/recipes"),
            "--port",
            str(port),
            "-o",
            str(folder),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    for mode, goal in (("late", 0.5), ("exit", 1.0)):
        delays = [_measure(mode, tmp, folder, port, env) for _ in range(args.runs)]
        what = "ready" if mode == "late" else "death"
        print(
            f"{what:6} -> runner returns: median {statistics.median(delays) * 1000:.0f} ms, "
            f"max {max(delays) * 1000:.0f} ms over {args.runs} runs (goal <= {goal:g} s; "
            "includes the CLI process exiting)"
        )


if __name__ == "__main__":
    main()
