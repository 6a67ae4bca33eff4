"""The real ``kubectl`` on every kind of folder ``--emit k8s`` writes: Deployment,
replicated, LeaderWorkerSet of vLLM and of SGLang.

``kubectl apply -f DIR`` decodes every ``.json``, ``.yaml`` and ``.yml`` file in DIR (and
below it with ``-R``) and stops at one that is no Kubernetes object: the ``manifest.json``
of earlier aimc versions stopped it (``unable to decode ".../manifest.json": Object 'Kind'
is missing``). aimc's manifest is now ``manifest.aimc``, a name kubectl skips.

kubectl needs an API server past decoding, and none can be installed here (see
:mod:`tests.fakes.kube_apiserver`): it runs against a discovery-only stand-in with
``--dry-run=client --validate=false`` (the stand-in serves no OpenAPI documents; the schemas
are checked in tests/test_k8s.py and tests/test_multinode.py). That is the decode and
mapping step of a real ``kubectl apply``: every file read, every object mapped to its
resource (a GET of it in the namespace), and the object kubectl would create printed back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aimc.core.ownership import KUBERNETES_MANIFEST, MANIFEST
from tests.fakes.kube_apiserver import kube_api
from tests.helpers.operators import apply_folder, folder_objects, kubectl

#: Every kind of folder: (id, compile arguments, the kinds it holds).
FOLDERS = [
    ("deployment", ["Qwen/Qwen3-8B", "--target", "h100"], {"Deployment"}),
    ("deployment-rocm", ["Qwen/Qwen3-32B", "8", "--target", "mi300x"], {"Deployment"}),
    # A shared cache: the download Job besides (one download per model).
    ("replicated", ["Qwen/Qwen3-8B", "--target", "h100", "--replicas", "3"], {"Deployment", "Job"}),
    (
        "leaderworkerset",
        ["meta-llama/Llama-3.1-405B-Instruct", "--target", "h100", "--precision", "bf16"],
        {"LeaderWorkerSet", "Job"},
    ),
    # SGLang's own multi-node launch (tensor parallel 16 across two nodes).
    (
        "leaderworkerset-sglang",
        ["deepseek-ai/DeepSeek-R1", "--target", "h100", "--nodes", "2"],
        {"LeaderWorkerSet", "Job"},
    ),
    # With an RDMA interconnect: the device plugin's resource and IPC_LOCK in the pods.
    (
        "leaderworkerset-rdma",
        [
            "meta-llama/Llama-3.1-405B-Instruct",
            "--target",
            "h100",
            "--precision",
            "bf16",
            "--recipes",
            str(Path(__file__).parent / "data" / "interconnect"),
        ],
        {"LeaderWorkerSet", "Job"},
    ),
]


def _compile(cli: Any, out: Path, args: list[str]) -> None:
    result = cli("compile", *args, "--emit", "k8s", "-o", str(out))
    assert result.code == 0, result.err


@pytest.mark.parametrize(("kind", "args", "kinds"), FOLDERS, ids=[f[0] for f in FOLDERS])
@pytest.mark.parametrize("recursive", [False, True], ids=["flat", "recursive"])
def test_kubectl_applies_every_emitted_folder(
    cli: Any, tmp_path: Path, kind: str, args: list[str], kinds: set[str], recursive: bool
) -> None:
    """``kubectl apply -f DIR`` (and ``-R``) decodes every file: exit 0, nothing on
    stderr, each object mapped to its resource and sent exactly as the file has it."""
    out = tmp_path / "k8s"
    _compile(cli, out, args)
    assert (out / KUBERNETES_MANIFEST).is_file() and not (out / MANIFEST).exists()
    expected = folder_objects(out, recursive)
    # monitoring/ (PodMonitor, dashboard ConfigMap) is read only with -R.
    monitoring = {"PodMonitor", "ConfigMap"} if recursive else set()
    assert {o["kind"] for o in expected} == kinds | {
        "Service",
        "PersistentVolumeClaim",
    } | monitoring
    apply_folder(out, tmp_path, recursive)


def test_kubectl_stops_at_a_json_file_that_is_no_object(cli: Any, tmp_path: Path) -> None:
    """The failure the test above guards against, shown with the same kubectl: the folder
    as earlier aimc versions wrote it (``manifest.json``) is not applied."""
    out = tmp_path / "k8s"
    _compile(cli, out, ["Qwen/Qwen3-8B", "--target", "h100"])
    (out / KUBERNETES_MANIFEST).rename(out / MANIFEST)
    with kube_api(tmp_path) as api:
        flags = ["apply", "-f", str(out), "--dry-run=client", "--validate=false"]
        result = kubectl(flags, api.env(tmp_path))
    assert result.returncode == 1
    assert f'unable to decode "{out / MANIFEST}"' in result.stderr
    assert "Object 'Kind' is missing" in result.stderr
