"""What the operator emitters' tests share: the real ``kubectl`` on a folder (against the
discovery-only stand-in, :mod:`tests.fakes.kube_apiserver`), the objects of a folder, and
the strategic merge KServe's controller makes of a preset and a service.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.fakes.kube_apiserver import RESOURCES, kube_api

__all__ = ["KUBECTL", "apply_folder", "folder_objects", "resource_path", "strategic_merge"]

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
    meta = dict(obj["metadata"])
    assert meta.pop("namespace", "default") == "default"
    if meta.get("annotations") == {}:
        del meta["annotations"]
    return {**obj, "metadata": meta}


def apply_folder(folder: Path, home: Path, recursive: bool) -> None:
    """``kubectl apply -f FOLDER --dry-run=client --validate=false -o json`` (and ``-R``):
    exit 0, nothing on stderr, every object of every file sent as the file has it and looked
    up at its resource's path, nothing else asked."""
    assert KUBECTL, "kubectl is not installed: run scripts/setup-docker.sh --packages as root"
    expected = folder_objects(folder, recursive)
    with kube_api(home) as api:
        flags = ["apply", "-f", str(folder), "--dry-run=client", "--validate=false", "-o", "json"]
        result = subprocess.run(
            [KUBECTL, *flags, *(["-R"] if recursive else [])],
            env=api.env(home),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
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
