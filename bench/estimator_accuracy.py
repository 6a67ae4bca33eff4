"""How close the memory estimator is to what vLLM measured at startup.

    .venv/bin/python bench/estimator_accuracy.py

Reads tests/data/vllm_memory_points.yaml (public startup logs, each with its source), runs
the estimator with the same setup and prints, per point, the error of the weights per GPU
("Model loading took X GiB") and of the KV cache capacity ("GPU KV cache size: N tokens"),
then the medians. Goal: weights within 3%, KV capacity within 10%. Asserts nothing.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from ruamel.yaml import YAML

from aimc.check.catalog import Catalog
from aimc.plan.estimate import estimate

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "vllm_memory_points.yaml"


def main() -> None:
    data = YAML(typ="safe").load(DATA.read_text())
    catalog = Catalog.default()
    weight_errors, kv_errors = [], []
    print(
        f"{'model':46} {'prec':5} {'tp':>2} {'weights':>15} {'err':>6}  "
        f"{'KV tokens':>21} {'err':>6}"
    )
    for p in data["points"]:
        facts = (
            data["models"].get(p["facts_of"])
            or catalog.recipe(p["facts_of"]).data["model"]["facts"]
        )
        e = estimate(
            facts,
            p["precision"],
            p["tensor_parallel"],
            p["gpu_memory_gib"],
            p["gpu_memory_utilization"],
            p.get("max_model_len") or 8192,
            kv_cache_dtype=p["kv_cache_dtype"],
        )
        w_err = (e.weights_gib - p["model_loading_gib"]) / p["model_loading_gib"] * 100
        weight_errors.append(abs(w_err))
        kv_text = "-"
        k_err_text = ""
        if p.get("kv_cache_tokens"):
            k_err = (e.kv_capacity_tokens - p["kv_cache_tokens"]) / p["kv_cache_tokens"] * 100
            kv_errors.append(abs(k_err))
            kv_text = f"{e.kv_capacity_tokens:>9} / {p['kv_cache_tokens']:>9}"
            k_err_text = f"{k_err:+6.1f}%"
        print(
            f"{p['model'][:46]:46} {p['precision']:5} {p['tensor_parallel']:>2} "
            f"{e.weights_gib:6.2f} / {p['model_loading_gib']:6.2f} {w_err:+6.1f}%  "
            f"{kv_text:>21} {k_err_text}"
        )
    print()
    print(f"points: {len(weight_errors)} (weights), {len(kv_errors)} (KV capacity)")
    print(
        f"weights:     median |error| {statistics.median(weight_errors):.2f}%, "
        f"max {max(weight_errors):.2f}%  (goal 3%)"
    )
    print(
        f"KV capacity: median |error| {statistics.median(kv_errors):.2f}%, "
        f"max {max(kv_errors):.2f}%  (goal 10%)"
    )


if __name__ == "__main__":
    main()
