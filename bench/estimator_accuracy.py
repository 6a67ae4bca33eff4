"""How close the memory estimator is to what vLLM measured at startup, per vLLM version,
on the train points and on the test points held aside.

    .venv/bin/python bench/estimator_accuracy.py

Points (bench/memory_data.py): vLLM 0.19 weights / KV cache points
(tests/data/vllm_memory_points.yaml) and vLLM >= 0.21 points with the version stated
(bench/data/vllm_startup_logs.yaml); a point's ``split`` says ``fit`` (train) or ``test``.
The estimator runs with the setup of each point: on 0.19 without the CUDA-graph term (0.19
did not subtract it), on >= 0.21 with it. Per point: the error of the weights per GPU
("Model loading took X GiB") and of the KV cache ("GPU KV cache size: N tokens", else
"Available KV cache memory: X GiB"); then per version and split the median and largest
error. Then the CUDA-graph term against the graph pools vLLM 0.19 measured on H100 and
the estimates >= 0.21 printed. Goal: weights within 1%, KV cache within 3%. Points that
lack what the estimate needs are listed with the reason. Asserts nothing.
"""

from __future__ import annotations

from typing import Any

from memory_data import breakdown_019, graphs_of, median, points_019, points_new

from aimc.check.catalog import Catalog
from aimc.core.errors import ConfigError
from aimc.plan.estimate import estimate
from aimc.plan.vllm_memory import vllm_runtime
from aimc.plan.weights import checkpoint_total

GOALS = {"weights": 1.0, "KV cache": 3.0}


def err(estimated: float, measured: float) -> float:
    """Signed error in percent."""
    return (estimated - measured) / measured * 100


def recipe_weights(p: dict[str, Any], catalog: Catalog) -> tuple[float | None, str]:
    """The weights the estimator would take for a point: the recipe's entry of its
    precision when it is the point's checkpoint (same repository), else None (the
    parameter count)."""
    try:
        entry = catalog.recipe(p["facts_of"]).data["weights"].get(p["precision"], {})
    except ConfigError:
        return None, "parameters"
    if str(entry.get("repo", "")).lower() == p["model"].lower():
        return checkpoint_total(entry, None, p["tensor_parallel"])
    return None, "parameters"


def evaluate_019(p: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    """One vLLM 0.19 point: its errors (no graph term: 0.19 did not subtract one)."""
    size, basis = recipe_weights(p, catalog)
    e = estimate(
        p["facts"],
        p["precision"],
        p["tensor_parallel"],
        p["gpu_memory_gib"],
        p["gpu_memory_utilization"],
        p.get("max_model_len") or 8192,
        kv_cache_dtype=p["kv_cache_dtype"],
        weights_bytes=size,
        weights_basis=basis,
    )
    row = {"version": p["vllm_version"], "split": p["split"], "label": p["model"],
           "prec": p["precision"], "tp": p["tensor_parallel"], "basis": basis,
           "weights": (e.weights_gib, p["model_loading_gib"])}  # fmt: skip
    if p.get("kv_cache_tokens"):
        row["KV cache"] = (e.kv_capacity_tokens, p["kv_cache_tokens"], "tokens")
    return row


def evaluate_new(p: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    """One vLLM >= 0.21 point: its errors, or why it cannot be evaluated."""
    row: dict[str, Any] = {"version": p["vllm_version"], "split": p["split"], "label": p["id"]}
    inputs = p.get("bench_inputs")
    if not inputs:
        row["skip"] = "no model facts / GPU memory / weights to estimate from"
        return row
    try:
        recipe = catalog.recipe(inputs["facts_of"]).data
    except ConfigError:
        row["skip"] = f"{inputs['facts_of']} is not in the catalog (no model facts)"
        return row
    facts = recipe["model"]["facts"]
    hw = {"memory_gib": inputs["gpu_memory_gib"], "name": inputs["gpu_name"]}
    tp, context = inputs["tensor_parallel_size"], p["max_model_len"] or inputs["max_model_len"]
    size, basis = checkpoint_total(recipe["weights"][inputs["precision"]], None, tp)
    args = {"enforce-eager": True} if inputs.get("enforce_eager") else {}
    runtime = vllm_runtime(facts, hw, args, {}, tp, architecture=recipe["model"]["architecture"])
    e = estimate(facts, inputs["precision"], tp, hw["memory_gib"], p["gpu_memory_utilization"],
                 context, weights_bytes=size, weights_basis=basis, runtime=runtime)  # fmt: skip
    row.update(prec=inputs["precision"], tp=tp)
    if inputs.get("model_weights_gib"):
        row["weights"] = (e.weights_gib, inputs["model_weights_gib"])
    figures = p["figures"]
    if figures.get("gpu_kv_cache_tokens"):
        row["KV cache"] = (e.kv_capacity_tokens, figures["gpu_kv_cache_tokens"], "tokens")
    elif inputs.get("available_kv_cache_gib"):
        kv_free = e.budget_gib - e.weights_gib - e.overhead_gib  # "Available KV cache memory"
        row["KV cache"] = (kv_free, inputs["available_kv_cache_gib"], "GiB")
    return row


def print_rows(rows: list[dict[str, Any]]) -> None:
    """One line per point."""
    head = f"{'version':9} {'split':5} {'point':46} {'prec':5} {'tp':>2} "
    print(head + f"{'weights GiB est/measured':>24} {'err':>7}  {'KV cache est/measured':>28}")
    for r in rows:
        head = f"{r['version'][:9]:9} {r['split']:5} {r['label'][:46]:46}"
        if "skip" in r:
            print(f"{head} not evaluated: {r['skip']}")
            continue
        w = r.get("weights")
        wtext = f"{w[0]:9.2f} / {w[1]:9.2f} {err(*w):+6.1f}%" if w else f"{'-':>24} {'':7}"
        k, ktext = r.get("KV cache"), "-"
        if k:
            digits = 0 if k[2] == "tokens" else 2
            ktext = (
                f"{k[0]:12,.{digits}f} / {k[1]:12,.{digits}f} {k[2][:3]} {err(k[0], k[1]):+6.1f}%"
            )
        print(f"{head} {r.get('prec', ''):5} {r.get('tp', ''):>2} {wtext}  {ktext}")


def print_summary(rows: list[dict[str, Any]]) -> None:
    """Median and largest |error| per vLLM version, split and quantity."""
    print("\nsummary: |error| per vLLM version and split (goal: weights 1%, KV cache 3%)")
    keys = sorted({(r["version"], r["split"]) for r in rows})
    for version, split in keys:
        group = [r for r in rows if (r["version"], r["split"]) == (version, split)]
        parts = []
        for what, goal in GOALS.items():
            errs = [abs(err(*r[what][:2])) for r in group if what in r]
            if not errs:
                parts.append(f"{what}: no point")
                continue
            met = "met" if max(errs) <= goal else "NOT met"
            parts.append(
                f"{what}: n={len(errs)} median {median(errs):.2f}% max {max(errs):.2f}% ({met})"
            )
        skipped = sum(1 for r in group if "skip" in r)
        tail = f"; {skipped} not evaluable" if skipped else ""
        print(f"  {version:28} {split:5} " + "; ".join(parts) + tail)


def print_graphs(catalog: Catalog) -> None:
    """The CUDA-graph term against vLLM 0.19's measured pools and >= 0.21 estimates."""
    print("\nCUDA-graph term vs the pool vLLM 0.19 measured on H100 (bound = what is subtracted)")
    for split in ("fit", "test"):
        pts = [p for p in breakdown_019() if p["split"] == split]
        errs, above = [], 0
        for p in pts:
            g = graphs_of(p)
            assert g is not None
            actual = p["figures"]["cuda_graph_pool_actual_gib"]
            errs.append(g.central_gib - actual)
            above += actual > g.gib
        print(f"  0.19.0 {split:5} n={len(pts)}: central fit median |error| "
              f"{median([abs(x) for x in errs]):.2f} GiB, max {max(abs(x) for x in errs):.2f} GiB; "
              f"pools above the bound: {above}")  # fmt: skip
    print('CUDA-graph bound vs the estimate vLLM >= 0.21 printed ("Estimated CUDA graph memory")')
    for p in points_new():
        inputs, printed = p.get("bench_inputs"), p["figures"].get("estimated_cuda_graph_gib")
        if not inputs or printed is None:
            continue
        recipe = catalog.recipe(inputs["facts_of"]).data
        hw = {"memory_gib": inputs["gpu_memory_gib"], "name": inputs["gpu_name"]}
        rt = vllm_runtime(recipe["model"]["facts"], hw, {}, {}, inputs["tensor_parallel_size"])
        assert rt.graphs is not None
        g = rt.graphs
        print(f"  {p['vllm_version']:9} {p['split']:5} {p['id'][:40]:40} printed {printed:.2f} "
              f"GiB, bound {g.gib:.2f} GiB ({g.piecewise} PIECEWISE, {g.full} FULL)")  # fmt: skip


def main() -> None:
    catalog = Catalog.default()
    rows = [evaluate_019(p, catalog) for p in points_019()]
    rows += [evaluate_new(p, catalog) for p in points_new()]
    rows.sort(key=lambda r: (r["version"], r["split"]))
    print_rows(rows)
    print_summary(rows)
    print_graphs(catalog)


if __name__ == "__main__":
    main()
