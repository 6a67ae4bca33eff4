"""The prometheus-adapter rules an ``--autoscale hpa`` folder needs: ``prometheus-adapter.yaml``.

The HorizontalPodAutoscaler of ``--emit k8s --autoscale hpa`` reads the engine's gauges as
``Pods`` metrics under the engine's own names (``vllm:num_requests_waiting``...: a valid
metric name, the HPA's validation refuses only ``.``, ``..`` and names with ``/`` or
``%``). The custom metrics API serves them only through an adapter configured for them;
this module writes prometheus-adapter's rules for them (its config file format,
kubernetes-sigs/prometheus-adapter v0.12.0 ``docs/config.md`` and ``pkg/config/config.go``),
in a ConfigMap beside ``hpa.yaml``.

Each rule, per prometheus-adapter's four steps:

- discovery, ``seriesQuery``: the backend's gauges (:data:`aimc.emit.autoscale.SIGNALS`,
  every one of them, so the rules are the same for every plan of a backend and can be
  added to an adapter once) with a ``namespace`` and a ``pod`` label, which the
  PodMonitor's series carry (prometheus-operator relabels ``__meta_kubernetes_namespace``
  and ``__meta_kubernetes_pod_name`` onto them: ``pkg/prometheus/promcfg.go``);
- association, ``resources.overrides``: the ``namespace`` label is the namespace, ``pod``
  the pod;
- naming, ``name``: the series name unchanged (``^(NAME|NAME)$`` as ``${1}``);
- querying, ``metricsQuery``: one value per pod (``by (<<.GroupBy>>)``, the pod label the
  adapter maps results back to pods by), the gauge averaged over a minute as the KEDA
  queries do; summed over a pod's series for the request counts (vLLM reports one series
  per data-parallel engine), averaged for the KV-cache fraction.

prometheus-adapter reads one config file, so the ConfigMap is what to merge into it (the
Helm chart's ``rules.custom`` takes the same rules), not a config the adapter finds by itself.
"""

from __future__ import annotations

from typing import Any

from aimc.emit.autoscale import SIGNALS
from aimc.emit.templating import Literal, to_yaml
from aimc.plan.model import Plan

__all__ = ["ADAPTER_FILE", "adapter_config_map", "adapter_rules"]

ADAPTER_FILE = "prometheus-adapter.yaml"
#: The signals whose value per pod is a sum over its series (request counts), and the
#: ones that are averaged (fractions).
_SUMMED = ("queue", "running")
_AVERAGED = ("kv",)


def _rule(names: list[str], how: str) -> dict[str, Any]:
    alternatives = "|".join(names)
    return {
        "seriesQuery": f'{{__name__=~"{alternatives}",namespace!="",pod!=""}}',
        "resources": {
            "overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
        },
        "name": {"matches": f"^({alternatives})$", "as": "${1}"},
        "metricsQuery": (
            f"{how}(avg_over_time(<<.Series>>{{<<.LabelMatchers>>}}[1m])) by (<<.GroupBy>>)"
        ),
    }


def adapter_rules(plan: Plan) -> dict[str, Any]:
    """prometheus-adapter's config (``rules``) serving the gauges of ``plan``'s backend as
    Pods metrics under their own names."""
    signals = SIGNALS[plan.backend]
    return {
        "rules": [
            _rule([signals[s] for s in _SUMMED], "sum"),
            _rule([signals[s] for s in _AVERAGED], "avg"),
        ]
    }


def adapter_config_map(plan: Plan, labels: dict[str, str]) -> dict[str, Any]:
    """The rules as a ConfigMap (``config.yaml``, written as a literal block to read)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{plan.name}-prometheus-adapter", "labels": labels},
        "data": {"config.yaml": Literal(to_yaml(adapter_rules(plan)) + "\n")},
    }
