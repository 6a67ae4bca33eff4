"""Estimate stage: will a configuration fit in GPU memory, and with how much context?

Takes model facts, the precision and tensor-parallel size, the GPU's memory and the memory
fraction the engine may use; hands on an :class:`Estimate` per GPU: weights, KV cache per
token and for one full-length request, runtime overhead, the longest context that fits and
a verdict (``runnable``, ``low-memory``, ``incompatible``). Pure arithmetic, no I/O.

The model follows how vLLM budgets memory: ``total x gpu-memory-utilization`` must hold the
weights, the activation peak of its profiling run, non-torch memory (NCCL buffers with
more than one GPU); what is left is KV cache (CUDA graphs are captured afterwards, outside
the budget), and vLLM refuses to start when
one request of ``max-model-len`` tokens does not fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = [
    "BYTES_PER_PARAM",
    "INT4_GROUP",
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
#: Activation peak of vLLM's profiling run, in GiB: dominated by the sampler's logits
#: (a constant plus ~13 KiB per vocabulary entry), more for MoE routing and fp32. Fitted on
#: vLLM 0.19 startup logs of 20 models (bench/estimator_accuracy.py).
ACTIVATION_BASE_GIB = 0.36
ACTIVATION_PER_VOCAB_GIB = 1.28e-5
ACTIVATION_MOE_GIB = 0.4
ACTIVATION_FP32_GIB = 0.32
#: Vocabulary assumed when the recipe does not give one.
DEFAULT_VOCAB = 128_000
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
        overhead_gib: Activation peak and non-torch memory.
        budget_gib: GPU memory x memory utilization.
        need_gib: weights + overhead + kv for one full-length request.
        context_length: The context the configuration asks for.
        max_context: The longest single request that fits (0 when the weights do not).
        kv_capacity_tokens: Tokens the KV cache holds (vLLM's "GPU KV cache size").
        verdict: ``runnable``, ``low-memory`` or ``incompatible``.
        reason: One line explaining the verdict with the numbers.
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

    def to_json(self) -> dict[str, Any]:
        """JSON form (GiB rounded to 0.01)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}  # all scalars: no deepcopy
        for key in ("weights_gib", "kv_gib", "overhead_gib", "budget_gib", "need_gib"):
            data[key] = round(data[key], 2)
        data["kv_bytes_per_token"] = round(self.kv_bytes_per_token, 1)
        return data


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
        pp: Pipeline-parallel size (nodes): each GPU holds ``1 / (tp x pp)`` of the weights
            and the KV cache of ``layers / pp`` layers; the overhead is not split (the
            last stage holds the sampler's logits).
    """
    if weights_bytes is None:
        weights_bytes = weights_size(facts, precision)
        weights_basis = "parameters"
    weights = weights_bytes / (tp * pp) / GIB
    activation_bytes = 4 if precision == "fp32" else 2
    kv_bytes = KV_BYTES.get(kv_cache_dtype, activation_bytes)
    per_token = kv_bytes_per_token(facts, tp, kv_bytes) / pp
    overhead = _overhead_gib(facts, precision, tp)
    budget = memory_gib * utilization
    if kv_budget_gib is not None:
        kv_free = kv_budget_gib if weights + overhead <= budget else 0.0
    else:
        kv_free = budget - weights - overhead
    kv_gib = _kv_for(facts, per_token, context_length) / GIB
    sized = Estimate(
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
    )
    verdict, reason = _verdict(sized, kv_free, memory_gib, utilization)
    return replace(sized, verdict=verdict, reason=reason)


def _overhead_gib(facts: Mapping[str, Any], precision: str, tp: int) -> float:
    """Activation peak and non-torch memory per GPU, in GiB."""
    vocab = facts.get("vocab_size", DEFAULT_VOCAB)
    non_torch = NON_TORCH_GIB[1] if tp == 1 else NON_TORCH_GIB["tp"]
    activation: float = ACTIVATION_BASE_GIB + vocab * ACTIVATION_PER_VOCAB_GIB
    activation += ACTIVATION_MOE_GIB if facts.get("experts") else 0.0
    activation += ACTIVATION_FP32_GIB if precision == "fp32" else 0.0
    # CUDA graphs are captured after the KV cache is sized, outside this budget.
    return non_torch + activation


def _capacity(facts: Mapping[str, Any], per_token: float, kv_free: float) -> int:
    """Tokens the KV cache of ``kv_free`` GiB holds (vLLM's "GPU KV cache size")."""
    # vLLM sizes its block pool with every layer's page, sliding-window layers included.
    sliding_layers = facts.get("sliding_window", {}).get("layers", 0)
    full_layers = facts["layers"] - sliding_layers
    per_token_all = per_token * facts["layers"] / full_layers if full_layers else per_token
    return int(kv_free * GIB / per_token_all) if kv_free > 0 and per_token_all else 0


def _max_context(facts: Mapping[str, Any], per_token: float, kv_free: float) -> int:
    """The longest single request whose KV cache fits in ``kv_free`` GiB (0: none)."""
    lo: int = 0
    if kv_free > 0:
        hi: int = facts["max_context"]
        while lo < hi:  # the longest request whose KV cache fits
            mid = (lo + hi + 1) // 2
            if _kv_for(facts, per_token, mid) <= kv_free * GIB:
                lo = mid
            else:
                hi = mid - 1
    return lo


def _verdict(
    sized: Estimate, kv_free: float, memory_gib: float, utilization: float
) -> tuple[str, str]:
    """The verdict of ``sized`` and its reason with the numbers (``kv_free``: GiB left
    for the KV cache after the weights and the overhead)."""
    weights, overhead, budget = sized.weights_gib, sized.overhead_gib, sized.budget_gib
    need, context_length, max_context = sized.need_gib, sized.context_length, sized.max_context
    if kv_free <= 0:
        return "incompatible", (
            f"not enough memory: weights {weights:.1f} + overhead {overhead:.1f} GiB per "
            f"GPU exceed the {budget:.1f} GiB usable ({memory_gib:g} x {utilization:g})"
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
