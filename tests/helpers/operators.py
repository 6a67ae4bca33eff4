"""What the operator emitters' tests share: the real ``kubectl`` on a folder (against the
discovery-only stand-in, :mod:`tests.fakes.kube_apiserver`), the objects of a folder, and
the strategic merge KServe's controller makes of a preset and a service.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
from ruamel.yaml import YAML

from tests.fakes.kube_apiserver import RESOURCES, kube_api
from tests.helpers.crd import cel_rules, check_metadata, crd_schema, validator
from tests.helpers.k8s import K8S_VERSION
from tests.helpers.multinode import lws_validator
from tests.helpers.observability import validate_cluster_object

__all__ = [
    "AIM_CEL",
    "AIM_CRDS",
    "KSERVE_CEL",
    "KSERVE_CRDS",
    "KUBECTL",
    "apply_folder",
    "folder_objects",
    "resource_path",
    "strategic_merge",
    "validate_any",
]

DATA = Path(__file__).resolve().parents[1] / "data"


def _cel_get(obj: Any, *path: str) -> Any:
    """``obj.a.b...`` as CEL reads it: an unset field is an error (here: None, which no
    rule accepts), never an empty value."""
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


KSERVE_CRDS = {
    "LLMInferenceService": DATA / "kserve" / "serving.kserve.io_llminferenceservices.yaml.gz",
    "LLMInferenceServiceConfig": (
        DATA / "kserve" / "serving.kserve.io_llminferenceserviceconfigs.yaml.gz"
    ),
}
#: The CEL rules of KServe's CRD met by what aimc writes, each evaluated by hand.
KSERVE_CEL: dict[str, Callable[[Any], bool]] = {
    "!(has(self.replicas) && has(self.scaling))": lambda s: not {"replicas", "scaling"} <= set(s),
    # spec.scaling (KServe v0.20's WVA autoscaling). CEL reads an unset field as an error,
    # not as empty: a path that is not there fails the rule (``_cel_get``).
    "has(self.wva)": lambda s: "wva" in s,
    "!has(self.minReplicas) || self.minReplicas <= self.maxReplicas": (
        lambda s: "minReplicas" not in s or s["minReplicas"] <= s["maxReplicas"]
    ),
    "!has(self.wva) || !has(self.wva.keda) || !has(self.wva.keda.idleReplicaCount) ||"
    " has(self.minReplicas)": (
        lambda s: "idleReplicaCount" not in s.get("wva", {}).get("keda", {}) or "minReplicas" in s
    ),
    "!has(self.wva) || !has(self.wva.keda) || !has(self.wva.keda.idleReplicaCount) ||"
    " !has(self.minReplicas) || self.wva.keda.idleReplicaCount < self.minReplicas": (
        lambda s: (
            "idleReplicaCount" not in s.get("wva", {}).get("keda", {})
            or "minReplicas" not in s
            or s["wva"]["keda"]["idleReplicaCount"] < s["minReplicas"]
        )
    ),
    "!(has(self.hpa) && has(self.keda))": lambda s: not {"hpa", "keda"} <= set(s),
    "has(self.hpa) || has(self.keda)": lambda s: bool({"hpa", "keda"} & set(s)),
    "!has(self.advanced) || (size(self.advanced.scalingModifiers.formula) == 0 &&"
    " size(self.advanced.scalingModifiers.target) == 0 &&"
    " size(self.advanced.scalingModifiers.activationTarget) == 0 &&"
    " size(self.advanced.scalingModifiers.metricType) == 0)": (
        lambda s: (
            "advanced" not in s
            or all(
                _cel_get(s, "advanced", "scalingModifiers", k) == ""
                for k in ("formula", "target", "activationTarget", "metricType")
            )
        )
    ),
    "!has(self.advanced) || !has(self.advanced.horizontalPodAutoscalerConfig) ||"
    " size(self.advanced.horizontalPodAutoscalerConfig.name) == 0": (
        lambda s: (
            "horizontalPodAutoscalerConfig" not in s.get("advanced", {})
            or _cel_get(s, "advanced", "horizontalPodAutoscalerConfig", "name") == ""
        )
    ),
}
AIM_CRDS = {
    "AIMModel": DATA / "aim" / "aim.eai.amd.com_aimmodels.yaml",
    "AIMServiceTemplate": DATA / "aim" / "aim.eai.amd.com_aimservicetemplates.yaml",
    "AIMService": DATA / "aim" / "aim.eai.amd.com_aimservices.yaml",
}
#: The CEL rules of the AIM operator's CRDs met by what aimc writes, each evaluated by hand
#: (``self == oldSelf``: an update rule, true on create).
AIM_CEL = {
    "self == oldSelf": lambda s: True,
    "(has(self.name) ? 1 : 0) + (has(self.image) ? 1 : 0) + (has(self.custom) ? 1 : 0) == 1": (
        lambda s: len({"name", "image", "custom"} & set(s)) == 1
    ),
    "has(self.gpu) || has(self.cpu)": lambda s: "gpu" in s or "cpu" in s,
    "!(has(self.model) && size(self.model) > 0 && has(self.minVram))": (
        lambda s: not (s.get("model") and "minVram" in s)
    ),
    (
        "!has(self.modelSources) || size(self.modelSources) == 0 || (has(self.custom) &&"
        " has(self.custom.hardware)) || !has(self.customTemplates) ||"
        " size(self.customTemplates) == 0 || self.customTemplates.all(t, has(t.hardware) ||"
        " (has(self.custom) && has(self.custom.hardware)))"
    ): (lambda s: not s.get("modelSources")),
}


def validate_any(obj: dict[str, Any]) -> None:
    """Any object aimc writes to a cluster folder, checked against its schema: KServe's and
    the AIM operator's CRDs (strict, metadata, CEL by hand, a KServe pod template against
    the Kubernetes Pod schema), the LeaderWorkerSet CRD, else
    :func:`tests.helpers.observability.validate_cluster_object`."""
    group = obj["apiVersion"].split("/")[0]
    crds, cel = {
        "serving.kserve.io": (KSERVE_CRDS, KSERVE_CEL),
        "aim.eai.amd.com": (AIM_CRDS, AIM_CEL),
    }.get(group, ({}, {}))
    if obj["kind"] in crds:
        validator(crds[obj["kind"]], "v1alpha1").validate(obj)
        check_metadata(obj)
        for path, rule, value in cel_rules(crd_schema(crds[obj["kind"]], "v1alpha1"), obj):
            assert cel[rule](value), (path, rule)
        for pod in ("template", "worker") if group == "serving.kserve.io" else ():
            if pod in obj["spec"]:
                spec = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}
                kubernetes_validate.validate(
                    {**spec, "spec": obj["spec"][pod]}, K8S_VERSION, strict=True
                )
    elif obj["kind"] == "LeaderWorkerSet":
        lws_validator().validate(obj)
    else:
        validate_cluster_object(obj)


KUBECTL = shutil.which("kubectl", path="/usr/local/bin:/usr/bin:/bin")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
#: The merge key of each list of a PodSpec (k8s.io/api/core/v1 ``patchMergeKey``); every
#: other list is replaced whole, as strategic merge patches do.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "env": "name",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
}


def folder_objects(folder: Path, recursive: bool = False) -> list[dict[str, Any]]:
    """The objects of every .yaml file in ``folder`` (and below it when ``recursive``, as
    ``kubectl apply -R`` reads them), as a YAML reader sees them."""
    yaml = YAML(typ="safe", pure=True)
    return [
        doc
        for path in sorted(folder.rglob("*.yaml") if recursive else folder.glob("*.yaml"))
        for doc in yaml.load_all(path.read_text())
        if doc is not None
    ]


def resource_path(obj: dict[str, Any]) -> str:
    """The path kubectl GETs ``obj`` at in namespace ``default``."""
    (plural,) = [
        r for gv, r, kind, _ in RESOURCES if gv == obj["apiVersion"] and kind == obj["kind"]
    ]
    root = "/api/v1" if obj["apiVersion"] == "v1" else f"/apis/{obj['apiVersion']}"
    return f"{root}/namespaces/default/{plural}/{obj['metadata']['name']}"


def _as_written(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` less what kubectl adds: the namespace it applies to, empty annotations."""
    meta = dict(obj["metadata"])
    assert meta.pop("namespace", "default") == "default"
    if meta.get("annotations") == {}:
        del meta["annotations"]
    return {**obj, "metadata": meta}


def kubectl(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The real ``kubectl ARGS`` (its output captured, its exit status not checked)."""
    assert KUBECTL, "kubectl is not installed: run scripts/setup-docker.sh --packages as root"
    return subprocess.run(
        [KUBECTL, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def apply_folder(folder: Path, home: Path, recursive: bool) -> None:
    """``kubectl apply -f FOLDER --dry-run=client --validate=false -o json`` (and ``-R``):
    exit 0, nothing on stderr, every object of every file sent as the file has it (apply
    records it, as read, in the last-applied annotation, and adds the namespace) and looked
    up at its resource's path (kind and apiVersion map), nothing else asked."""
    expected = folder_objects(folder, recursive)
    with kube_api(home) as api:
        flags = ["apply", "-f", str(folder), "--dry-run=client", "--validate=false", "-o", "json"]
        result = kubectl([*flags, *(["-R"] if recursive else [])], api.env(home))
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        printed = json.loads(result.stdout)
        items = printed["items"] if printed["kind"] == "List" else [printed]
        sent = [json.loads(item["metadata"]["annotations"].pop(LAST_APPLIED)) for item in items]
        key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
        assert sorted(map(_as_written, sent), key=key) == sorted(expected, key=key)
        assert sorted(map(_as_written, items), key=key) == sorted(expected, key=key)
        assert sorted(api.gets) == sorted(("GET", resource_path(o)) for o in expected)
        assert api.other == []


def strategic_merge(base: Any, patch: Any, key: str | None = None) -> Any:
    """``patch`` merged into ``base`` as a strategic merge patch does with a PodSpec
    (``k8s.io/apimachinery/pkg/util/strategicpatch``, no retainKeys directive: KServe's
    ``mergeSpecs`` makes its patch with ``CreateTwoWayMergePatch``): maps key by key, the
    lists of :data:`MERGE_KEYS` element by element, anything else replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for name, value in patch.items():
            out[name] = strategic_merge(base[name], value, name) if name in base else value
        return copy.deepcopy(out)
    if isinstance(base, list) and isinstance(patch, list) and key in MERGE_KEYS:
        field = MERGE_KEYS[key]
        merged = [copy.deepcopy(item) for item in base]
        for item in patch:
            at = [i for i, old in enumerate(merged) if old.get(field) == item.get(field)]
            if at:
                merged[at[0]] = strategic_merge(merged[at[0]], item)
            else:
                merged.append(copy.deepcopy(item))
        return merged
    return copy.deepcopy(patch)
