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
defaults above, the same for every plan. When ``bench`` results of the plan's own
configuration at several concurrencies show where its throughput flattens
(:mod:`aimc.plan.saturation`), ``--emit k8s`` adds a third signal, the requests running,
with that saturation point as the target per replica (:func:`targets`); the header and
``manifest.aimc`` say which results it came from, or why the defaults stand. A new replica
costs minutes (the startup probe's budget: the weights load), so scaling down waits
:data:`SCALE_DOWN_WINDOW_S`.

KServe and the AIM operator scale their own workloads, through their own fields
(:func:`kserve_scaling`, :func:`aim_scaling`); aimc writes no ScaledObject for them.
Scale to zero (``--min-replicas 0``) is KEDA's only: at zero replicas no engine reports a
queue, so what wakes the service must come from outside the engine (a manual ``kubectl
scale``, KEDA's HTTP add-on); docs/kubernetes.md says so.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aimc.core.errors import ConfigError
from aimc.emit.autoscale_defaults import AUTOSCALERS, DEFAULT_MAX_REPLICAS, DEFAULT_PROMETHEUS
from aimc.plan.model import Plan

if TYPE_CHECKING:
    from aimc.plan.saturation import Curve, Run

__all__ = [
    "AUTOSCALERS",
    "DEFAULT_MAX_REPLICAS",
    "DEFAULT_PROMETHEUS",
    "KV_TARGET",
    "QUEUE_TARGET",
    "SCALE_DOWN_WINDOW_S",
    "SIGNALS",
    "Autoscale",
    "Targets",
    "aim_scaling",
    "hpa",
    "kserve_scaling",
    "scaled_object",
    "scaling_notes",
    "selector_label",
    "targets",
]

#: Waiting requests per replica above which a replica is added.
QUEUE_TARGET = 2
#: Fraction of the KV cache in use, averaged over the replicas, above which one is added.
KV_TARGET = 0.85
#: How long the load must stay low before a replica goes (seconds).
SCALE_DOWN_WINDOW_S = 600
#: How often KEDA queries Prometheus (seconds; KEDA's default is 30).
POLLING_S = 15
#: The queue, KV-cache and running-requests gauges by backend (see the module docstring).
SIGNALS: dict[str, dict[str, str]] = {
    "vllm": {
        "queue": "vllm:num_requests_waiting",
        "kv": "vllm:kv_cache_usage_perc",
        "running": "vllm:num_requests_running",
    },
    "sglang": {
        "queue": "sglang:num_queue_reqs",
        "kv": "sglang:token_usage",
        "running": "sglang:num_running_reqs",
    },
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
        bench: The bench runs read from the results file (:func:`aimc.plan.saturation.runs`):
            those of the plan's configuration give its saturation point (:func:`targets`).
        results: The results file ``--bench-results`` named (None: this machine's).
    """

    kind: str
    min_replicas: int = 1
    max_replicas: int = DEFAULT_MAX_REPLICAS
    prometheus: str = DEFAULT_PROMETHEUS
    bench: tuple[Run, ...] = ()
    results: str | None = None

    @property
    def source(self) -> str:
        """The results file, as the output names it (the same on every machine)."""
        from aimc.plan.saturation import RESULTS_SOURCE  # deferred: as in :func:`targets`

        return RESULTS_SOURCE if self.results is None else "the --bench-results file"

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
        if self.results is not None:
            line += f" --bench-results {shlex.quote(self.results)}"
        return line

    def record(self, plan: Plan | None = None) -> dict[str, Any]:
        """What ``manifest.aimc`` records of it; with ``plan``, the bench results of its
        configuration (``measured``) and the targets, when there are any."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "min_replicas": self.min_replicas,
            "max_replicas": self.max_replicas,
            "prometheus": self.prometheus,
        }
        if plan is not None and (goal := targets(plan, self)).curve.points:
            out["targets"] = {"queue": goal.queue, "kv": goal.kv, "running": goal.running}
            out["measured"] = goal.curve.record()
        return out


@dataclass(frozen=True)
class Targets:
    """The per-replica targets of a plan's autoscaler.

    Attributes:
        queue: Waiting requests per replica (:data:`QUEUE_TARGET`).
        kv: Fraction of the KV cache in use (:data:`KV_TARGET`).
        running: Running requests per replica: the configuration's measured saturation
            point, or None (no such signal) without one.
        curve: The bench results of the configuration the point comes from.
    """

    queue: int
    kv: float
    running: int | None
    curve: Curve


def targets(plan: Plan, scale: Autoscale) -> Targets:
    """The targets of ``plan``'s autoscaler: the documented defaults, and the running
    requests at the saturation point of its configuration's bench results, if they show
    one (:func:`aimc.plan.saturation.curve`; another configuration's never count)."""
    # Deferred: every compile builds its --autoscale options from this module; only an
    # --autoscale output reads bench results.
    from aimc.plan.saturation import curve

    measured = curve(plan, scale.bench, scale.source)
    return Targets(QUEUE_TARGET, KV_TARGET, measured.saturation, measured)


def scaling_notes(plan: Plan, scale: Autoscale) -> list[str]:
    """The header lines of a ScaledObject or HPA: on what it scales, and where each target
    comes from (the results file, configuration and concurrencies, or the defaults)."""
    goal = targets(plan, scale)
    measured = goal.curve
    if not measured.points:
        return [
            "Scales the server on the engine's queue and KV cache in use (docs/kubernetes.md:"
            " the targets and why).",
            "The recipe publishes no saturation point for this configuration: the targets are"
            " aimc's documented defaults.",
        ]
    key = measured.key()
    gpus = f"{key['gpus']} GPU" + ("s" if key["gpus"] != 1 else "")
    if key["data_parallel"] != 1:
        gpus += f" x {key['data_parallel']} data-parallel"
    ran = (
        f"Bench results in {measured.source} of this configuration ({key['configuration']},"
        f" {key['backend']} {key['backend_version']} {key['precision']}, {gpus},"
        f" engine arguments {key['args_hash']}), {measured.shape()}:"
    )
    if goal.running is None:
        return [
            "Scales the server on the engine's queue and KV cache in use (docs/kubernetes.md:"
            " the targets and why).",
            ran,
            f"  {measured.text()}.",
            f"They show no saturation point ({measured.why}): the targets are aimc's"
            " documented defaults.",
        ]
    return [
        "Scales the server on the requests running, the queue and the KV cache in use"
        " (docs/kubernetes.md: the targets and why).",
        ran,
        f"  {measured.text()}.",
        f"Running requests per replica: {goal.running}, the saturation point: {measured.why}.",
        f"The queue ({goal.queue} per replica) and KV-cache ({goal.kv}) targets are aimc's"
        " documented defaults.",
    ]


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


def _query(plan: Plan, signal: str, how: str) -> str:
    """``how`` (sum, avg) over the plan's pods of the gauge ``signal``, each averaged over a
    minute (a burst the batch absorbs in seconds does not scale)."""
    pods = f'{{{selector_label()}="{plan.name}"}}'
    return f"{how}(avg_over_time({_signals(plan)[signal]}{pods}[1m]))"


def scaled_object(
    plan: Plan, scale: Autoscale, kind: str, name: str, labels: dict[str, str]
) -> dict[str, Any]:
    """The KEDA ScaledObject of the workload ``kind``/``name`` (Deployment or
    LeaderWorkerSet): the queue summed over the plan's pods against :data:`QUEUE_TARGET` per
    replica (``AverageValue``), the KV cache averaged against :data:`KV_TARGET` (``Value``),
    and with a measured saturation point (:func:`targets`) the running requests summed
    against it per replica."""
    goal = targets(plan, scale)

    def trigger(name: str, query: str, metric: str, threshold: str) -> dict[str, Any]:
        return {
            "type": "prometheus",
            "name": name,
            "metricType": metric,
            "metadata": {"serverAddress": scale.prometheus, "query": query, "threshold": threshold},
        }

    queue = trigger("queue", _query(plan, "queue", "sum"), "AverageValue", str(goal.queue))
    queue["metadata"]["activationThreshold"] = "0"
    triggers = [queue]
    if goal.running is not None:
        running = _query(plan, "running", "sum")
        triggers.append(trigger("running", running, "AverageValue", str(goal.running)))
    triggers.append(trigger("kv-cache", _query(plan, "kv", "avg"), "Value", str(goal.kv)))
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
    """The HorizontalPodAutoscaler of the workload: the same signals as per-pod metrics
    (``Pods``, averaged over the pods by the HPA itself), which prometheus-adapter serves
    under the engine's names (:mod:`aimc.emit.adapter`)."""
    signals = _signals(plan)
    goal = targets(plan, scale)

    def metric(name: str, target: str) -> dict[str, Any]:
        return {
            "type": "Pods",
            "pods": {
                "metric": {"name": name},
                "target": {"type": "AverageValue", "averageValue": target},
            },
        }

    metrics = [metric(signals["queue"], str(goal.queue))]
    if goal.running is not None:
        metrics.append(metric(signals["running"], str(goal.running)))
    metrics.append(metric(signals["kv"], f"{round(goal.kv * 1000)}m"))
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": plan.name, "labels": labels},
        "spec": {
            "scaleTargetRef": _target(plan, kind, name),
            "minReplicas": scale.min_replicas,
            "maxReplicas": scale.max_replicas,
            "metrics": metrics,
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
