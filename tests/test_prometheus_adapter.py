"""``prometheus-adapter.yaml``: the adapter rules beside ``hpa.yaml`` serve what the HPA asks.

The HPA of ``--emit k8s --autoscale hpa`` reads ``Pods`` metrics under the engine's names.
These tests run the emitted rules through prometheus-adapter's own semantics
(:mod:`tests.helpers.prometheus_adapter`, encoded from its v0.12.0 source and
``docs/config.md``) on the series the PodMonitor's scrape gives (prometheus-operator's
``namespace``/``pod`` relabelling, the engine's ``model_name``/``engine`` labels): every
metric the HPA names is exposed for pods, namespaced, and the query the adapter sends for
the HPA's pods answers one value per pod, from that pod's series only.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.emit.adapter import ADAPTER_FILE
from aimc.emit.autoscale import SIGNALS, Autoscale
from aimc.emit.k8s import compile_k8s
from aimc.emit.templating import Literal, to_yaml
from aimc.plan.request import Request
from tests.helpers.bench_results import SATURATION, bench_runs
from tests.helpers.k8s import load_yaml
from tests.helpers.operators import validate_any
from tests.helpers.prometheus_adapter import (
    MetricInfo,
    build_query,
    check_config,
    evaluate,
    expand,
    metric_infos,
    values_by_object,
)

CATALOG = Catalog.default()
NAMESPACE = "serving"

#: (model, GPUs, target, request fields, with bench results)
CASES = [
    ("Qwen/Qwen3-8B", None, "h100", {}, True),
    ("Qwen/Qwen3-8B", None, "h100", {}, False),
    ("Qwen/Qwen3-32B", 8, "mi300x", {}, True),
    ("Qwen/Qwen3-8B", None, "h100", {"backend": "sglang"}, True),
]


def _folder(model: str, gpus: int | None, target: str, fields: dict[str, Any], measured: bool):
    request = Request(model=model, gpus=gpus, **fields)
    plan = make_plan(CATALOG, request, target)
    scale = Autoscale("hpa", bench=bench_runs(plan) if measured else ())
    files = compile_k8s(plan, request, target, 1, scale)
    return plan, {name: load_yaml(text) for name, text in files.items() if name.endswith(".yaml")}


def _scrape(plan_name: str, backend: str) -> list[tuple[dict[str, str], float]]:
    """The series Prometheus holds after the PodMonitor's scrapes: pod a runs two engines
    (vLLM's data parallel: one series per ``engine``), pod b one; decoys in another
    namespace, without a pod label, and a longer name that starts like a signal."""
    signals = SIGNALS[backend]

    def series(name: str, pod: str, engine: str, namespace: str = NAMESPACE) -> dict[str, str]:
        labels = {
            "__name__": name,
            "namespace": namespace,
            "pod": pod,
            "container": "server",
            "endpoint": "http",
            "job": f"{NAMESPACE}/{plan_name}",
            "instance": f"10.0.0.{len(pod)}:8000",
            "app_kubernetes_io_name": plan_name,
            "model_name": "m",
            "engine": engine,
        }
        return labels if pod else {k: v for k, v in labels.items() if k != "pod"}

    out: list[tuple[dict[str, str], float]] = []
    for signal, (a0, a1, b) in {
        "queue": (3.0, 5.0, 1.0),
        "running": (30.0, 34.0, 12.0),
        "kv": (0.5, 0.9, 0.2),
    }.items():
        name = signals[signal]
        out += [(series(name, "pod-a", "0"), a0), (series(name, "pod-a", "1"), a1)]
        out += [(series(name, "pod-b", "0"), b)]
        out += [(series(name, "pod-a", "0", "other"), 1000.0), (series(name, "", "0"), 500.0)]
    out.append((series(signals["queue"] + "_by_reason", "pod-a", "0"), 77.0))
    return out


@pytest.mark.parametrize(("model", "gpus", "target", "fields", "measured"), CASES)
def test_the_rules_serve_every_metric_the_hpa_reads_per_pod(
    model: str, gpus: int | None, target: str, fields: dict[str, Any], measured: bool
) -> None:
    plan, objects = _folder(model, gpus, target, fields, measured)
    config_map = objects[ADAPTER_FILE]
    validate_any(config_map)
    rules = check_config(load_yaml(config_map["data"]["config.yaml"]))
    metrics = objects["hpa.yaml"]["spec"]["metrics"]
    asked = [m["pods"]["metric"]["name"] for m in metrics]
    signals = SIGNALS[plan.backend]
    assert asked == (
        [signals["queue"], signals["running"], signals["kv"]]
        if measured
        else [signals["queue"], signals["kv"]]
    )
    if measured:
        assert metrics[1]["pods"]["target"]["averageValue"] == str(SATURATION)
    scrape = _scrape(plan.name, plan.backend)
    infos = metric_infos(rules, [labels for labels, _ in scrape])
    # Exactly the engine's gauges, under their own names, for pods (and the namespace).
    pods = {i.metric for i in infos if i.resource == "pods"}
    assert pods == set(signals.values())
    assert {i.resource for i in infos} == {"pods", "namespaces"}
    # The pods the HPA's scale target selects: the Deployment's (its selector's labels).
    selector = objects["deployment.yaml"]["spec"]["selector"]["matchLabels"]
    assert (
        selector.items()
        <= objects["deployment.yaml"]["spec"]["template"]["metadata"]["labels"].items()
    )
    for name in asked:
        # The HPA's metric name is a valid path segment (autoscaling validation).
        assert name not in (".", "..") and not re.search("[/%]", name)
        index, series_name = infos[MetricInfo("pods", True, name)]
        assert series_name == name
        rule = rules[index]
        query = build_query(rule, series_name, "pods", NAMESPACE, ["pod-a", "pod-b"])
        assert f'namespace="{NAMESPACE}",pod=~"pod-a|pod-b"' in query
        values = values_by_object(rule, "pods", ["pod-a", "pod-b"], evaluate(query, scrape))
        expected = {
            signals["queue"]: {"pod-a": 8.0, "pod-b": 1.0},  # summed over the engines
            signals["running"]: {"pod-a": 64.0, "pod-b": 12.0},
            signals["kv"]: {"pod-a": 0.7, "pod-b": 0.2},  # a fraction: averaged
        }[name]
        assert values == pytest.approx(expected)
        one = build_query(rule, series_name, "pods", NAMESPACE, ["pod-b"])
        assert 'pod="pod-b"' in one
        assert values_by_object(rule, "pods", ["pod-b"], evaluate(one, scrape)) == pytest.approx(
            {"pod-b": expected["pod-b"]}
        )


def test_every_rule_set_of_a_backend_is_the_same() -> None:
    """The rules do not depend on the plan or its results: an adapter takes them once."""
    texts = {}
    for model, gpus, target, fields, measured in CASES:
        plan, objects = _folder(model, gpus, target, fields, measured)
        texts.setdefault(plan.backend, set()).add(objects[ADAPTER_FILE]["data"]["config.yaml"])
    assert {backend: len(t) for backend, t in texts.items()} == {"vllm": 1, "sglang": 1}


def test_keda_folders_have_no_adapter_rules() -> None:
    request = Request(model="Qwen/Qwen3-8B")
    plan = make_plan(CATALOG, request, "h100")
    assert ADAPTER_FILE not in compile_k8s(plan, request, "h100", 1, Autoscale("keda"))


# --- the encoded semantics, against prometheus-adapter's documented examples ------------------


def test_the_encoding_gives_the_documented_examples() -> None:
    """docs/config.md: ``http_requests_total`` named ``^(.*)_total$`` as
    ``${1}_per_second`` is ``http_requests_per_second``; one capture group and no ``as``
    is the group; pods pod1 and pod2 in somens are matched by regex on the pod label."""
    rule = {
        "seriesQuery": '{__name__=~"^http_.*",namespace!="",pod!=""}',
        "resources": {
            "overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
        },
        "name": {"matches": "^(.*)_total$", "as": "${1}_per_second"},
        "metricsQuery": "sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)",
    }
    series = {"__name__": "http_requests_total", "namespace": "somens", "pod": "pod1"}
    infos = metric_infos([rule], [series])
    assert MetricInfo("pods", True, "http_requests_per_second") in infos
    assert MetricInfo("namespaces", False, "http_requests_per_second") in infos
    bare = {
        **rule,
        "seriesQuery": '{__name__=~"^container_.*",container!="POD",namespace!="",pod!=""}',
        "name": {"matches": "^container_(.*)_seconds_total$"},
    }
    cpu = {"__name__": "container_cpu_usage_seconds_total", "namespace": "n", "pod": "p"}
    assert MetricInfo("pods", True, "cpu_usage") in metric_infos([bare], [cpu])
    query = build_query(rule, "http_requests_total", "pods", "somens", ["pod1", "pod2"])
    assert query == (
        'sum(rate(http_requests_total{namespace="somens",pod=~"pod1|pod2"}[2m])) by (pod)'
    )
    # Go's ExpandString takes $name as long as possible: $1_per is ${1_per}, empty.
    found = re.search("^(.*)_total$", "http_requests_total")
    assert found is not None
    assert expand("$1_per_second", found) == ""
    assert expand("${1}_per_second", found) == "http_requests_per_second"


# --- the literal block the rules are written in -----------------------------------------------


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=120))
@example(text="0\n")
def test_a_literal_text_reads_back_exactly(text: str) -> None:
    """Any text given as a Literal reads back from the YAML as it was: as a literal block
    when one holds it exactly, else as the JSON-style string every value is. The text is
    read as a file holds it: ending in the newline every emitted file ends with (a block's
    last line break is that newline: hypothesis found ``"0\n"`` read back as ``"0"`` from
    the bare text)."""
    written = to_yaml({"data": {"config.yaml": Literal(text)}})
    assert load_yaml(written + "\n") == {"data": {"config.yaml": text}}
    block = Literal(text).block()
    assert (written.splitlines()[1].endswith(": |")) == (block is not None)
