"""The saturation point of a configuration, from ``bench`` runs at several concurrencies.

Takes bench results (as :func:`aimc.plan.measured.read_results` gives them, bounded) and a
:class:`~aimc.plan.model.Plan`, and hands on a :class:`Curve`: the configuration's
output-tokens/s-versus-concurrency curve and, when the curve shows one, its saturation
point, which ``--autoscale`` turns into a running-requests target per replica
(:mod:`aimc.emit.autoscale`).

Why this point. ``bench --concurrency C`` keeps C requests in flight (a closed loop), so
in steady state the server runs C requests at once (``vllm:num_requests_running``,
``sglang:num_running_reqs``) as long as C is within its batch limit and KV cache. A
continuous-batching engine serves more output tokens per second as the batch grows, until
the batch is bound by the GPU's compute or memory bandwidth; past that point more requests
in flight add latency (each one's share of the steps shrinks) and almost no throughput.
The saturation point is where the throughput curve flattens:

    the fewest concurrent requests whose output tokens/s reach :data:`SHARE` (90%) of
    the best measured at any concurrency of the same workload,

and it counts only when a higher concurrency was benched (going past it gained at most
1/0.9 - 1, about 11%: the curve is seen to be flat, not cut off by the highest run).
Throughput, not a latency bound, because a latency bound is the service's own objective
(no recipe or bench run knows it), while the knee of the throughput curve is a property
of the configuration; the 10% left is the headroom a replica keeps for bursts between
two polls of the autoscaler. Scaling out when the running requests per replica pass the
point keeps each replica near its best throughput without running it deeper into the
flat part, where only latency grows.

Which runs. Only results whose configuration key (:func:`aimc.plan.measured.config_key`:
model, target, recipe configuration, precision, GPUs, data-parallel replicas, backend and
release, a hash of the engine arguments) equals the plan's, field by field and type by
type: another configuration's figures never count. Of those, only runs that are points of
a curve: every request completed (none failed), at least as many requests as the
concurrency (fewer never reach it), a workload of whole numbers within ``bench``'s bounds,
a time as ``bench`` writes it. One workload shape per curve (the input and output lengths
of the newest run: another shape is another curve), and the newest run per concurrency.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aimc.plan.measured import NUMBER_MAX, config_key
from aimc.plan.model import Plan

__all__ = ["RESULTS_SOURCE", "SHARE", "Curve", "Run", "curve", "runs"]

#: The share of the best measured output tokens/s that marks the saturation point.
SHARE = 0.9
#: How the results file is named in what ``compile`` writes (not the machine's own path:
#: the same results give the same files on any machine).
RESULTS_SOURCE = "$AIMC_STATE_DIR/bench.jsonl"
#: ``bench``'s bounds on --concurrency and --requests, --input-len and --output-len.
CONCURRENCY_MAX = 1024
REQUESTS_MAX = 100000
LENGTH_MAX = 1 << 20
#: The time as ``bench`` writes it (UTC, seconds).
_TIME = re.compile(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z")
#: The configuration key's fields and their types (:func:`aimc.plan.measured.config_key`).
_KEY_TYPES: dict[str, type] = {
    "model": str,
    "target": str,
    "configuration": str,
    "precision": str,
    "gpus": int,
    "data_parallel": int,
    "backend": str,
    "backend_version": str,
    "args_hash": str,
}


@dataclass(frozen=True)
class Run:
    """One bench result that can be a point of a curve.

    Attributes:
        key: The configuration key, as sorted ``(field, value)`` pairs.
        concurrency: Requests in flight at once.
        requests: Requests sent (all completed).
        input_len: Prompt length of the workload.
        output_len: Output tokens per request.
        output_tokens_per_s: Output tokens per second over the run.
        time: When it ran (``2026-01-31T12:00:00Z``).
    """

    key: tuple[tuple[str, Any], ...]
    concurrency: int
    requests: int
    input_len: int
    output_len: int
    output_tokens_per_s: float
    time: str


def _whole(value: object, high: int, low: int = 1) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if low <= value <= high else None


def _key(value: object) -> tuple[tuple[str, Any], ...] | None:
    """A configuration key of exactly the fields and types of ``config_key``, or None."""
    if not isinstance(value, dict) or set(value) != set(_KEY_TYPES):
        return None
    for name, kind in _KEY_TYPES.items():
        item = value[name]
        if type(item) is not kind or (kind is int and _whole(item, 1 << 20) is None):
            return None
    return tuple(sorted(value.items()))


def _run(result: Mapping[str, Any]) -> Run | None:
    """``result`` as a point of a curve, or None (see the module docstring)."""
    key, workload, figures = result.get("key"), result.get("workload"), result.get("figures")
    if (key := _key(key)) is None or not isinstance(workload, dict):
        return None
    if not isinstance(figures, dict) or not _TIME.match(str(result.get("time"))):
        return None
    concurrency = _whole(workload.get("concurrency"), CONCURRENCY_MAX)
    requests = _whole(workload.get("requests"), REQUESTS_MAX)
    lengths = [_whole(workload.get(n), LENGTH_MAX) for n in ("input_len", "output_len")]
    tokens = figures.get("output_tokens_per_s")
    if concurrency is None or requests is None or None in lengths or requests < concurrency:
        return None
    if _whole(figures.get("failed"), 0, 0) is None:
        return None
    if _whole(figures.get("completed"), REQUESTS_MAX) != requests:
        return None
    if isinstance(tokens, bool) or not isinstance(tokens, int | float):
        return None
    if not 0 <= tokens <= NUMBER_MAX:
        return None
    input_len, output_len = lengths
    assert input_len is not None and output_len is not None
    return Run(
        key, concurrency, requests, input_len, output_len, float(tokens), str(result["time"])
    )


def runs(results: Iterable[Mapping[str, Any]]) -> tuple[Run, ...]:
    """The results that can be points of a curve, in the file's order (oldest first);
    every other result is left out, never an error."""
    found = (_run(r) for r in results if isinstance(r, Mapping))
    return tuple(r for r in found if r is not None)


@dataclass(frozen=True)
class Curve:
    """A configuration's output tokens/s by concurrency, and its saturation point.

    Attributes:
        points: The runs of the curve, one per concurrency, by concurrency (empty: the
            results hold no run of this configuration).
        source: The results file they come from (:data:`RESULTS_SOURCE`, or another name).
        saturation: The saturation concurrency, or None when the curve shows none.
        why: How the point was found, or why there is none (one clause).
    """

    points: tuple[Run, ...]
    source: str
    saturation: int | None
    why: str

    def key(self) -> dict[str, Any]:
        """The configuration key of the points."""
        return dict(self.points[0].key) if self.points else {}

    def shape(self) -> str:
        """``128 in / 128 out tokens``"""
        first = self.points[0]
        return f"{first.input_len} in / {first.output_len} out tokens"

    def text(self) -> str:
        """``concurrency: output tokens/s 1: 210.0, 2: 400.5 (bench of T1 to T2)``"""
        values = ", ".join(f"{p.concurrency}: {p.output_tokens_per_s:.1f}" for p in self.points)
        times = sorted(p.time for p in self.points)
        return f"concurrency: output tokens/s {values} (bench of {times[0]} to {times[-1]})"

    def record(self) -> dict[str, Any]:
        """What ``manifest.aimc`` records of it."""
        return {
            "source": self.source,
            "key": self.key(),
            "input_len": self.points[0].input_len,
            "output_len": self.points[0].output_len,
            "points": [
                {
                    "concurrency": p.concurrency,
                    "requests": p.requests,
                    "output_tokens_per_s": p.output_tokens_per_s,
                    "time": p.time,
                }
                for p in self.points
            ],
            "saturation": self.saturation,
            "why": self.why,
        }


def _points(mine: Sequence[Run]) -> tuple[Run, ...]:
    """The newest run's workload shape; the newest run per concurrency; by concurrency."""
    shape = (mine[-1].input_len, mine[-1].output_len)
    newest: dict[int, Run] = {}
    for r in mine:
        if (r.input_len, r.output_len) == shape:
            newest[r.concurrency] = r
    return tuple(newest[c] for c in sorted(newest))


def curve(plan: Plan, bench: Sequence[Run], source: str = RESULTS_SOURCE) -> Curve:
    """The curve of the configuration ``plan`` serves, from ``bench`` (see the module
    docstring for which runs count and where the saturation point is)."""
    key = tuple(sorted(config_key(plan).items()))
    mine = [r for r in bench if r.key == key]  # of the same types too: ``_key`` checks them
    if not mine:
        return Curve((), source, None, "no bench run of this configuration")
    points = _points(mine)
    top = points[-1].concurrency
    best = max(points, key=lambda p: p.output_tokens_per_s)
    if len(points) < 2:
        why = f"one concurrency benched ({top}); bench several to see where the throughput flattens"
        return Curve(points, source, None, why)
    if best.output_tokens_per_s <= 0:
        return Curve(points, source, None, "no output tokens/s measured")
    knee = next(p for p in points if p.output_tokens_per_s >= SHARE * best.output_tokens_per_s)
    if knee.concurrency == top:
        why = (
            f"the output tokens/s still grow at the highest concurrency benched ({top});"
            " bench higher concurrencies"
        )
        return Curve(points, source, None, why)
    share = round(100 * knee.output_tokens_per_s / best.output_tokens_per_s)
    why = (
        f"{knee.concurrency} concurrent: {knee.output_tokens_per_s:.1f} output tokens/s,"
        f" {share}% of the best measured ({best.output_tokens_per_s:.1f} at {best.concurrency})"
    )
    return Curve(points, source, knee.concurrency, why)
