"""Estimate stage: will a configuration fit in GPU memory, and with how much context?

Takes model facts, the precision and tensor-parallel size, the GPU's memory and the memory
fraction the engine may use; hands on an :class:`Estimate` per GPU: weights, KV cache per
token and for one full-length request, runtime overhead, the longest context that fits and
a verdict (``runnable``, ``low-memory``, ``incompatible``). Pure arithmetic, no I/O.

The model follows how vLLM 0.32 budgets memory (bench/data/vllm_032_memory_accounting.md):
``total x gpu-memory-utilization`` must hold the weights, the memory consumed since its
baseline (non-torch memory: NCCL buffers with more than one GPU), the activation peak of its
profiling run (``max-num-batched-tokens`` tokens, the sampler over ``max-num-seqs``
requests) and, given a :class:`~aimc.plan.vllm_memory.Runtime`, its CUDA-graph estimate
(an upper bound here); what is left is KV cache, cut to whole blocks, and vLLM refuses to
start when one request of ``max-model-len`` tokens does not fit. ``--kv-cache-memory-bytes``
replaces the budget. A verdict within the graph estimate's band of the edge says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aimc.plan.vllm_memory import Runtime

__all__ = [
    "BYTES_PER_PARAM",
    "INT4_GROUP",
    "REFUSED_UTILIZATION",
    "Estimate",
    "estimate",
    "kv_bytes_per_token",
    "weights_size",
]

GIB = 2**30

#: Values that share one scale (and zero point) in an int4 checkpoint: 128 along the input
#: dimension, as in every int4 (AWQ) checkpoint of the shipped catalog.
INT4_GROUP = 128

#: Bytes per parameter of the quantized (linear) weights, by precision.
#: int8 (W8A8, compressed-tensors): 1 byte; its scales are one per output channel (< 0.1%).
#: int4: 4 bits packed into int32, plus per group of 128 values a 16-bit scale and a 4-bit
#: zero point (AWQ; symmetric GPTQ / W4A16 store no zero point: 0.4% less; per-channel
#: scales: 3.8% less).
#: mxfp4: 4 bits + a shared 8-bit scale per 32 values; nvfp4: 4 bits + an FP8 scale per 16.
BYTES_PER_PARAM = {
    "fp32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5 + (2 + 0.5) / INT4_GROUP,
    "mxfp4": 4.25 / 8,
    "nvfp4": 4.5 / 8,
}

#: Bytes per KV cache element by --kv-cache-dtype (``auto``: the activation dtype).
KV_BYTES = {"fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "bfloat16": 2, "bf16": 2, "float16": 2}

#: Non-torch memory per GPU (CUDA context, NCCL buffers): about 0.25 GiB alone, about
#: 2.1 GiB per GPU once tensor parallelism brings NCCL in (vLLM 0.19 startup logs).
NON_TORCH_GIB = {1: 0.25, "tp": 2.1}
#: Activation peak of vLLM's profiling run, in GiB ("GiB for peak activation"): dominated
#: by the sampler's logits (~14 KiB per vocabulary entry at 1024 requests), more for MoE
#: routing; the rest doubles with fp32 activations. Fitted on the train points of vLLM 0.19
#: H100 logs (bench/fit_memory_constants.py).
ACTIVATION_BASE_GIB = 0.20
ACTIVATION_PER_VOCAB_GIB = 1.35e-5
ACTIVATION_MOE_GIB = 0.32
#: The batch the activation constants were measured with (vLLM's H100 defaults): the
#: sampler term scales with the requests of the profiling run, the rest with its tokens
#: (upwards only: no measurement below it).
FIT_SEQS = 1024
FIT_TOKENS = 8192
#: Tokens per KV cache block (vLLM's default on CUDA and ROCm): capacity is whole blocks.
BLOCK_TOKENS = 16
#: Vocabulary assumed when the recipe does not give one.
DEFAULT_VOCAB = 128_000
#: How the reason of a configuration vLLM refuses for its memory utilization starts.
REFUSED_UTILIZATION = "--gpu-memory-utilization"
#: Shortest context worth offering as "fits with a shorter --max-model-len".
MIN_CONTEXT = 1024


@dataclass(frozen=True)
class Estimate:
    """Memory of one configuration, per GPU, in GiB.

    Attributes:
        weights_gib: The GPU's share of the weights.
        weights_basis: How the weights were sized (``checkpoint``, ``recipe``,
            ``parameters``).
        kv_bytes_per_token: KV cache bytes per token of context on this GPU (full-attention
            layers; sliding-window layers cost at most their window).
        kv_gib: KV cache for one request of ``context_length`` tokens.
        overhead_gib: Activation peak, non-torch memory and CUDA graphs.
        budget_gib: GPU memory x memory utilization.
        need_gib: weights + overhead + kv for one full-length request.
        context_length: The context the configuration asks for.
        max_context: The longest single request that fits (0 when the weights do not).
        kv_capacity_tokens: Tokens the KV cache holds (vLLM's "GPU KV cache size").
        verdict: ``runnable``, ``low-memory`` or ``incompatible``.
        reason: One line explaining the verdict with the numbers (and the caveat).
        graph_gib: CUDA-graph memory taken out of the KV cache budget (upper bound).
        caveat: Why the verdict may not hold (near the edge by less than the graph
            estimate's band), or empty.
    """

    weights_gib: float
    weights_basis: str
    kv_bytes_per_token: float
    kv_gib: float
    overhead_gib: float
    budget_gib: float
    need_gib: float
    context_length: int
    max_context: int
    kv_capacity_tokens: int
    verdict: str
    reason: str
    graph_gib: float = 0.0
    caveat: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON form (GiB rounded to 0.01), a new dict each time: the fields in their order
        (all scalars: no deepcopy; the instance's own attributes are its fields, set in
        their order by ``__init__``: nothing else is kept on it)."""
        data = dict(self.__dict__)
        for key in _GIB_FIELDS:
            data[key] = round(data[key], 2)
        data["kv_bytes_per_token"] = round(self.kv_bytes_per_token, 1)
        return data


#: :class:`Estimate`'s fields in GiB, which JSON rounds to 0.01.
_GIB_FIELDS = ("weights_gib", "kv_gib", "overhead_gib", "budget_gib", "need_gib", "graph_gib")


def kv_bytes_per_token(facts: Mapping[str, Any], tp: int, kv_bytes: int) -> float:
    """KV cache bytes per token, per GPU, for the full-attention layers.

    Standard attention stores K and V for each KV head: ``2 x kv_heads x head_dim`` per layer,
    split across GPUs while ``tp <= kv_heads`` (beyond that each GPU keeps one replicated
    head). MLA stores one latent vector per layer (``kv_lora_rank + qk_rope_head_dim``),
    the same on every GPU.
    """
    mla = facts.get("mla")
    layers = facts["layers"] - facts.get("sliding_window", {}).get("layers", 0)
    if mla:
        return float(layers * (mla["kv_lora_rank"] + mla["qk_rope_head_dim"]) * kv_bytes)
    kv_heads = facts["kv_heads"]
    per_gpu_heads = kv_heads / tp if tp <= kv_heads else 1
    return float(2 * layers * per_gpu_heads * facts["head_dim"] * kv_bytes)


def weights_size(facts: Mapping[str, Any], precision: str) -> float:
    """Bytes of weights from the parameter count; quantized checkpoints keep the embedding
    and the LM head in 16 bits (as FP8, INT8 and INT4 checkpoints do: AWQ, GPTQ and
    compressed-tensors quantize only the linear layers of the decoder blocks).

    Qwen3-32B AWQ: 31.21e9 linear x 0.5195 + 1.556e9 x 2 = 18.00 GiB, what vLLM loads."""
    params = float(facts["parameters"])
    per = BYTES_PER_PARAM[precision]
    if per >= 2:
        return params * per
    vocab, hidden = float(facts.get("vocab_size", DEFAULT_VOCAB)), float(facts["hidden_size"])
    embed = min(params, 2.0 * vocab * hidden)
    return (params - embed) * per + embed * 2


def _kv_for(facts: Mapping[str, Any], per_token_full: float, tokens: int) -> float:
    """Bytes of KV cache for one request of ``tokens`` tokens."""
    sliding = facts.get("sliding_window")
    total = per_token_full * tokens
    if sliding and sliding["layers"]:
        full_layers = facts["layers"] - sliding["layers"]
        per_layer = per_token_full / full_layers if full_layers else 0.0
        total += per_layer * sliding["layers"] * min(tokens, sliding["size"])
    return total


def estimate(
    facts: Mapping[str, Any],
    precision: str,
    tp: int,
    memory_gib: float,
    utilization: float,
    context_length: int,
    kv_cache_dtype: str = "auto",
    weights_bytes: float | None = None,
    weights_basis: str = "parameters",
    kv_budget_gib: float | None = None,
    pp: int = 1,
    runtime: Runtime | None = None,
) -> Estimate:
    """The memory estimate of one configuration (see module docstring).

    Args:
        facts: The recipe's model facts.
        precision: Weight precision.
        tp: Tensor-parallel size.
        memory_gib: Memory of one GPU.
        utilization: Fraction of it the engine may use.
        context_length: Tokens per request the configuration asks for.
        kv_cache_dtype: ``auto`` or an fp8 KV cache type.
        weights_bytes: Real total size of the weights, when known.
        weights_basis: Where ``weights_bytes`` came from (``checkpoint``, ``recipe``).
        kv_budget_gib: A fixed KV cache size (vLLM's CPU backend) instead of what is left.
        pp: Pipeline stages: each GPU holds ``1 / (tp x pp)`` of the weights and the KV
            cache of ``layers / pp`` layers; the overhead is the last stage's (the smallest rank).
        runtime: vLLM 0.32's runtime terms; None: H100 batch defaults, no graph term.
    """
    if weights_bytes is None:
        weights_bytes, weights_basis = weights_size(facts, precision), "parameters"
    weights = weights_bytes / (tp * pp) / GIB
    kv_bytes = KV_BYTES.get(kv_cache_dtype, 4 if precision == "fp32" else 2)
    per_token = kv_bytes_per_token(facts, tp, kv_bytes) / pp
    graph = runtime.graph_gib if runtime is not None else 0.0
    overhead = _overhead_gib(facts, precision, tp * pp, runtime) + graph
    budget, kv_free = _kv_free(weights + overhead, memory_gib, utilization, kv_budget_gib, runtime)
    kv_gib = _kv_for(facts, per_token, context_length) / GIB
    made: Estimate = _NEW(Estimate)
    made.__dict__.update(  # Estimate's fields by keyword, in its order: see _judged
        weights_gib=weights,
        weights_basis=weights_basis,
        kv_bytes_per_token=per_token,
        kv_gib=kv_gib,
        overhead_gib=overhead,
        budget_gib=budget,
        need_gib=weights + overhead + kv_gib,
        context_length=context_length,
        max_context=_max_context(facts, per_token, kv_free),
        kv_capacity_tokens=_capacity(facts, per_token, kv_free),
        verdict="",
        reason="",
        graph_gib=graph,
        caveat="",
    )
    return _judged(made, kv_free, memory_gib, utilization, runtime)


def _judged(
    made: Estimate,
    kv_free: float,
    memory_gib: float,
    utilization: float,
    runtime: Runtime | None,
) -> Estimate:
    """``made``, the numbers of an estimate (:func:`estimate` makes it with an empty
    verdict, reason and caveat), with its verdict, reason and caveat (:func:`_verdict`,
    :func:`_caveat`) set in place before anything else reads it.

    :func:`estimate` sets an Estimate's fields as its ``__init__`` sets them, in its
    order, at a fraction of the cost (a frozen dataclass's ``__init__`` sets each through
    ``object.__setattr__``; no second record of the numbers is made): an estimate is made
    for every candidate lint/fit checks (``tests/test_estimate_parts.py`` holds the two
    alike)."""
    verdict, reason = _verdict(made, kv_free, memory_gib, utilization, runtime)
    caveat = _caveat(made, kv_free, memory_gib, runtime)
    if caveat:
        reason = f"{reason}; {caveat}" if reason else caveat
    fields = made.__dict__
    fields["verdict"], fields["reason"], fields["caveat"] = verdict, reason, caveat
    return made


#: How :func:`estimate` makes an :class:`Estimate`.
_NEW = object.__new__


def _kv_free(
    taken: float,
    memory_gib: float,
    utilization: float,
    kv_budget_gib: float | None,
    runtime: Runtime | None,
) -> tuple[float, float]:
    """``(budget, GiB left for the KV cache)`` once ``taken`` GiB (weights and overhead) are
    in: ``--kv-cache-memory-bytes`` replaces the budget (the whole GPU must hold it), a fixed
    CPU KV cache is that size, else what ``memory x utilization`` leaves (nothing when vLLM
    refuses the utilization: :func:`_verdict` says why)."""
    budget = memory_gib * utilization
    if runtime is not None and runtime.kv_cache_memory_gib is not None:
        budget = memory_gib - runtime.pre_baseline_gib
        kv = runtime.kv_cache_memory_gib
        return budget, kv if taken + kv <= budget else 0.0
    if kv_budget_gib is not None:
        return budget, kv_budget_gib if taken <= budget else 0.0
    if runtime is not None and budget > memory_gib - runtime.pre_baseline_gib:
        return budget, 0.0
    return budget, budget - taken


def _overhead_gib(
    facts: Mapping[str, Any], precision: str, gpus: int, runtime: Runtime | None
) -> float:
    """Non-torch memory and the profiling run's activation peak per GPU, in GiB: the
    sampler's logits scale with the run's requests (``min(max-num-seqs,
    max-num-batched-tokens)``), the rest with its tokens above the measured 8192 and with
    the activation dtype."""
    vocab = facts.get("vocab_size", DEFAULT_VOCAB)
    non_torch = NON_TORCH_GIB[1] if gpus == 1 else NON_TORCH_GIB["tp"]
    seqs, tokens = FIT_SEQS, FIT_TOKENS
    if runtime is not None:
        seqs = min(runtime.max_num_seqs, runtime.max_num_batched_tokens)
        tokens = runtime.max_num_batched_tokens
    per_tokens = max(1.0, tokens / FIT_TOKENS)
    activation: float = ACTIVATION_BASE_GIB * per_tokens * (2 if precision == "fp32" else 1)
    activation += vocab * ACTIVATION_PER_VOCAB_GIB * seqs / FIT_SEQS
    activation += ACTIVATION_MOE_GIB * per_tokens if facts.get("experts") else 0.0
    return non_torch + activation


def _capacity(facts: Mapping[str, Any], per_token: float, kv_free: float) -> int:
    """Tokens the KV cache of ``kv_free`` GiB holds (vLLM's "GPU KV cache size")."""
    # vLLM sizes its block pool with every layer's page, sliding-window layers included.
    sliding_layers = facts.get("sliding_window", {}).get("layers", 0)
    full_layers = facts["layers"] - sliding_layers
    per_token_all = per_token * facts["layers"] / full_layers if full_layers else per_token
    if kv_free <= 0 or not per_token_all:
        return 0
    return int(kv_free * GIB / (per_token_all * BLOCK_TOKENS)) * BLOCK_TOKENS  # whole blocks


def _max_context(facts: Mapping[str, Any], per_token: float, kv_free: float) -> int:
    """The longest single request whose KV cache fits in ``kv_free`` GiB (0: none), up to
    the model's ``max_context``.

    A binary search with :func:`_kv_for` as its test, which only grows with the tokens
    (sums and products of non-negative floats by a growing count): its answer is the one
    longest request that passes. The search starts in a window of a few tokens around
    where the arithmetic puts that answer, each end of the window checked by the same
    test first (else the search keeps its whole range): the same answer in ~5 tests
    instead of ~17 (``tests/test_estimate.py`` holds it to the plain search)."""
    lo: int = 0
    if kv_free <= 0:
        return lo
    hi: int = facts["max_context"]
    budget = kv_free * GIB
    guess = _guess(facts, per_token, budget, hi)
    if guess - 2 > lo and _kv_for(facts, per_token, guess - 2) <= budget:
        lo = guess - 2
    if guess + 2 < hi and _kv_for(facts, per_token, guess + 3) > budget:
        hi = guess + 2
    while lo < hi:  # the longest request whose KV cache fits
        mid = (lo + hi + 1) // 2
        if _kv_for(facts, per_token, mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _guess(facts: Mapping[str, Any], per_token: float, budget: float, hi: int) -> int:
    """Where the longest request of :func:`_max_context` lies by the arithmetic (KV bytes
    grow by ``per_token`` a token, and by the sliding-window layers' share up to their
    window), within ``0 .. hi``."""
    sliding = facts.get("sliding_window")
    extra = 0.0
    if sliding and sliding["layers"]:
        full_layers = facts["layers"] - sliding["layers"]
        extra = (per_token / full_layers if full_layers else 0.0) * sliding["layers"]
    if per_token + extra <= 0:
        return hi
    tokens = budget / (per_token + extra)
    if sliding and extra and tokens > sliding["size"]:
        tokens = (budget - extra * sliding["size"]) / per_token if per_token > 0 else hi
    return int(min(max(tokens, 0.0), float(hi)))


def _verdict(
    sized: Estimate,
    kv_free: float,
    memory_gib: float,
    utilization: float,
    runtime: Runtime | None = None,
) -> tuple[str, str]:
    """The verdict of the numbers ``sized`` and its reason with them (``kv_free``: GiB left
    for the KV cache after the weights and the overhead)."""
    weights, overhead, budget = sized.weights_gib, sized.overhead_gib, sized.budget_gib
    need, context_length, max_context = sized.need_gib, sized.context_length, sized.max_context
    by_bytes = runtime is not None and runtime.kv_cache_memory_gib is not None
    if runtime is not None and not by_bytes and budget > memory_gib - runtime.pre_baseline_gib:
        # vLLM 0.32 request_memory(): free memory at its baseline must hold the budget.
        return "incompatible", (
            f"{REFUSED_UTILIZATION} {utilization:g} asks {budget:.1f} GiB per GPU, more "
            f"than the {memory_gib - runtime.pre_baseline_gib:.1f} GiB free after the CUDA "
            "context and NCCL: vLLM refuses to start"
        )
    if kv_free <= 0:  # the usable memory spelled out only here (most estimates fit)
        usable, what = f"{memory_gib:g} x {utilization:g}", ""
        if runtime is not None and by_bytes:
            usable = f"{memory_gib:g} less {runtime.pre_baseline_gib:g} before vLLM's baseline"
            what = " + --kv-cache-memory-bytes"
        return "incompatible", (
            f"not enough memory: weights {weights:.1f} + overhead {overhead:.1f}{what} GiB "
            f"per GPU exceed the {budget:.1f} GiB usable ({usable})"
        )
    if max_context >= context_length:
        capacity = sized.kv_capacity_tokens
        return "runnable", (
            f"needs {need:.1f} of {budget:.1f} GiB per GPU; KV cache holds "
            f"{capacity} tokens ({capacity // max(context_length, 1)} full-length "
            "requests)"
        )
    if max_context >= MIN_CONTEXT:
        fits = max_context // MIN_CONTEXT * MIN_CONTEXT
        return "low-memory", (
            f"{context_length} tokens need {need:.1f} GiB per GPU, {budget:.1f} usable; "
            f"fits with --max-model-len {fits}"
        )
    return "incompatible", (
        f"not enough memory: only {max_context} tokens of KV cache fit next to "
        f"{weights:.1f} GiB of weights per GPU"
    )


def _caveat(sized: Estimate, kv_free: float, memory_gib: float, runtime: Runtime | None) -> str:
    """Why the verdict may not hold: the KV cache of one full-length request is within the
    CUDA-graph estimate's band of what is left for it (either side), or empty."""
    if runtime is None or runtime.graphs is None or not runtime.graphs_subtracted:
        return ""
    if runtime.kv_cache_memory_gib is not None:
        return ""  # the graph estimate does not change the KV cache then
    if sized.budget_gib > memory_gib - runtime.pre_baseline_gib:
        return ""  # refused before any estimate
    graphs, spare = runtime.graphs, kv_free - sized.kv_gib
    if abs(spare) >= graphs.band_gib:
        return ""
    why = f" ({', '.join(graphs.uncertain)})" if graphs.uncertain else ""
    band = (
        f"within the {graphs.band_gib:.1f} GiB band of the CUDA-graph estimate "
        f"({graphs.gib:.1f} GiB, an upper bound{why})"
    )
    if spare >= 0:
        return f"near the edge: {spare:.1f} GiB to spare per GPU, {band}"
    return f"near the edge: short by {-spare:.1f} GiB per GPU, {band}; it may start"
