"""Measured figures of configurations: the bench results file, and what selection reads.

Takes benchmark results (``aim-engine bench``) and a recipe's published ``measured:``
figures, and hands on :class:`Measurement` objects keyed by the configuration they were
measured on (:func:`config_key`: model, target, recipe configuration, precision, GPUs,
backend, backend version, a hash of the engine arguments), which ``list configs`` shows and
``--optimize latency|throughput`` prefers (:mod:`aimc.plan.policy`).

The results file (``$AIMC_STATE_DIR/bench.jsonl``, or ``bench --save FILE``) holds one JSON
object a line, appended. It is read bounded: only its last :data:`READ_MAX` bytes (the
newest results), lines longer than :data:`LINE_MAX` and lines that are not a result of
this shape (:func:`parse_result`) are skipped with one warning, never an error.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aimc.core.digest import sha256
from aimc.domain.recipe import Recipe, config_id, configurations
from aimc.plan.model import Plan

__all__ = [
    "READ_MAX",
    "RESULTS_NAME",
    "Measurement",
    "append_result",
    "args_hash",
    "config_key",
    "from_recipe",
    "from_results",
    "parse_result",
    "read_results",
]

RESULTS_NAME = "bench.jsonl"
#: Most bytes read from the end of a results file.
READ_MAX = 16 << 20
#: Longest result line read (bytes).
LINE_MAX = 64 << 10
RESULT_VERSION = 1
#: Largest figure (tokens/s, milliseconds) and GPU count read back: far above any real
#: measurement, and small enough for any arithmetic or format on it.
NUMBER_MAX = 1e15
#: Engine arguments that do not change how a configuration serves.
_NOT_HASHED = ("port", "host", "served-model-name")

KEY_FIELDS = ("model", "target", "configuration", "precision", "gpus", "backend")


def args_hash(args: Mapping[str, Any]) -> str:
    """A short hash of a plan's engine arguments (values only; port and host left out)."""
    values = {k: getattr(v, "value", v) for k, v in args.items() if k not in _NOT_HASHED}
    text = json.dumps(values, sort_keys=True, default=str)
    return sha256(text.encode()).hexdigest()[:16]


def config_key(plan: Plan) -> dict[str, Any]:
    """The configuration a plan serves, as results record it (``gpus``: the tensor-parallel
    size, as recipes count them; ``data_parallel``: its replicas)."""
    return {
        "model": plan.model_id,
        "target": plan.hardware.get("name", ""),
        "configuration": plan.configuration,
        "precision": plan.precision,
        "gpus": plan.gpus,
        "data_parallel": plan.data_parallel,
        "backend": plan.backend,
        "backend_version": plan.backend_version,
        "args_hash": args_hash(plan.args),
    }


@dataclass(frozen=True)
class Measurement:
    """Measured figures of one configuration.

    Attributes:
        key: ``(model, target, configuration, precision, gpus, backend)``.
        output_tokens_per_s: Output tokens per second over the run.
        ttft_p50_ms: Median time to first token.
        ttft_p95_ms: 95th percentile time to first token.
        itl_p50_ms: Median inter-token latency (None when not measured).
        source: Where the figures come from (the results file and date, or the recipe's
            ``source``).
        backend_version: The backend release measured (None: not said).
        args_hash: :func:`args_hash` of the engine arguments measured (None: not said).
    """

    key: tuple[str, str, str, str, int, str]
    output_tokens_per_s: float
    ttft_p50_ms: float
    ttft_p95_ms: float
    itl_p50_ms: float | None
    source: str
    backend_version: str | None = None
    args_hash: str | None = None

    def applies_to(self, plan: Plan) -> bool:
        """Whether the figures were measured on what ``plan`` serves: the same backend
        release and engine arguments, where the measurement says which."""
        return self.backend_version in (None, plan.backend_version) and self.args_hash in (
            None,
            args_hash(plan.args),
        )

    def text(self) -> str:
        """``123.4 output tokens/s, TTFT p50 12.3 ms``"""
        return f"{self.output_tokens_per_s:.1f} output tokens/s, TTFT p50 {self.ttft_p50_ms:.1f} ms"


def _number(value: object) -> float | None:
    """``value`` as a figure, or None: not a number, negative, NaN, infinite or above
    :data:`NUMBER_MAX`. Compared before it is converted: an integer of hundreds of digits
    has no float (OverflowError), and a malformed line is skipped, never an error."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 <= value <= NUMBER_MAX else None


def parse_result(data: object) -> dict[str, Any]:
    """A result record as written by :func:`append_result`, checked.

    Raises:
        ValueError: Anything is missing, of the wrong type or not a finite number.
    """
    if not isinstance(data, dict) or data.get("version") != RESULT_VERSION:
        raise ValueError("not a bench result of version 1")
    figures = data.get("figures")
    if not isinstance(figures, dict):
        raise ValueError("figures is not an object")
    for name in ("output_tokens_per_s", "request_throughput"):
        if _number(figures.get(name)) is None:
            raise ValueError(f"figures.{name} is not a number")
    for name in ("ttft_ms", "itl_ms"):
        part = figures.get(name)
        if not isinstance(part, dict) or any(_number(part.get(p)) is None for p in ("p50", "p95")):
            raise ValueError(f"figures.{name} is not {{p50, p95}}")
    key = data.get("key")
    if key is not None:
        if not isinstance(key, dict):
            raise ValueError("key is not an object")
        for name in KEY_FIELDS:
            expected = int if name == "gpus" else str
            value = key.get(name)
            if not isinstance(value, expected) or isinstance(value, bool):
                raise ValueError(f"key.{name} is not a {expected.__name__}")
            if name == "gpus" and _number(value) is None:
                raise ValueError("key.gpus is out of range")
        for name in ("backend_version", "args_hash"):
            if key.get(name) is not None and not isinstance(key[name], str):
                raise ValueError(f"key.{name} is not a string")
    if not isinstance(data.get("time"), str):
        raise ValueError("time is not a string")
    return data


def append_result(path: Path, record: Mapping[str, Any]) -> None:
    """Append one result line to ``path`` (created as needed; never through a symlink).

    Raises:
        OSError: It cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True, allow_nan=False) + "\n"
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    fd = os.open(path, flags, 0o644)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read_results(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The valid results in ``path`` (oldest first) and one line per problem (skipped
    lines, an unreadable file). A missing file has no results and no problem."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        return [], [f"cannot read {path}: {exc.strerror or exc}"]
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return [], [f"{path} is not a regular file"]
        start = max(info.st_size - READ_MAX, 0)
        data = os.pread(fd, READ_MAX, start)
    except OSError as exc:
        return [], [f"cannot read {path}: {exc.strerror or exc}"]
    finally:
        os.close(fd)
    lines = data.split(b"\n")
    if start > 0:
        lines = lines[1:]  # cut by the bound
    out: list[dict[str, Any]] = []
    bad = 0
    first = ""
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            if len(raw) > LINE_MAX:
                raise ValueError(f"longer than {LINE_MAX} bytes")
            out.append(parse_result(json.loads(raw.decode("utf-8"))))
        except (ValueError, RecursionError) as exc:
            bad += 1
            first = first or f"line {number}: {str(exc)[:80]}"
    problems = [f"skipped {bad} malformed line(s) of {path} ({first})"] if bad else []
    return out, problems


def from_results(results: Iterable[Mapping[str, Any]], source: str) -> list[Measurement]:
    """The measurements of results that carry a configuration key (newest per key)."""
    found: dict[tuple[Any, ...], Measurement] = {}
    for r in results:
        key = r.get("key")
        if not isinstance(key, dict):
            continue  # a URL benchmarked without a run record: no configuration
        k = (
            key["model"],
            key["target"],
            key["configuration"],
            key["precision"],
            key["gpus"],
            key["backend"],
        )
        f = r["figures"]
        version, hashed = key.get("backend_version"), key.get("args_hash")
        found.pop((k, version, hashed), None)  # the newest last
        found[(k, version, hashed)] = Measurement(
            k,
            float(f["output_tokens_per_s"]),
            float(f["ttft_ms"]["p50"]),
            float(f["ttft_ms"]["p95"]),
            float(f["itl_ms"]["p50"]),
            f"{source}, {r['time']}",
            version,
            hashed,
        )
    return list(found.values())


def from_recipe(recipe: Recipe) -> list[Measurement]:
    """The figures a recipe publishes (``measured:`` of each configuration)."""

    data = recipe.data
    out = []
    for i, conf, backend in configurations(data):
        for m in conf.get("measured", []):
            key = (
                recipe.model_id,
                m["hardware"],
                config_id(conf, i),
                m["precision"],
                m["gpus"],
                backend,
            )
            itl = m.get("itl_ms", {}).get("p50")
            out.append(
                Measurement(
                    key,
                    float(m["output_tokens_per_s"]),
                    float(m["ttft_ms"]["p50"]),
                    float(m["ttft_ms"]["p95"]),
                    None if itl is None else float(itl),
                    f"published in {recipe.path}: {m['source']}",
                    m.get("backend_version"),
                )
            )
    return out


def best(measured: Sequence[Measurement], optimize: str) -> Measurement:
    """The best of ``measured`` for ``optimize``: the most output tokens/s (throughput) or
    the lowest median time to first token (latency)."""
    if optimize == "throughput":
        return max(measured, key=lambda m: m.output_tokens_per_s)
    return min(measured, key=lambda m: m.ttft_p50_ms)
