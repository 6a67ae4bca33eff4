"""The autoscalers ``--autoscale`` names and its options' defaults, apart from
:mod:`aimc.emit.autoscale` so that the options of ``compile`` and ``show-config`` are
made without loading the autoscaling code (~1.5 ms of every compile, most with no
``--autoscale``)."""

from __future__ import annotations

__all__ = ["AUTOSCALERS", "DEFAULT_MAX_REPLICAS", "DEFAULT_PROMETHEUS"]

AUTOSCALERS = ("keda", "hpa")
DEFAULT_MAX_REPLICAS = 4
#: The Service prometheus-operator creates for its Prometheus (``prometheus-operated``), in
#: the namespace kube-prometheus-stack installs into.
DEFAULT_PROMETHEUS = "http://prometheus-operated.monitoring.svc:9090"
