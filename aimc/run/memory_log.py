"""vLLM's startup memory figures, read from its log.

Takes the text of a vLLM server's log; hands on the memory figures it printed, keyed as in
bench/data/vllm_startup_logs.yaml (``figures:``), with the lines they came from. The lines
are those of vLLM 0.32.0 (paths under ``site-packages/vllm``) and the older forms seen in
published logs:

* ``Model loading took X GiB memory and S seconds`` (``v1/worker/gpu/model_runner.py``;
  before 0.10: ``... X GiB and S seconds``);
* ``Available KV cache memory: X GiB`` (``v1/worker/gpu_worker.py``), once per worker: the
  smallest is kept, as vLLM cuts every rank to the smallest (0.19-era builds also print
  ``Current kv cache memory in use is X GiB``);
* ``GPU KV cache size: N tokens`` and ``Maximum concurrency for L tokens per request: Cx``
  (``v1/core/kv_cache_utils.py``; one line in 0.32, two before; ``CPU`` on the CPU backend);
* ``Profiling CUDA graph memory: PIECEWISE=n (largest=N), FULL=...`` and ``Estimated CUDA
  graph memory: X GiB total`` (the V1 model runner);
* ``Graph capturing finished in S secs, took X GiB``: with Model Runner V2 (0.32's default)
  twice, the profiling capture before the KV cache is sized and the real one after; the
  first of two is ``graph_profile_capture_gib``, the last ``graph_capture_took_gib``;
* ``CUDA graph pool memory: A GiB (actual), E GiB (estimated)`` (``gpu_worker.py``);
* ``The current --gpu-memory-utilization=U is equivalent to --gpu-memory-utilization=E
  without CUDA graph memory profiling``;
* ``Free memory on device (F/T GiB) on startup ... Actual usage is X GiB for consumed
  memory (weights + non-torch), P GiB for peak activation, and G GiB for CUDAGraph memory``
  (0.32; its peak activation includes the applied graph estimate; 0.19 printed ``W GiB for
  weight, P GiB for peak activation, N GiB for non-torch memory``) and the CPU backend's
  ``Explicitly set (X/T) GiB for KV cache``;
* the version: ``Initializing a V1 LLM engine (v0.32.0)`` or the banner's ``version 0.32.0``.

Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["FIGURES", "memory_figures"]

_NUM = r"(-?[0-9][0-9,]*(?:\.[0-9]+)?)"
#: Figure -> the pattern whose first group is its number.
FIGURES: dict[str, str] = {
    "model_loading_gib": rf"Model loading took {_NUM} GiB",
    "available_kv_cache_gib": (
        rf"(?:Available KV cache memory:|Current kv cache memory in use is) {_NUM} GiB"
    ),
    "gpu_kv_cache_tokens": rf"(?:GPU|CPU|XPU) KV cache size: {_NUM} tokens",
    "max_concurrency": rf"Maximum concurrency for [0-9,]+ tokens per request: {_NUM}x",
    "estimated_cuda_graph_gib": rf"Estimated CUDA graph memory: {_NUM} GiB total",
    "cuda_graph_pool_actual_gib": rf"CUDA graph pool memory: {_NUM} GiB \(actual\)",
    "cuda_graph_pool_estimated_gib": rf"CUDA graph pool memory: .*?{_NUM} GiB \(estimated\)",
    "graph_capture_took_gib": rf"Graph capturing finished in [0-9.]+ secs?, took {_NUM} G",
    "equivalent_util_without_cg_profiling": (
        rf"is equivalent to --gpu-memory-utilization={_NUM} without CUDA"
    ),
    "peak_activation_gib": rf"{_NUM} GiB for peak activation",
    "non_torch_gib": rf"{_NUM} GiB for non-torch memory",
    "consumed_weights_plus_non_torch_gib": rf"{_NUM} GiB for consumed memory",
    "init_free_gib": rf"Free memory on device \({_NUM}/[0-9.]+ GiB\)",
    "gpu_memory_total_gib": rf"Free memory on device \([0-9.]+/{_NUM} GiB\)",
    "cpu_kv_cache_space_gib": rf"Explicitly set \({_NUM}/[0-9.]+\) GiB for KV cache",
}
_PROFILE = re.compile(r"Profiling CUDA graph memory: ((?:PIECEWISE|FULL)=.*)$")
_VERSION = re.compile(r"(?:LLM engine \(v|\bversion )([0-9][0-9A-Za-z.+-]*)")
#: What leads a vLLM log line: ``(Worker_TP0 pid=1) INFO 11-27 08:38:41 `` and ANSI colour.
_PREFIX = re.compile(r"^(?:\x1b\[[0-9;]*m)*(?:\([^)]*\)\s+)?(?:[A-Z]+\s+[0-9-]+\s+[0-9:.]+\s+)?")
_COMPILED = {key: re.compile(pattern) for key, pattern in FIGURES.items()}


def memory_figures(text: str) -> dict[str, Any]:
    """The memory figures in ``text`` (a vLLM log): figure -> number (absent when not
    printed), ``cudagraph_profile``, ``vllm_version`` and ``raw_lines``, the lines they came
    from (prefix, timestamp and colour removed), in log order."""
    found: dict[str, list[float]] = {}
    out: dict[str, Any] = {}
    raw: list[str] = []
    for line in text.splitlines():
        line = _PREFIX.sub("", line.strip()).strip()
        hit = False
        for key, pattern in _COMPILED.items():
            match = pattern.search(line)
            if match:
                found.setdefault(key, []).append(float(match.group(1).replace(",", "")))
                hit = True
        profile = _PROFILE.search(line)
        if profile:
            out.setdefault("cudagraph_profile", profile.group(1).strip())
            hit = True
        version = _VERSION.search(line)
        if version and "vllm_version" not in out:
            out["vllm_version"] = version.group(1)
        if hit and line not in raw:
            raw.append(line)
    for key, values in found.items():
        out[key] = _pick(key, values)
    captures = found.get("graph_capture_took_gib", [])
    if len(captures) > 1:
        out["graph_profile_capture_gib"] = captures[0]
    for key in ("gpu_kv_cache_tokens",):
        if key in out:
            out[key] = int(out[key])
    out["raw_lines"] = raw
    return out


def _pick(key: str, values: list[float]) -> float:
    """One figure from its values across workers: the smallest KV cache (vLLM cuts every
    rank to it), the last graph capture (the real one), else the first."""
    if key in ("available_kv_cache_gib", "gpu_kv_cache_tokens"):
        return min(values)
    if key == "graph_capture_took_gib":
        return values[-1]
    return values[0]
