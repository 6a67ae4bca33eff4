"""The published vLLM startup-log points the memory benchmarks read, in one shape.

bench/estimator_accuracy.py and bench/fit_memory_constants.py import this module (they run
as scripts from bench/, which puts this folder on ``sys.path``). Files:

* ``tests/data/vllm_memory_points.yaml``: vLLM 0.19 weights / KV cache points whose model
  facts are known (recipes, or its ``models:``); split as below.
* ``bench/data/vllm_019_h100_startup_logs.yaml``: vLLM 0.19 on H100 with the per-term
  breakdown (graph pool, activation peak, non-torch memory).
* ``bench/data/vllm_startup_logs.yaml``: vLLM >= 0.21 points with the version stated.

``split``: every third point in file order is ``test`` where a file does not say; nothing
is fitted on test points.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from aimc.plan.vllm_memory import Graphs, capture_sizes, graph_memory

ROOT = Path(__file__).resolve().parent.parent
POINTS_019 = ROOT / "tests" / "data" / "vllm_memory_points.yaml"
BREAKDOWN_019 = ROOT / "bench" / "data" / "vllm_019_h100_startup_logs.yaml"
POINTS_NEW = ROOT / "bench" / "data" / "vllm_startup_logs.yaml"
#: Model facts of the >= 0.21 points the catalog lacks, from the model's config.json
#: (none yet: their checkpoints are not named exactly in the sources).
EXTRA_FACTS: dict[str, dict[str, Any]] = {}


def load(path: Path) -> Any:
    """A YAML data file."""
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def split_of(point: dict[str, Any], index: int) -> str:
    """``fit`` or ``test``: the point's own, else every third point in file order."""
    return str(point.get("split") or ("test" if index % 3 == 2 else "fit"))


def points_019() -> list[dict[str, Any]]:
    """The vLLM 0.19 weights / KV points, each with its ``split`` and ``facts``."""
    from aimc.check.catalog import Catalog

    data, catalog = load(POINTS_019), Catalog.default()
    out = []
    for i, p in enumerate(data["points"]):
        facts = (
            data["models"].get(p["facts_of"])
            or (catalog.recipe(p["facts_of"]).data["model"]["facts"])
        )
        out.append({**p, "split": split_of(p, i), "facts": facts})
    return out


def breakdown_019() -> list[dict[str, Any]]:
    """The vLLM 0.19 H100 points with the per-term breakdown."""
    return [{**p, "split": split_of(p, i)} for i, p in enumerate(load(BREAKDOWN_019))]


def points_new() -> list[dict[str, Any]]:
    """The vLLM >= 0.21 points (their own ``split``: ``fit`` or ``test``)."""
    return [{**p, "split": split_of(p, i)} for i, p in enumerate(load(POINTS_NEW))]


def profile_counts(profile: str) -> dict[str, int]:
    """``"PIECEWISE=51 (largest=512), FULL=35 (largest=256)"`` -> counts and largest."""
    counts = {k: int(v) for k, v in re.findall(r"(PIECEWISE|FULL)=(\d+)", profile or "")}
    largest = [int(n) for n in re.findall(r"largest=(\d+)", profile or "")]
    counts["largest"] = max(largest) if largest else 512
    return counts


def graphs_of(point: dict[str, Any]) -> Graphs | None:
    """The estimator's graph term for a breakdown point, with the captures it printed."""
    facts = point["model_facts"]
    counts = profile_counts(point["cudagraph_profile"])
    sizes = capture_sizes(1 << 20, 1 << 20, counts["largest"])
    mode = "FULL_AND_PIECEWISE" if counts.get("FULL") else "PIECEWISE"
    model = {"hidden_size": facts["hidden_size"], "experts": facts["moe"], "layers": 1}
    seqs = int(point.get("max_num_seqs") or 1024)
    return graph_memory(
        model, facts["layers_per_stage"], point["tensor_parallel_size"], sizes, mode, seqs
    )


def median(values: list[float]) -> float:
    """The median (0 for none)."""
    s = sorted(values)
    if not s:
        return 0.0
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2
