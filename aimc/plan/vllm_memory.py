"""vLLM 0.32's memory terms around the weights and the KV cache, as the estimator needs them.

Takes a recipe's model facts, the hardware profile, the plan's engine arguments and
environment; hands on a :class:`Runtime`: vLLM's batch defaults on that GPU (they size the
profiling run's activation peak), its CUDA-graph capture sizes and an upper bound of the
CUDA-graph memory it takes out of the KV-cache budget, ``--kv-cache-memory-bytes`` (which
bypasses the budget) and the memory taken before vLLM's baseline. Pure arithmetic, no I/O.

Facts of vLLM 0.32.0 (paths under ``site-packages/vllm``; bench/data/
vllm_032_memory_accounting.md has them term by term):

* batch defaults, API server: ``engine/arg_utils.py`` ``get_batch_defaults``: GPUs of
  160 GiB and more 1024 sequences / 16384 batched tokens; 70 GiB and more but not an A100
  1024 / 8192; others 256 / 2048. ``--performance-mode throughput`` doubles both.
* capture sizes: ``config/vllm.py`` ``_set_cudagraph_sizes``: largest = min(2 x max-num-seqs,
  1024 on Blackwell (sm100) else 512, max-num-batched-tokens); sizes 1, 2, 4, 8..248 by 8,
  256..largest by 16, plus max-num-batched-tokens and max-num-seqs when within it.
  gpt-oss raises the 512 to 1024 (``model_executor/models/config.py``).
* the default mode is FULL_AND_PIECEWISE: a PIECEWISE graph per size and a FULL decode graph
  per size of at most max-num-seqs requests (``v1/worker/gpu/cudagraph_utils.py``);
  ``--enforce-eager`` captures none.
* the estimate is subtracted unless ``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=0``
  (``envs.py``; ``v1/worker/gpu_worker.py`` ``determine_available_memory``).

The graph term is fitted to the CUDA-graph pools vLLM 0.19 measured on H100 (bench/data/
vllm_019_h100_startup_logs.yaml, train points only; bench/fit_memory_constants.py) and
kept an upper bound: the fit plus the largest train residual. vLLM 0.32 subtracts its own
estimate (PIECEWISE graphs captured in full, FULL ones extrapolated from the two largest),
which no datacenter log measures yet; :attr:`Graphs.band_gib` is how far it may lie from
this bound, wider for MoE, MLA, sliding-window attention and capture sizes above 512.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = [
    "RUNTIME_ARGS",
    "RUNTIME_ENV",
    "Graphs",
    "Runtime",
    "batch_defaults",
    "capture_sizes",
    "graph_memory",
    "vllm_runtime",
]

GIB = 2**30
#: vLLM 0.19's default captures on H100: 51 PIECEWISE + 51 FULL graphs up to 512 tokens.
FIT_GRAPHS = 102
FIT_LARGEST = 512
#: CUDA-graph pool, GiB: base + per layer (at 102 graphs) + per layer x hidden/4096 /
#: sqrt(TP) (the largest capture's activations) + per layer for MoE. Fitted by
#: bench/fit_memory_constants.py on the train points of the 0.19 H100 logs.
GRAPH_BASE_GIB = 0.45
GRAPH_PER_LAYER_GIB = 0.0076
GRAPH_ACTIVATION_GIB = 0.0057
GRAPH_MOE_PER_LAYER_GIB = 0.0155
#: The upper bound: the fit plus the largest train residual (dense; MoE and the rest).
GRAPH_MARGIN_GIB = {"dense": 0.2, "uncertain": 0.45}
#: How far vLLM's own estimate may lie from the bound, either way (largest train gap
#: between vLLM 0.19's estimate and this bound).
GRAPH_BAND_GIB = {"dense": 0.6, "uncertain": 1.0}
#: vLLM's floor per extrapolated FULL graph (``_MIN_PER_GRAPH_BYTES``).
MIN_PER_GRAPH_GIB = 1 / 1024
#: Memory in use before vLLM's baseline snapshot (CUDA context; NCCL communicators with
#: tensor parallelism), GiB: the "worker init memory snapshot" of the 0.19 H100 logs. It is
#: outside the budget but must leave ``utilization x total`` free.
PRE_BASELINE_GIB = {1: 0.51, "tp": 2.07}
#: The architectures whose largest capture size vLLM raises to 1024.
LARGE_CAPTURE_ARCHITECTURES = frozenset({"GptOssForCausalLM"})
_MODES = ("NONE", "PIECEWISE", "FULL", "FULL_DECODE_ONLY", "FULL_AND_PIECEWISE")
#: The engine arguments and the environment variables :func:`vllm_runtime` reads: all
#: it reads of them (a caller may hand it those alone; ``tests/test_vllm_memory.py``).
RUNTIME_ARGS = frozenset(
    {
        "performance-mode",
        "max-num-seqs",
        "max-num-batched-tokens",
        "compilation-config",
        "enforce-eager",
        "optimization-level",
        "max-cudagraph-capture-size",
        "cudagraph-capture-sizes",
        "kv-cache-memory-bytes",
    }
)
RUNTIME_ENV = frozenset({"VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS"})


class Graphs(NamedTuple):
    """The CUDA graphs vLLM captures and the memory they take from the KV cache (a tuple,
    as :class:`Runtime`, which holds it: equal, hashed and printed as the frozen dataclass
    it was, field by field, at a seventh of a dataclass's ~0.5 ms of start-up to build).

    Attributes:
        piecewise: PIECEWISE graphs (one per capture size).
        full: FULL graphs (decode batches of at most max-num-seqs requests).
        largest: The largest capture size, in tokens.
        central_gib: The fit of the graph pool.
        gib: The upper bound the estimate subtracts.
        band_gib: How far vLLM's own estimate may lie from ``gib``, either way.
        uncertain: What widens the band (``MoE``, ``capture sizes above 512``...).
    """

    piecewise: int
    full: int
    largest: int
    central_gib: float
    gib: float
    band_gib: float
    uncertain: tuple[str, ...]


class Runtime(NamedTuple):
    """What vLLM 0.32 does around the weights and the KV cache on one configuration (a
    tuple: one is made for every vLLM estimate, at a third of a frozen dataclass's cost).

    Attributes:
        max_num_seqs: Sequences per batch (flag, else vLLM's default for the GPU).
        max_num_batched_tokens: Tokens per batch, the size of the profiling run.
        graphs: The CUDA graphs captured (None: none, eager or mode NONE).
        graphs_subtracted: Whether the graph estimate comes out of the KV cache budget.
        kv_cache_memory_gib: ``--kv-cache-memory-bytes`` in GiB (None: not set).
        pre_baseline_gib: Memory in use before the baseline (context, NCCL).
    """

    max_num_seqs: int
    max_num_batched_tokens: int
    graphs: Graphs | None
    graphs_subtracted: bool
    kv_cache_memory_gib: float | None
    pre_baseline_gib: float

    @property
    def graph_gib(self) -> float:
        """GiB of CUDA graphs taken out of the KV cache budget."""
        return self.graphs.gib if self.graphs is not None and self.graphs_subtracted else 0.0


def batch_defaults(memory_gib: float, gpu_name: str) -> tuple[int, int]:
    """vLLM 0.32's ``(max_num_seqs, max_num_batched_tokens)`` for its API server on a GPU
    of ``memory_gib`` named ``gpu_name`` (``get_batch_defaults``)."""
    if memory_gib >= 160:
        return 1024, 16384
    if memory_gib >= 70 and "a100" not in gpu_name.lower():
        return 1024, 8192
    return 256, 2048


def capture_sizes(max_num_seqs: int, max_num_batched_tokens: int, ceiling: int) -> list[int]:
    """vLLM 0.32's default capture sizes (``_set_cudagraph_sizes``, no speculative decoding,
    ``performance_mode`` balanced); ``ceiling``: 512, or 1024 on Blackwell and for gpt-oss."""
    largest = min(max_num_seqs * 2, ceiling, max_num_batched_tokens)
    sizes = [i for i in (1, 2, 4) if i <= largest]
    sizes += list(range(8, min(largest + 1, 256), 8)) if largest >= 8 else []
    sizes += list(range(256, largest + 1, 16)) if largest >= 256 else []
    sizes += [n for n in (max_num_batched_tokens, max_num_seqs) if n <= largest]
    return sorted(set(sizes))


def graph_memory(
    facts: Mapping[str, Any], layers: int, tp: int, sizes: list[int], mode: str, seqs: int
) -> Graphs | None:
    """The graphs of ``sizes`` in ``mode`` for ``layers`` layers per GPU, and their memory."""
    shape = _GraphFacts.of(facts)
    return _graph_memory(shape, layers, tp, tuple(sizes), mode, seqs)


class _GraphFacts(NamedTuple):
    """What the graph term reads of a model's facts (a tuple: hashed and compared as one,
    in C, by the memos keyed on it)."""

    hidden_size: float
    moe: bool
    mla: bool
    sliding: bool

    @classmethod
    def of(cls, facts: Mapping[str, Any]) -> _GraphFacts:
        return cls(
            float(facts["hidden_size"]),
            bool(facts.get("experts")),
            bool(facts.get("mla")),
            bool(facts.get("sliding_window")),
        )


@functools.lru_cache(maxsize=4096)
def _graph_memory(
    facts: _GraphFacts, layers: int, tp: int, sizes: tuple[int, ...], mode: str, seqs: int
) -> Graphs | None:
    """:func:`graph_memory`, kept for the arguments it is given (all it reads)."""
    if mode == "NONE" or not sizes:
        return None
    largest = max(sizes)
    piecewise = len(sizes) if mode in ("PIECEWISE", "FULL_AND_PIECEWISE") else 0
    full = {"FULL": len(sizes), "PIECEWISE": 0}.get(mode, sum(1 for s in sizes if s <= seqs))
    scale = (piecewise + full) / FIT_GRAPHS
    hidden = facts.hidden_size / 4096
    central = GRAPH_BASE_GIB + GRAPH_PER_LAYER_GIB * layers * scale
    central += GRAPH_ACTIVATION_GIB * layers * hidden * largest / FIT_LARGEST / math.sqrt(tp)
    if facts.moe:
        central += GRAPH_MOE_PER_LAYER_GIB * layers * scale
    central = max(central, GRAPH_BASE_GIB + max(full - 1, 0) * MIN_PER_GRAPH_GIB)
    uncertain = tuple(
        what
        for what, present in (
            ("MoE", facts.moe),
            ("MLA attention", facts.mla),
            ("sliding-window attention", facts.sliding),
            (f"capture sizes up to {largest}", largest > FIT_LARGEST),
        )
        if present
    )
    kind = "uncertain" if uncertain else "dense"
    return Graphs(
        piecewise=piecewise,
        full=full,
        largest=largest,
        central_gib=central,
        gib=central + GRAPH_MARGIN_GIB[kind],
        band_gib=GRAPH_BAND_GIB[kind] * max(1.0, scale),
        uncertain=uncertain,
    )


def vllm_runtime(
    facts: Mapping[str, Any],
    hardware: Mapping[str, Any],
    args: Mapping[str, Any],
    env: Mapping[str, str],
    tp: int,
    pp: int = 1,
    architecture: str = "",
) -> Runtime:
    """vLLM 0.32's runtime terms for one configuration.

    Args:
        facts: The recipe's model facts.
        hardware: The hardware profile (``memory_gib``, ``name``, ``description``,
            ``architecture``).
        args: Engine arguments, flag name -> value (those of :data:`RUNTIME_ARGS` suffice).
        env: Environment, name -> value (those of :data:`RUNTIME_ENV` suffice).
        tp: Tensor-parallel size.
        pp: Pipeline stages (each holds ``layers / pp`` layers).
        architecture: The model's transformers architecture.
    """
    memory = float(hardware["memory_gib"])
    name = f"{hardware.get('name', '')} {hardware.get('description', '')}"
    seqs, tokens = batch_defaults(memory, name)
    ceiling = 1024 if str(hardware.get("architecture", "")).startswith("sm10") else 512
    ceiling = 1024 if architecture in LARGE_CAPTURE_ARCHITECTURES else ceiling
    mode, given, kv_bytes = _NO_FLAGS  # most plans set none of the flags read here
    if args:
        seqs, tokens, ceiling, mode, given, kv_bytes = _flags(args, seqs, tokens, ceiling)
    layers = math.ceil(int(facts["layers"]) / max(pp, 1))
    shape = _GraphFacts.of(facts)
    return Runtime(  # by position, in Runtime's order (keywords cost twice as much)
        seqs,  # max_num_seqs
        tokens,  # max_num_batched_tokens
        _graphs(shape, layers, tp, seqs, tokens, ceiling, given, mode),  # graphs
        str(env.get("VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS", "1")) != "0",  # graphs_subtracted
        kv_bytes / GIB if kv_bytes is not None and kv_bytes > 0 else None,  # kv_cache_memory_gib
        PRE_BASELINE_GIB[1] if tp * pp == 1 else PRE_BASELINE_GIB["tp"],  # pre_baseline_gib
    )


#: :func:`_flags` of no engine arguments: the mode, capture sizes and KV cache bytes
#: (the batch and ceiling as they were; ``tests/test_vllm_memory.py``).
_NO_FLAGS: tuple[str, None, None] = ("FULL_AND_PIECEWISE", None, None)


def _flags(
    args: Mapping[str, Any], seqs: int, tokens: int, ceiling: int
) -> tuple[int, int, int, str, tuple[int, ...] | None, float | None]:
    """The batch, capture ceiling, CUDA-graph mode, capture sizes and
    ``--kv-cache-memory-bytes`` that ``args`` set, from vLLM's defaults ``seqs``, ``tokens``
    and ``ceiling``."""
    if args.get("performance-mode") == "throughput":
        seqs, tokens = seqs * 2, tokens * 2
    seqs = _int(args.get("max-num-seqs"), seqs)
    tokens = _int(args.get("max-num-batched-tokens"), tokens)
    compilation = _mapping(args.get("compilation-config"))
    mode = str(compilation.get("cudagraph_mode", "FULL_AND_PIECEWISE")).upper().rsplit(".", 1)[-1]
    mode = mode if mode in _MODES else "FULL_AND_PIECEWISE"
    if args.get("enforce-eager") is True or str(args.get("optimization-level", "")) == "0":
        mode = "NONE"
    ceiling = _int(args.get("max-cudagraph-capture-size"), ceiling)
    ceiling = _int(compilation.get("max_cudagraph_capture_size"), ceiling)
    given = _sizes(
        args.get("cudagraph-capture-sizes") or compilation.get("cudagraph_capture_sizes")
    )
    sizes = tuple(given) if given is not None else None
    return seqs, tokens, ceiling, mode, sizes, _bytes(args.get("kv-cache-memory-bytes"))


@functools.lru_cache(maxsize=4096)
def _graphs(
    facts: _GraphFacts,
    layers: int,
    tp: int,
    seqs: int,
    tokens: int,
    ceiling: int,
    given: tuple[int, ...] | None,
    mode: str,
) -> Graphs | None:
    """The graphs of :func:`vllm_runtime`'s terms (``given``: the capture sizes a flag
    names, else None: vLLM's defaults), kept for those few numbers: all the graph term
    reads (one key of scalars, not the tens of capture sizes the memos below hash)."""
    sizes = given if given is not None else _capture_sizes(seqs, tokens, ceiling)
    return _graph_memory(facts, layers, tp, _within(sizes, tokens), mode, seqs)


@functools.lru_cache(maxsize=1024)
def _capture_sizes(max_num_seqs: int, max_num_batched_tokens: int, ceiling: int) -> tuple[int, ...]:
    return tuple(capture_sizes(max_num_seqs, max_num_batched_tokens, ceiling))


@functools.lru_cache(maxsize=1024)
def _within(sizes: tuple[int, ...], tokens: int) -> tuple[int, ...]:
    """The capture sizes of at most ``tokens`` tokens."""
    return tuple(s for s in sizes if s <= tokens)


def _int(value: object, default: int) -> int:
    """``value`` as a positive integer, else ``default``."""
    if value is None:  # the usual case: no such flag
        return default
    number = _bytes(value)
    return int(number) if number is not None and number > 0 else default


def _bytes(value: object) -> float | None:
    """A vLLM human-readable integer (``8G``, ``25.6k``, ``4096``) as a number, or None
    (``argparse_utils.human_readable_int``: k/m/g/t decimal, K/M/G/T binary)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    scale = {"k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "K": 2**10, "M": 2**20, "G": GIB}
    scale["T"] = 2**40
    factor = scale.get(text[-1:], 1) if text else 1
    try:
        return float(text[:-1] if factor != 1 else text) * factor
    except ValueError:
        return None


def _mapping(value: object) -> Mapping[str, Any]:
    """A JSON flag's value as a mapping (empty when it is not one)."""
    if value is None:  # the usual case: no such flag
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, Mapping) else {}


def _sizes(value: object) -> list[int] | None:
    """User-given capture sizes (a list, or a JSON/comma list), or None."""
    if isinstance(value, str):
        value = [v for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
    if not isinstance(value, list) or not value:
        return None
    sizes = [_int(v, 0) for v in value]
    return sorted({s for s in sizes if s > 0}) or None
