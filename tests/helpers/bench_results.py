"""Bench results as ``aim-engine bench`` appends them (result version 1,
:func:`aimc.run.bench.result_record`), for the tests of what ``--autoscale`` derives
from them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aimc.plan.measured import config_key
from aimc.plan.model import Plan
from aimc.plan.saturation import Run, runs

__all__ = ["CURVE", "SATURATION", "bench_runs", "result", "results", "write_results"]

#: Output tokens/s by concurrency of a configuration that flattens: 16 reaches 87% of the
#: best (1040 at 64), 32 is the first to reach 90% (97%), so the saturation point is 32.
CURVE = {1: 95.0, 2: 186.0, 4: 350.0, 8: 610.0, 16: 905.0, 32: 1010.0, 64: 1040.0}
SATURATION = 32


def result(
    key: dict[str, Any] | None,
    concurrency: int,
    tokens: float,
    minute: int = 0,
    *,
    requests: int | None = None,
    input_len: int = 512,
    output_len: int = 256,
    failed: int = 0,
) -> dict[str, Any]:
    """One result record of ``bench`` (``key``: the configuration's, None for a URL)."""
    sent = requests if requests is not None else max(64, 4 * concurrency)
    return {
        "version": 1,
        "time": f"2026-01-15T10:{minute:02d}:00Z",
        "key": key,
        "run": "aim-bench" if key else None,
        "url": "http://127.0.0.1:8000",
        "model": key["model"] if key else "m",
        "client": "aimc",
        "client_reason": "the model is not a local folder",
        "workload": {
            "requests": sent,
            "concurrency": concurrency,
            "input_len": input_len,
            "output_len": output_len,
            "seed": 0,
        },
        "figures": {
            "requests": sent,
            "completed": sent - failed,
            "failed": failed,
            "duration_s": 30.0,
            "output_tokens": 30 * int(tokens),
            "output_tokens_per_s": tokens,
            "request_throughput": 1.5,
            "ttft_ms": {"p50": 40.0, "p95": 90.0},
            "itl_ms": {"p50": 12.0, "p95": 20.0},
            "first_error": None,
        },
    }


def results(plan: Plan, curve: dict[int, float] | None = None) -> list[dict[str, Any]]:
    """A sweep of ``plan``'s configuration, one result per concurrency of ``curve``."""
    key = config_key(plan)
    points = CURVE if curve is None else curve
    return [result(key, c, t, i) for i, (c, t) in enumerate(points.items())]


def bench_runs(plan: Plan, curve: dict[int, float] | None = None) -> tuple[Run, ...]:
    """:func:`results` as ``--autoscale`` reads them."""
    return runs(results(plan, curve))


def write_results(path: Path, records: list[Any]) -> None:
    """The results file: one JSON line per record (a str is written as the line itself)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r, sort_keys=True) for r in records]
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
