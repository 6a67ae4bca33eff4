"""Fit the estimator's vLLM constants on the train points only, and check them on the test.

    .venv/bin/python bench/fit_memory_constants.py

Reads bench/data/vllm_019_h100_startup_logs.yaml (vLLM 0.19 on H100, with the per-term
breakdown), keeps its ``fit`` points, one per configuration (the same model, parallelism
and precision measured at several context lengths counts once), and fits by least squares:

* the CUDA-graph pool ("CUDA graph pool memory: A GiB (actual)") of dense models:
  ``base + per_layer x L x n/102 + activation x L x hidden/4096 x largest/512 / sqrt(TP)``
  (L layers per GPU, n graphs captured), then MoE's extra per layer x n/102; the margin of
  the upper bound is the largest train residual; the band, the largest gap between vLLM's
  own estimate and that bound;
* the profiling run's activation peak ("GiB for peak activation"): base (doubled for fp32)
  + per vocabulary entry + MoE;
* non-torch memory per GPU, alone and with NCCL; memory in use before vLLM's baseline.

Prints the fitted values next to those in aimc/plan/vllm_memory.py and estimate.py, and the
residuals on the test points. Asserts nothing.
"""

from __future__ import annotations

import math
from typing import Any

from memory_data import breakdown_019, graphs_of, profile_counts

from aimc.plan import estimate as est
from aimc.plan import vllm_memory as vm


def solve(rows: list[list[float]], ys: list[float]) -> list[float]:
    """Least squares by the normal equations (a few unknowns, well conditioned)."""
    n = len(rows[0])
    a = [[sum(r[i] * r[j] for r in rows) for j in range(n)] for i in range(n)]
    b = [sum(r[i] * y for r, y in zip(rows, ys, strict=True)) for i in range(n)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda k: abs(a[k][col]))
        a[col], a[pivot], b[col], b[pivot] = a[pivot], a[col], b[pivot], b[col]
        for k in range(n):
            if k != col and a[col][col]:
                f = a[k][col] / a[col][col]
                a[k] = [x - f * y for x, y in zip(a[k], a[col], strict=True)]
                b[k] -= f * b[col]
    return [b[i] / a[i][i] for i in range(n)]


def unique(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One point per configuration (model, TP, PP, dtype, quantization)."""
    seen, out = set(), []
    for p in points:
        key = (p["model_id"], p["tensor_parallel_size"], p["pipeline_parallel_size"],
               p["dtype"], p["quantization"])  # fmt: skip
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def graph_features(p: dict[str, Any]) -> list[float]:
    """The graph model's terms of a point: 1, L x n/102, L x hidden x largest / sqrt(TP)."""
    c, f = profile_counts(p["cudagraph_profile"]), p["model_facts"]
    layers, scale = f["layers_per_stage"], (c.get("PIECEWISE", 0) + c.get("FULL", 0)) / 102
    act = layers * f["hidden_size"] / 4096 * c["largest"] / 512
    return [1.0, layers * scale, act / math.sqrt(p["tensor_parallel_size"])]


def fit_graphs(train: list[dict[str, Any]], test: list[dict[str, Any]]) -> None:
    """The graph pool's constants, margins and bands."""
    dense = [p for p in train if not p["model_facts"]["moe"]]
    coef = solve([graph_features(p) for p in dense], [actual(p) for p in dense])
    moe = [p for p in train if p["model_facts"]["moe"]]
    resid = [actual(p) - dot(coef, graph_features(p)) for p in moe]
    xs = [graph_features(p)[1] for p in moe]
    moe_coef = sum(r * x for r, x in zip(resid, xs, strict=True)) / sum(x * x for x in xs)
    show("graph base GiB", coef[0], vm.GRAPH_BASE_GIB)
    show("graph per layer GiB", coef[1], vm.GRAPH_PER_LAYER_GIB)
    show("graph activation GiB", coef[2], vm.GRAPH_ACTIVATION_GIB)
    show("graph MoE per layer GiB", moe_coef, vm.GRAPH_MOE_PER_LAYER_GIB)
    for kind, group in (("dense", dense), ("uncertain", moe)):
        res = [actual(p) - graphs_of(p).central_gib for p in group]  # type: ignore[union-attr]
        show(f"graph margin ({kind}) = max train residual", max(res), vm.GRAPH_MARGIN_GIB[kind])
        gaps = [abs(p["figures"]["cuda_graph_pool_estimated_gib"] - graphs_of(p).gib)  # type: ignore[union-attr]
                for p in group]  # fmt: skip
        show(
            f"graph band ({kind}) = max |vLLM estimate - bound|", max(gaps), vm.GRAPH_BAND_GIB[kind]
        )
    print("\ntest points: actual graph pool vs the bound (estimator's constants)")
    for p in test:
        g = graphs_of(p)
        assert g is not None
        ok = "OK" if actual(p) <= g.gib else "ABOVE"
        print(f"  {p['model_id'][:48]:48} tp{p['tensor_parallel_size']} actual {actual(p):.2f} "
              f"central {g.central_gib:.2f} bound {g.gib:.2f} {ok}")  # fmt: skip


def fit_activation(train: list[dict[str, Any]]) -> None:
    """The activation peak's constants (single-stage points: the last stage holds it); the
    base doubles with fp32 activations."""
    rows, ys = [], []
    for p in train:
        if p["pipeline_parallel_size"] != 1:
            continue
        f = p["model_facts"]
        base = 2.0 if p["dtype"] == "float32" else 1.0
        rows.append([base, f["vocab_size"], 1.0 if f["moe"] else 0.0])
        ys.append(p["figures"]["peak_activation_gib"])
    coef = solve(rows, ys)
    show("activation base GiB", coef[0], est.ACTIVATION_BASE_GIB)
    show("activation per vocabulary entry GiB", coef[1], est.ACTIVATION_PER_VOCAB_GIB)
    show("activation MoE GiB", coef[2], est.ACTIVATION_MOE_GIB)


def fit_non_torch(train: list[dict[str, Any]]) -> None:
    """Non-torch memory and the memory in use before the baseline, alone and with NCCL."""
    for label, one in (("1 GPU", True), ("several GPUs", False)):
        group = [p for p in train if (p["gpu_count"] == 1) == one]
        nt = [p["figures"]["non_torch_gib"] for p in group]
        show(f"non-torch ({label}), median", sorted(nt)[len(nt) // 2],
             est.NON_TORCH_GIB[1 if one else "tp"])  # fmt: skip
        pre = [p["figures"]["init_used_gib"] for p in group]
        show(f"before the baseline ({label}), max", max(pre),
             vm.PRE_BASELINE_GIB[1 if one else "tp"])  # fmt: skip


def actual(p: dict[str, Any]) -> float:
    """The graph pool vLLM measured."""
    return float(p["figures"]["cuda_graph_pool_actual_gib"])


def dot(a: list[float], b: list[float]) -> float:
    """Inner product."""
    return sum(x * y for x, y in zip(a, b, strict=True))


def show(name: str, fitted: float, used: float) -> None:
    """One constant: fitted on train, and the value the estimator uses."""
    print(f"{name:52} fitted {fitted:10.6g}   estimator {used:10.6g}")


def main() -> None:
    points = breakdown_019()
    train = unique([p for p in points if p["split"] == "fit"])
    test = unique([p for p in points if p["split"] == "test"])
    print(f"vLLM 0.19 H100 breakdown: {len(train)} train / {len(test)} test configurations\n")
    fit_graphs(train, test)
    print()
    fit_activation(train)
    print()
    fit_non_torch(train)


if __name__ == "__main__":
    main()
