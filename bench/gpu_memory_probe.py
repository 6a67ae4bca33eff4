"""Measure vLLM's startup memory figures on this GPU machine and append them as data points.

    .venv/bin/python bench/gpu_memory_probe.py --python /path/to/vllm-env/bin/python
    .venv/bin/python bench/gpu_memory_probe.py --dry-run          # the runs it would make

On a machine with NVIDIA GPUs and vLLM 0.32, starts the catalog's small models
(Qwen/Qwen3-8B, meta-llama/Llama-3.1-8B-Instruct; ``--model`` for others or a local
folder) at a few settings: tensor parallel 1 and, with two GPUs or more, 2; context 8192
and 32768 (``--context``); once with ``--enforce-eager`` (no graphs); ``--max-runs`` caps
them. Each server runs until vLLM prints
that it serves (or fails, or its share of the time runs out) and is then stopped, its whole
process group. The memory lines of its log ("Model loading took", "Available KV cache
memory", "GPU KV cache size", "Graph capturing finished", "CUDA graph pool memory", ...)
are parsed (:func:`aimc.run.memory_log.memory_figures`) and each run is appended to
``--out`` (bench/data/vllm_startup_logs.yaml) in its schema, with ``bench_inputs`` so that
bench/estimator_accuracy.py evaluates it; every third point of the file is ``test``.

Bounded: ``--budget`` seconds in all (default 540, under 10 minutes); runs that no longer
fit are skipped. The weights must be in the Hugging Face cache already (the server runs
with ``HF_HUB_OFFLINE=1``). ``--cpu`` runs vLLM's CPU backend instead (the tests use it
with a tiny model). Exit status: 0 when every run started, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from aimc.run.memory_log import memory_figures

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "data" / "vllm_startup_logs.yaml"
MODELS = ("Qwen/Qwen3-8B", "meta-llama/Llama-3.1-8B-Instruct")
#: vLLM prints one of these once it serves, or one of the others when it gave up.
READY = ("Starting vLLM server on", "Application startup complete")
FAILED = ("Engine core initialization failed", "EngineCore failed to start", "Traceback")


@dataclass(frozen=True)
class Run:
    """One server start: model, tensor parallelism, context, eager."""

    model: str
    tp: int
    context: int
    eager: bool = False

    def args(self) -> list[str]:
        """The server's arguments (the port added at start)."""
        words = ["--model", self.model, "--tensor-parallel-size", str(self.tp)]
        words += ["--max-model-len", str(self.context)]
        return words + (["--enforce-eager"] if self.eager else [])


def plan_runs(models: list[str], gpus: int, contexts: list[int]) -> list[Run]:
    """The runs, most useful first: each model at TP 1 and the first context, the first
    model at the other contexts and eager, then TP 2 when there are two GPUs."""
    first = contexts[0]
    runs = [Run(m, 1, first) for m in models] + [Run(models[0], 1, c) for c in contexts[1:]]
    runs += [Run(models[0], 1, first, eager=True)]
    runs += [Run(m, 2, first) for m in models] if gpus >= 2 else []
    return runs


def gpu_info(python: str, cpu: bool) -> dict[str, Any]:
    """Count, name and CUDA total (GiB) of the GPUs, as torch sees them."""
    if cpu:
        return {"count": 1, "name": "CPU", "total_gib": None}
    code = (
        "import json, torch\n"
        "p = torch.cuda.get_device_properties(0)\n"
        "print(json.dumps({'count': torch.cuda.device_count(), 'name': p.name, "
        "'total_gib': round(p.total_memory / 2**30, 2)}))\n"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise SystemExit(f"no CUDA GPU visible to {python}: {out.stderr.strip()[-300:]}")
    import json

    info: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return info


def serve(python: str, run: Run, timeout: float, cpu: bool, log: Path) -> bool:
    """Start the server of ``run``, wait until it serves (True), fails or times out, stop
    its process group; its output goes to ``log``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_LOGGING_LEVEL": "INFO"}
    extra = ["--dtype", "float32"] + ([] if run.eager else ["--enforce-eager"]) if cpu else []
    if cpu:
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    command = [python, "-m", "vllm.entrypoints.openai.api_server", *run.args(), *extra]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)  # fmt: skip
    deadline, ready = time.monotonic() + timeout, False
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            text = log.read_text(errors="replace")
            if any(m in text for m in READY):
                ready = True
                break
            if any(m in text for m in FAILED):
                break
            time.sleep(2)
    finally:
        stop(proc)
    return ready


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server and every process it started (its process group)."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # workers left after the server exited
        os.killpg(proc.pid, signal.SIGKILL)


def point_from_log(text: str, run: Run, gpu: dict[str, Any], index: int) -> dict[str, Any]:
    """A data point (vllm_startup_logs.yaml's schema) from a run's log."""
    figures = memory_figures(text)
    raw = figures.pop("raw_lines")
    version = figures.pop("vllm_version", None)
    profile = figures.pop("cudagraph_profile", None)
    total = figures.get("gpu_memory_total_gib") or gpu["total_gib"]
    name = Path(run.model).name.lower()
    today = datetime.date.today().isoformat()
    return {
        "id": f"probe-{today}-{name}-tp{run.tp}-{run.context}{'-eager' if run.eager else ''}",
        "source_url": "bench/gpu_memory_probe.py",
        "source_note": f"measured {today} on {socket.gethostname()} by bench/gpu_memory_probe.py",
        "vllm_version": version,
        "vllm_version_source": "printed",
        "gpu": gpu["name"],
        "gpu_count": run.tp,
        "gpu_memory_total": f"{total} GiB" if total else None,
        "gpu_memory_total_source": "printed (Free memory on device) or torch total_memory",
        "model_id": run.model,
        "tensor_parallel_size": run.tp,
        "max_model_len": run.context,
        "gpu_memory_utilization": 0.92,
        "cudagraph_profile": profile,
        "enforce_eager": run.eager,
        "figures": figures,
        "raw_lines": raw,
        "bench_inputs": {
            "facts_of": run.model,
            "precision": "bf16",
            "tensor_parallel_size": run.tp,
            "gpu_memory_gib": total,
            "gpu_name": gpu["name"],
            "enforce_eager": run.eager,
        },
        "split": "test" if index % 3 == 2 else "fit",
    }


def clean(value: Any) -> Any:
    """``value`` with every string's unprintable characters written as ``\\xNN`` (a log
    line may hold terminal codes or U+0085, which YAML reads back as a line break)."""
    if isinstance(value, str):
        return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in value)
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def dump(points: list[dict[str, Any]], stream: Any) -> None:
    """Write points as a YAML list (strings cleaned: :func:`clean`)."""
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.dump(clean(points), stream)


def append(out: Path, points: list[dict[str, Any]]) -> None:
    """Append points to the YAML list in ``out`` (its text and comments kept)."""
    with out.open("a", encoding="utf-8") as f:
        f.write("\n")
        dump(points, f)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default=sys.executable, help="interpreter that imports vLLM")
    ap.add_argument("--model", action="append", help="model id or folder (repeatable)")
    ap.add_argument("--out", type=Path, default=OUT, help="data file to append to")
    ap.add_argument("--context", type=int, action="append", help="max-model-len (repeatable)")
    ap.add_argument("--max-runs", type=int, default=0, help="at most this many runs")
    ap.add_argument("--budget", type=float, default=540, help="seconds in all (default 540)")
    ap.add_argument("--cpu", action="store_true", help="vLLM's CPU backend (tests)")
    ap.add_argument("--dry-run", action="store_true", help="print the runs, start nothing")
    a = ap.parse_args(argv)
    start = time.monotonic()
    models, contexts = a.model or list(MODELS), a.context or [8192, 32768]
    if a.dry_run:
        for run in plan_runs(models, 2, contexts)[: a.max_runs or None]:
            print("would run:", " ".join(run.args()))
        return 0
    gpu = gpu_info(a.python, a.cpu)
    runs = plan_runs(models, 1 if a.cpu else gpu["count"], contexts)[: a.max_runs or None]
    existing = YAML(typ="safe").load(a.out.read_text()) if a.out.exists() else []
    points, failed = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for run in runs:
            left = a.budget - (time.monotonic() - start)
            if left < 60:
                print(f"skipped (time): {' '.join(run.args())}")
                continue
            log = Path(tmp) / "server.log"
            ready = serve(a.python, run, min(left - 15, 240), a.cpu, log)
            text = log.read_text(errors="replace")
            point = point_from_log(text, run, gpu, len(existing or []) + len(points))
            print(f"{'served' if ready else 'FAILED'}: {' '.join(run.args())}: {point['figures']}")
            failed += not ready
            if ready:
                points.append(point)
    if points:
        append(a.out, points)
        print(f"appended {len(points)} points to {a.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
