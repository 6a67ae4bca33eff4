"""Autoscaling of the cluster outputs (``--autoscale keda|hpa``): on the engine's own metrics.

``--emit k8s`` gets a KEDA ``ScaledObject`` (``keda.sh/v1alpha1``, written against the KEDA
CRD vendored in ``tests/data/keda/``) with two Prometheus triggers, or, where KEDA is absent,
an ``autoscaling/v2`` HorizontalPodAutoscaler on the same two metrics as ``Pods`` metrics (a
metrics adapter, e.g. prometheus-adapter, must serve them under the engine's names). Either
scales the Deployment, or the LeaderWorkerSet of a multi-node plan (its ``scale``
subresource: one group per replica). The two signals (:data:`SIGNALS`, the names of the pinned
engines: vLLM 0.32.0 ``vllm/v1/metrics/loggers.py``, SGLang 0.5.19
``sglang/srt/observability/metrics_collector.py``):

- the queue: requests waiting for a place in the running batch. Both engines admit a
  waiting request as soon as the batch limit and the KV cache allow (continuous batching), so
  a queue that stays is a replica at its limit. Target :data:`QUEUE_TARGET` waiting requests
  per replica, averaged over one minute (a burst that the batch absorbs in seconds does not
  scale);
- the KV cache in use (a fraction): when it fills, the engine preempts running requests
  (vLLM recomputes them). Target :data:`KV_TARGET` averaged over the replicas: the headroom
  that running requests still need as their outputs grow.

The recipes publish no figure of the point where a configuration saturates (``measured:``
gives throughput and latencies at one load, not the load), so these are the documented
defaults above, the same for every plan. A new replica costs minutes (the startup probe's
budget: the weights load), so scaling down waits :data:`SCALE_DOWN_WINDOW_S`.

KServe and the AIM operator scale their own workloads, through their own fields
(:func:`kserve_scaling`, :func:`aim_scaling`); aimc writes no ScaledObject for them.
Scale to zero (``--min-replicas 0``) is KEDA's only: at zero replicas no engine reports a
queue, so what wakes the service must come from outside the engine (a manual ``kubectl
scale``, KEDA's HTTP add-on); docs/kubernetes.md says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aimc.core.errors import ConfigError
from aimc.plan.model import Plan

__all__ = [
    "AUTOSCALERS",
    "DEFAULT_MAX_REPLICAS",
    "DEFAULT_PROMETHEUS",
    "KV_TARGET",
    "QUEUE_TARGET",
    "SCALE_DOWN_WINDOW_S",
    "SIGNALS",
    "Autoscale",
    "aim_scaling",
    "hpa",
    "kserve_scaling",
    "scaled_object",
    "selector_label",
]

AUTOSCALERS = ("keda", "hpa")
#: Waiting requests per replica above which a replica is added.
QUEUE_TARGET = 2
#: Fraction of the KV cache in use, averaged over the replicas, above which one is added.
KV_TARGET = 0.85
#: How long the load must stay low before a replica goes (seconds).
SCALE_DOWN_WINDOW_S = 600
#: How often KEDA queries Prometheus (seconds; KEDA's default is 30).
POLLING_S = 15
DEFAULT_MAX_REPLICAS = 4
#: The Service prometheus-operator creates for its Prometheus (``prometheus-operated``), in
#: the namespace kube-prometheus-stack installs into.
DEFAULT_PROMETHEUS = "http://prometheus-operated.monitoring.svc:9090"
#: The queue and KV-cache gauges by backend (see the module docstring).
SIGNALS: dict[str, dict[str, str]] = {
    "vllm": {"queue": "vllm:num_requests_waiting", "kv": "vllm:kv_cache_usage_perc"},
    "sglang": {"queue": "sglang:num_queue_reqs", "kv": "sglang:token_usage"},
}
#: The pod label the PodMonitor copies onto every series (``podTargetLabels``), as
#: Prometheus writes it: what the queries select a plan's pods by.
LABEL = "app.kubernetes.io/name"
_URL = re.compile(
    r"^https?://[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?\Z"
)


def selector_label(label: str = LABEL) -> str:
    """A pod label as Prometheus names it on a series (``app.kubernetes.io/name``:
    ``app_kubernetes_io_name``)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", label)


@dataclass(frozen=True)
class Autoscale:
    """What ``--autoscale`` asked for.

    Attributes:
        kind: ``keda`` or ``hpa`` (:data:`AUTOSCALERS`).
        min_replicas: The fewest replicas; 0 (KEDA only) scales to zero.
        max_replicas: The most replicas.
        prometheus: The Prometheus KEDA queries (``--prometheus-url``).
    """

    kind: str
    min_replicas: int = 1
    max_replicas: int = DEFAULT_MAX_REPLICAS
    prometheus: str = DEFAULT_PROMETHEUS

    def check(self) -> None:
        """Refuse what cannot be written (exit 2).

        Raises:
            ConfigError: An unknown kind, bounds the wrong way round, scale to zero without
                KEDA, a Prometheus URL that is no plain http(s) URL.
        """
        if self.kind not in AUTOSCALERS:
            raise ConfigError(f"--autoscale {self.kind!r} is not one of {', '.join(AUTOSCALERS)}")
        if not 0 <= self.min_replicas <= self.max_replicas:
            raise ConfigError(
                f"--min-replicas {self.min_replicas} is above --max-replicas {self.max_replicas}"
            )
        if self.min_replicas == 0 and self.kind != "keda":
            raise ConfigError(
                "--min-replicas 0 (scale to zero) needs --autoscale keda",
                hint="a HorizontalPodAutoscaler keeps at least one replica",
            )
        if not _URL.match(self.prometheus) or len(self.prometheus) > 2048:
            raise ConfigError(
                f"--prometheus-url {self.prometheus!r} is not an http(s)://HOST[:PORT][/PATH] URL"
            )

    def words(self) -> str:
        """The options as ``compile`` writes them in a header's command line."""
        line = f" --autoscale {self.kind}"
        if self.min_replicas != 1:
            line += f" --min-replicas {self.min_replicas}"
        if self.max_replicas != DEFAULT_MAX_REPLICAS:
            line += f" --max-replicas {self.max_replicas}"
        if self.prometheus != DEFAULT_PROMETHEUS:
            line += f" --prometheus-url {self.prometheus}"
        return line

    def record(self) -> dict[str, Any]:
        """What ``manifest.aimc`` records of it."""
        return {
            "kind": self.kind,
            "min_replicas": self.min_replicas,
            "max_replicas": self.max_replicas,
            "prometheus": self.prometheus,
        }


def _signals(plan: Plan) -> dict[str, str]:
    if plan.backend not in SIGNALS:
        raise ConfigError(f"--autoscale: the metrics of {plan.backend} are not known")
    return SIGNALS[plan.backend]


def _target(plan: Plan, kind: str, name: str) -> dict[str, str]:
    if kind == "Deployment":
        return {"apiVersion": "apps/v1", "kind": kind, "name": name}
    return {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": kind, "name": name}


def _behavior() -> dict[str, Any]:
    return {"scaleDown": {"stabilizationWindowSeconds": SCALE_DOWN_WINDOW_S}}


def scaled_object(
    plan: Plan, scale: Autoscale, kind: str, name: str, labels: dict[str, str]
) -> dict[str, Any]:
    """The KEDA ScaledObject of the workload ``kind``/``name`` (Deployment or
    LeaderWorkerSet): the queue summed over the plan's pods against :data:`QUEUE_TARGET` per
    replica (``AverageValue``), the KV cache averaged against :data:`KV_TARGET` (``Value``)."""
    signals = _signals(plan)
    pods = f'{{{selector_label()}="{plan.name}"}}'
    queue = f"sum(avg_over_time({signals['queue']}{pods}[1m]))"
    kv = f"avg(avg_over_time({signals['kv']}{pods}[1m]))"
    triggers = [
        {
            "type": "prometheus",
            "name": "queue",
            "metricType": "AverageValue",
            "metadata": {
                "serverAddress": scale.prometheus,
                "query": queue,
                "threshold": str(QUEUE_TARGET),
                "activationThreshold": "0",
            },
        },
        {
            "type": "prometheus",
            "name": "kv-cache",
            "metricType": "Value",
            "metadata": {
                "serverAddress": scale.prometheus,
                "query": kv,
                "threshold": str(KV_TARGET),
            },
        },
    ]
    spec: dict[str, Any] = {
        "scaleTargetRef": _target(plan, kind, name),
        "minReplicaCount": scale.min_replicas,
        "maxReplicaCount": scale.max_replicas,
        "pollingInterval": POLLING_S,
        "advanced": {"horizontalPodAutoscalerConfig": {"behavior": _behavior()}},
        "triggers": triggers,
    }
    if scale.min_replicas == 0:
        spec["cooldownPeriod"] = SCALE_DOWN_WINDOW_S
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": plan.name, "labels": labels},
        "spec": spec,
    }


def hpa(
    plan: Plan, scale: Autoscale, kind: str, name: str, labels: dict[str, str]
) -> dict[str, Any]:
    """The HorizontalPodAutoscaler of the workload: the same two signals as per-pod
    metrics (``Pods``, averaged over the pods by the HPA itself)."""
    signals = _signals(plan)

    def metric(name: str, target: str) -> dict[str, Any]:
        return {
            "type": "Pods",
            "pods": {
                "metric": {"name": name},
                "target": {"type": "AverageValue", "averageValue": target},
            },
        }

    kv_milli = f"{round(KV_TARGET * 1000)}m"
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": plan.name, "labels": labels},
        "spec": {
            "scaleTargetRef": _target(plan, kind, name),
            "minReplicas": scale.min_replicas,
            "maxReplicas": scale.max_replicas,
            "metrics": [
                metric(signals["queue"], str(QUEUE_TARGET)),
                metric(signals["kv"], kv_milli),
            ],
            "behavior": _behavior(),
        },
    }


def kserve_scaling(scale: Autoscale) -> dict[str, Any]:
    """``LLMInferenceService.spec.scaling`` (KServe v0.20): KServe's own autoscaling, through
    llm-d's Workload Variant Autoscaler (``wva``, which the CRD requires: it decides from its
    own saturation model, so no threshold is aimc's) with KEDA or an HPA as the actuator.

    Raises:
        ConfigError: Scale to zero (the CRD's ``minReplicas`` is at least 1).
    """
    if scale.min_replicas == 0:
        raise ConfigError(
            "--emit kserve: KServe's LLMInferenceService scales down to 1 replica, not 0",
            hint="--min-replicas 1, or --emit k8s --autoscale keda for scale to zero",
        )
    if scale.kind == "keda":
        # No ``advanced`` (KEDA's scale-down window): the CRD's rule on it reads
        # ``self.advanced.scalingModifiers.formula`` unguarded, which is an error in CEL
        # when scalingModifiers is unset, and scalingModifiers itself may not be set.
        actuator: dict[str, Any] = {"keda": {"pollingInterval": POLLING_S}}
    else:
        actuator = {"hpa": {"behavior": _behavior()}}
    return {"minReplicas": scale.min_replicas, "maxReplicas": scale.max_replicas, "wva": actuator}


def aim_scaling(plan: Plan, scale: Autoscale) -> dict[str, Any]:
    """The AIMService's autoscaling fields (aim-engine v0.2.1): ``minReplicas``,
    ``maxReplicas`` and ``autoScaling`` (KEDA, on the pods' queue through the operator's
    OpenTelemetry backend, the one it supports), with :data:`QUEUE_TARGET` per pod.

    Raises:
        ConfigError: ``--autoscale hpa`` (the operator autoscales through KEDA) or scale to
            zero (its ``minReplicas`` is at least 1).
    """
    if scale.kind != "keda" or scale.min_replicas == 0:
        raise ConfigError(
            "--emit aim: the AIM operator autoscales through KEDA, from 1 replica up",
            hint="--autoscale keda with --min-replicas 1 or more",
        )
    queue = _signals(plan)["queue"]
    metric = {
        "type": "PodMetric",
        "podmetric": {
            "metric": {"backend": "opentelemetry", "metricNames": [queue], "query": queue},
            "target": {"type": "AverageValue", "averageValue": str(QUEUE_TARGET)},
        },
    }
    return {
        "minReplicas": scale.min_replicas,
        "maxReplicas": scale.max_replicas,
        "autoScaling": {"metrics": [metric]},
    }
