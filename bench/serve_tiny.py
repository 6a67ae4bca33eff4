"""What ``aim-engine bench`` reports for the tiny Llama on this CPU, with both load
generators, and how long each takes to run.

    .venv/bin/python bench/serve_tiny.py [--vllm-python .venv-vllm/bin/python]
        [--requests 16] [--concurrency 1,4]

Generates the tiny model (examples/make_tiny_llama.py), launches it with aimc (real vLLM),
runs ``bench`` with ``--client vllm`` (vLLM's ``vllm bench serve``) and ``--client aimc``
at each concurrency, prints the figures, stops the server. Everything lives in a temporary
folder. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _aimc(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aimc", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vllm-python", default=str(ROOT / ".venv-vllm/bin/python"))
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--concurrency", default="1,4")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aimc-serve-tiny-") as tmp_name:
        tmp = Path(tmp_name)
        model = tmp / "tiny-llama"
        subprocess.run(
            [options.vllm_python, str(ROOT / "examples/make_tiny_llama.py"), str(model)],
            check=True,
            capture_output=True,
        )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AIMC_", "AIM_"))},
            "AIM_PYTHON": options.vllm_python,
            "AIMC_STATE_DIR": str(tmp / "state"),
            "CACHE_DIR": str(tmp / "cache"),
            "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": str(ROOT),
        }
        start = time.monotonic()
        launched = _aimc(
            env, "launch", str(model), "--target", "cpu", "--port", str(_port()),
            "--set", "env.VLLM_CPU_KVCACHE_SPACE=1", "--name", "tiny", "--timeout", "400",
            "--format", "json",
        )  # fmt: skip
        if launched.returncode != 0:
            sys.exit(f"launch failed: {launched.stdout}{launched.stderr}")
        print(f"launch: {time.monotonic() - start:.1f} s")
        try:
            print(
                f"{'client':<17} {'C':>3} {'tok/s':>8} {'req/s':>7} {'TTFT p50':>9} "
                f"{'p95':>7} {'ITL p50':>8} {'p95':>7} {'wall s':>7}"
            )
            for concurrency in options.concurrency.split(","):
                for client in ("vllm", "aimc"):
                    began = time.monotonic()
                    done = _aimc(
                        env, "bench", "tiny", "--client", client, "--requests",
                        str(options.requests), "--concurrency", concurrency, "--input-len", "32",
                        "--output-len", "32", "--format", "json",
                    )  # fmt: skip
                    wall = time.monotonic() - began
                    if done.returncode != 0:
                        print(f"{client}: failed: {done.stdout.strip()[-300:]}")
                        continue
                    data = json.loads(done.stdout)["data"]
                    f = data["figures"]
                    print(
                        f"{data['client']:<17} {concurrency:>3} {f['output_tokens_per_s']:>8.1f} "
                        f"{f['request_throughput']:>7.2f} {f['ttft_ms']['p50']:>7.1f}ms "
                        f"{f['ttft_ms']['p95']:>5.1f}ms {f['itl_ms']['p50']:>6.2f}ms "
                        f"{f['itl_ms']['p95']:>5.2f}ms {wall:>7.1f}"
                    )
        finally:
            _aimc(env, "stop", "tiny", timeout=120)


if __name__ == "__main__":
    main()
