"""Multi-node plans as the tests check them: the LeaderWorkerSet against the CRD's schema
(vendored in ``tests/data/lws/``, kubernetes-sigs/lws @ 060ab4d, made strict as the API
server's strict field validation is), a launch script run with recording ``docker`` and
``python3``, and the shipped catalog with 3-node configurations. Shared by the multi-node,
interconnect, Kubernetes and vLLM parser tests."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
from ruamel.yaml import YAML

from aimc.check.catalog import Catalog
from aimc.domain.recipe import RecipeRoot
from tests.conftest import ROOT
from tests.helpers.k8s import K8S_VERSION, load_yaml
from tests.helpers.observability import validate_cluster_object

__all__ = ["CRD", "lws_validator", "run_recorded", "three_node_catalog", "validate_multinode"]

CRD = ROOT / "tests/data/lws/leaderworkerset.x-k8s.io_leaderworkersets.crd.yaml"


def _strict(schema: Any) -> Any:
    """``schema`` with unknown fields refused: every object schema that lists its
    properties and says nothing of others gets ``additionalProperties: false`` (what the
    API server's pruning / strict field validation does with a structural schema)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.cache
def lws_validator() -> jsonschema.Draft7Validator:
    """The CRD's v1 schema: OpenAPI v3, which Draft 7 reads once the ``x-kubernetes-*``
    keys are ignored (it has no ``nullable``; int-or-string is an ``anyOf``)."""
    crd = YAML(typ="safe", pure=False).load(CRD.read_text(encoding="utf-8"))
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = _strict(version["schema"]["openAPIV3Schema"])
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def validate_multinode(files: dict[str, str]) -> None:
    """The multi-node manifests: the LeaderWorkerSet against the CRD, the Service, the PVC
    and the download Job with kubernetes-validate."""
    lws_validator().validate(load_yaml(files["leaderworkerset.yaml"]))
    for name in ("service.yaml", "pvc.yaml", "download.yaml"):
        kubernetes_validate.validate(load_yaml(files[name]), K8S_VERSION, strict=True)
    for name in files:
        if name.startswith("monitoring/") or name in ("scaledobject.yaml", "hpa.yaml"):
            validate_cluster_object(load_yaml(files[name]))


def run_recorded(
    script: Path, sandbox: Path, env: dict[str, str]
) -> tuple[int, str, dict[str, Any]]:
    """Run ``script`` with recording ``docker`` and ``python3`` first on PATH: its exit
    status, stderr, and the argv and environment the tool it ran was given."""
    bindir = sandbox / "bin"
    bindir.mkdir(exist_ok=True)
    for name in ("docker", "python3"):
        tool = bindir / name
        tool.write_text(
            f"#!{sys.executable}\nimport json, os, sys\n"
            'json.dump({"argv": sys.argv[1:], "env": dict(os.environ)}, '
            'open(os.environ["RECORD"], "w"))\n'
        )
        tool.chmod(0o755)
    record = sandbox / "record.json"
    record.unlink(missing_ok=True)
    full = {
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "RECORD": str(record),
        "CACHE_DIR": str(sandbox / "cache"),
        **env,
    }
    result = subprocess.run(
        ["bash", str(script)], env=full, cwd=sandbox, capture_output=True, text=True
    )
    seen = json.loads(record.read_text()) if record.exists() else {}
    return result.returncode, result.stderr, seen


def three_node_catalog(root: Path) -> Catalog:
    """The shipped recipes with a 3-node configuration each: Llama 3.1 405B bf16 on
    3 x 8 x H100 with vLLM (126 layers: 42 per stage), DeepSeek-R1 FP8 on 3 x 8 x H100 with
    SGLang (tensor parallel 24: the copy's 128 heads become 192 so that 24 divides them;
    only the arguments are looked at here)."""
    llama = (ROOT / "recipes/models/meta-llama/Llama-3.1-405B-Instruct.yaml").read_text()
    deepseek = (ROOT / "recipes/models/deepseek-ai/DeepSeek-R1.yaml").read_text()
    edits = [
        (llama, "meta-llama/Llama-3.1-405B-Instruct.yaml", [("nodes: [2]", "nodes: [3]")]),
        (
            deepseek,
            "deepseek-ai/DeepSeek-R1.yaml",
            [
                ("nodes: [2]", "nodes: [3]"),
                (
                    "attention_heads: 128\n    kv_heads: 128",
                    "attention_heads: 192\n    kv_heads: 192",
                ),
            ],
        ),
    ]
    for text, name, pairs in edits:
        for old, new in pairs:
            assert text.count(old) == 1, (name, old)
            text = text.replace(old, new)
        path = root / "models" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return Catalog([RecipeRoot(root, "--recipes"), *Catalog.default().roots])
