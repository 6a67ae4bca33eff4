"""Observability of every cluster output (``--emit k8s``, ``kserve``, ``aim``): ``monitoring/``.

Two files in a subfolder, so that ``kubectl apply -f DIR`` (which does not descend) never
needs prometheus-operator's CRDs; ``kubectl apply -f DIR/monitoring/`` adds them:

- ``monitoring/podmonitor.yaml``: a ``PodMonitor`` (``monitoring.coreos.com/v1``, written
  against prometheus-operator's CRD vendored in ``tests/data/prometheus-operator/``) that
  scrapes ``/metrics`` of every server pod of the plan. A PodMonitor, not a ServiceMonitor:
  KServe and the AIM operator create the Services of their outputs, with labels aimc does not
  own, and each pod is scraped on its own either way. It copies the pod label
  ``app.kubernetes.io/name`` onto every series (``podTargetLabels``), which the dashboard and
  the autoscalers' queries select by.
- ``monitoring/dashboard.yaml``: a Grafana dashboard as a ConfigMap labelled
  ``grafana_dashboard: "1"`` (the label Grafana's dashboard sidecar loads, as
  kube-prometheus-stack installs it). A ConfigMap, not a ``.json`` file: ``kubectl apply -f``
  decodes every ``.json`` of a folder as an object, and a dashboard is none. Its panels: TTFT
  and ITL (p50 and p95 of the engines' histograms), output and prompt tokens/s, the queue and
  the running batch, the KV cache in use, under the metric names of the pinned engines
  (:data:`METRICS`; vLLM 0.32.0 ``vllm/v1/metrics/loggers.py``, SGLang 0.5.19
  ``sglang/srt/observability/metrics_collector.py``, which serves them only with
  ``--enable-metrics``).
"""

from __future__ import annotations

import json
from typing import Any

from aimc.core.errors import ConfigError
from aimc.emit.autoscale import LABEL, SIGNALS, selector_label
from aimc.plan.model import Plan

__all__ = ["FILES", "METRICS", "dashboard", "monitoring_resources", "pod_monitor"]

FILES = ("monitoring/dashboard.yaml", "monitoring/podmonitor.yaml")
#: The metric names the dashboard and the autoscalers read, by backend (counters with the
#: ``_total`` Prometheus exposes them under).
METRICS: dict[str, dict[str, str]] = {
    "vllm": {
        **SIGNALS["vllm"],
        "running": "vllm:num_requests_running",
        "ttft": "vllm:time_to_first_token_seconds",
        "itl": "vllm:inter_token_latency_seconds",
        "generation": "vllm:generation_tokens_total",
        "prompt": "vllm:prompt_tokens_total",
    },
    "sglang": {
        **SIGNALS["sglang"],
        "running": "sglang:num_running_reqs",
        "ttft": "sglang:time_to_first_token_seconds",
        "itl": "sglang:inter_token_latency_seconds",
        "generation": "sglang:generation_tokens_total",
        "prompt": "sglang:prompt_tokens_total",
    },
}


def _metrics(plan: Plan) -> dict[str, str]:
    if plan.backend not in METRICS:
        raise ConfigError(f"the metrics of {plan.backend} are not known")
    return METRICS[plan.backend]


def pod_monitor(
    plan: Plan,
    selector: dict[str, str],
    port: dict[str, Any],
    labels: dict[str, str],
    label: str = LABEL,
) -> dict[str, Any]:
    """The PodMonitor of the pods ``selector`` picks, scraped on ``port`` (``{"port":
    NAME}`` or ``{"portNumber": N}``), the pod label ``label`` copied onto every series."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": plan.name, "labels": labels},
        "spec": {
            "selector": {"matchLabels": selector},
            "podTargetLabels": [label],
            "podMetricsEndpoints": [{**port, "path": "/metrics", "interval": "15s"}],
        },
    }


def _panel(n: int, title: str, unit: str, targets: list[tuple[str, str]]) -> dict[str, Any]:
    """A time-series panel, two per row."""
    return {
        "id": n + 1,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": 12 * (n % 2), "y": 8 * (n // 2)},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(65 + i), "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def _panels(plan: Plan, label: str) -> list[dict[str, Any]]:
    m = _metrics(plan)
    pods = f'{{{selector_label(label)}="{plan.name}"}}'

    def quantile(q: str, name: str) -> str:
        return f"histogram_quantile({q}, sum by (le) (rate({name}_bucket{pods}[5m])))"

    def latency(key: str) -> list[tuple[str, str]]:
        return [(quantile("0.5", m[key]), "p50"), (quantile("0.95", m[key]), "p95")]

    rows = [
        ("Time to first token", "s", latency("ttft")),
        ("Inter-token latency", "s", latency("itl")),
        (
            "Tokens/s",
            "short",
            [
                (f"sum(rate({m['generation']}{pods}[5m]))", "output"),
                (f"sum(rate({m['prompt']}{pods}[5m]))", "prompt"),
            ],
        ),
        (
            "Requests",
            "short",
            [(f"sum({m['queue']}{pods})", "waiting"), (f"sum({m['running']}{pods})", "running")],
        ),
        ("KV cache in use", "percentunit", [(f"{m['kv']}{pods}", "{{pod}}")]),
    ]
    return [_panel(n, title, unit, targets) for n, (title, unit, targets) in enumerate(rows)]


def dashboard(plan: Plan, labels: dict[str, str], label: str = LABEL) -> dict[str, Any]:
    """The Grafana dashboard ConfigMap of ``plan``: its series selected by the pod label
    ``label`` (the one the PodMonitor copies)."""
    board = {
        "title": f"aimc {plan.name} ({plan.backend})",
        "uid": plan.name[:40],
        "tags": ["aimc", plan.backend],
        "schemaVersion": 39,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "templating": {
            "list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]
        },
        "panels": _panels(plan, label),
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"{plan.name}-dashboard",
            "labels": {**labels, "grafana_dashboard": "1"},
        },
        "data": {f"{plan.name}.json": json.dumps(board, indent=1, sort_keys=True) + "\n"},
    }


def monitoring_resources(
    plan: Plan, selector: dict[str, str], port: dict[str, Any], label: str = LABEL
) -> dict[str, dict[str, Any]]:
    """:data:`FILES`: the PodMonitor of the pods ``selector`` picks and the dashboard, both
    on the pod label ``label`` (whose value is the plan's name on those pods)."""
    labels = {LABEL: plan.name, "app.kubernetes.io/managed-by": "aimc"}
    return {
        "monitoring/dashboard.yaml": dashboard(plan, labels, label),
        "monitoring/podmonitor.yaml": pod_monitor(plan, selector, port, labels, label),
    }
