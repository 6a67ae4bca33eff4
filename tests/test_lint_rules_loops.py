"""Three recipe rules whose loops do less per configuration (issue 26): the diagnostics of
``lint/gpus-per-node``, ``lint/overlap`` and ``lint/quantization`` are the ones their rules
say, whatever the GPU counts, nodes, hardware, precisions, backends and quantization
values of the configurations (an unknown hardware name, a value no backend knows, the
same shape offered twice)."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aimc.check import lint, lint_vocabulary
from aimc.core.loader import Document, read_document

ROOT = Path(__file__).resolve().parent.parent
RECIPE = read_document(ROOT / "recipes" / "models" / "Qwen" / "Qwen3-8B.yaml").data
HARDWARE = {
    name: read_document(ROOT / "recipes" / "hardware" / f"{name}.yaml").data
    for name in ("h100", "mi300x", "mi250x")
}

configuration = st.fixed_dictionaries(
    {
        "hardware": st.lists(st.sampled_from([*HARDWARE, "tpu-v9"]), min_size=1, max_size=3),
        "precision": st.lists(st.sampled_from(["bf16", "fp8", "int4"]), min_size=1, max_size=2),
        "gpus": st.lists(st.sampled_from([1, 2, 4, 8, 16, 32]), min_size=1, max_size=3),
    },
    optional={
        "backend": st.sampled_from(["vllm", "sglang"]),
        "nodes": st.lists(st.sampled_from([1, 2, 4]), min_size=1, max_size=2),
        "weights": st.dictionaries(
            st.sampled_from(["bf16", "fp8"]),
            st.sampled_from(["awq", "fp8", "no-such-method", "gptq/~1"]).map(
                lambda q: {"repo": "o/m", "quantization": q}
            ),
            max_size=2,
        ),
    },
)
recipes = st.tuples(
    st.lists(configuration, min_size=1, max_size=4),
    st.sampled_from([None, "awq", "fp8", "bogus"]),
)


def _doc(confs: list[dict[str, Any]], quantization: str | None) -> Document:
    data = copy.deepcopy(RECIPE)
    data["configurations"] = confs
    if quantization is not None:
        data["weights"]["int4"]["quantization"] = quantization
    return Document(path="r.yaml", data=data, sha256="")


def _backend(data: dict[str, Any], conf: dict[str, Any]) -> str:
    return str(conf.get("backend", data["defaults"]["backend"]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recipes)
def test_gpus_per_node_names_the_largest_count_a_profile_lacks(recipe: Any) -> None:
    doc = _doc(*recipe)
    said = [d for d in lint._rule_hardware(doc, HARDWARE) if d.rule == "lint/gpus-per-node"]
    expected = []
    for i, conf in enumerate(doc.data["configurations"]):
        for j, name in enumerate(conf["hardware"]):
            per_node = HARDWARE[name]["gpus_per_node"] if name in HARDWARE else None
            too_many = [g for g in conf["gpus"] if per_node is not None and g > per_node]
            if too_many:
                text = (
                    f"{name} has {per_node} GPUs per node; configuration asks for {max(too_many)}"
                )
                expected.append((f"/configurations/{i}/hardware/{j}", text))
    assert [(d.pointer, d.message) for d in said] == expected


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recipes)
def test_overlap_names_every_shape_offered_again(recipe: Any) -> None:
    doc = _doc(*recipe)
    said = [(d.pointer, d.message) for d in lint._rule_overlap(doc, HARDWARE)]
    first: dict[tuple[Any, ...], int] = {}
    expected = []
    for i, conf in enumerate(doc.data["configurations"]):
        backend = _backend(doc.data, conf)
        shapes = itertools.product(
            [h for h in conf["hardware"] if h in HARDWARE],
            conf["precision"],
            conf["gpus"],
            conf.get("nodes", [1]),
        )
        for name, precision, gpus, nodes in shapes:
            key = (name, precision, gpus, backend, nodes)
            if key in first:
                count = f"{gpus} GPU" + ("s" if gpus != 1 else "")
                shape = f"({name}, {precision}, {count}, {backend})"
                expected.append(
                    (f"/configurations/{i}", f"overlaps configuration #{first[key] + 1} {shape}")
                )
            first.setdefault(key, i)
    assert said == expected


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recipes)
def test_quantization_is_checked_once_where_each_entry_is(recipe: Any) -> None:
    """Each (weights entry, backend) with a quantization no backend choice names: one
    diagnostic, at the entry that holds it (the configuration's own, else the recipe's)."""
    doc = _doc(*recipe)
    said = [d.pointer for d in lint_vocabulary.rule_quantization(doc, HARDWARE)]
    seen: set[tuple[str, str]] = set()
    expected = []
    for i, conf in enumerate(doc.data["configurations"]):
        backend = _backend(doc.data, conf)
        own = conf.get("weights", {})
        for precision in conf["precision"]:
            entry = own.get(precision) or doc.data["weights"].get(precision) or {}
            if "quantization" not in entry:
                continue
            where = (
                f"/configurations/{i}/weights/{precision}" if precision in own else
                f"/weights/{precision}"
            ) + "/quantization"  # fmt: skip
            choices = lint_vocabulary.vocabulary(backend).flags["quantization"]["choices"]
            if (where, backend) not in seen and entry["quantization"] not in choices:
                expected.append(where)
            seen.add((where, backend))
    assert said == expected
