"""What ``monitoring/`` and ``--autoscale`` add to a cluster folder, checked as a cluster
would: KEDA's ScaledObject and prometheus-operator's PodMonitor against their vendored CRDs
(``tests/data/keda/``, ``tests/data/prometheus-operator/``: strict, metadata, CEL by hand),
the built-in kinds (ConfigMap, HorizontalPodAutoscaler, ...) against the Kubernetes schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate

from tests.helpers.crd import cel_rules, check_metadata, crd_schema, validator
from tests.helpers.k8s import K8S_VERSION

DATA = Path(__file__).resolve().parents[1] / "data"
#: (apiVersion, kind) -> (vendored CRD, version).
CRDS = {
    ("keda.sh/v1alpha1", "ScaledObject"): (
        DATA / "keda" / "keda.sh_scaledobjects.yaml",
        "v1alpha1",
    ),
    ("monitoring.coreos.com/v1", "PodMonitor"): (
        DATA / "prometheus-operator" / "monitoring.coreos.com_podmonitors.yaml",
        "v1",
    ),
}


def _min_le_max(spec: dict[str, Any]) -> bool:
    high = spec.get("maxReplicaCount", 100)
    return "minReplicaCount" not in spec or spec["minReplicaCount"] <= high


#: The CEL rules of those CRDs, by hand (no CEL interpreter installs here).
CEL = {
    "!has(self.minReplicaCount) || self.minReplicaCount <= (has(self.maxReplicaCount)"
    " ? self.maxReplicaCount : 100)": _min_le_max,
}


def validate_cluster_object(obj: dict[str, Any]) -> None:
    """``obj`` checked against its vendored CRD, else the Kubernetes schemas."""
    found = CRDS.get((obj["apiVersion"], obj["kind"]))
    if found is None:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        return
    path, version = found
    validator(path, version).validate(obj)
    check_metadata(obj)
    for where, rule, value in cel_rules(crd_schema(path, version), obj):
        assert CEL[rule](value), (where, rule)
