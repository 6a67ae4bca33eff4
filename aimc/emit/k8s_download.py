"""One download per model for ``--emit k8s``: the download step, the wait step, the Job.

A single pod downloads in its own ``download`` init container
(:func:`download_container`); when several pods share the cache (replicas, a
LeaderWorkerSet group: :func:`shares_download`) a Job (``download.yaml``,
:func:`download_job`) downloads once and every server pod waits for its ready mark
(:func:`wait_container`, :func:`ready_mark`). The servers then start offline
(:func:`aimc.emit.k8s_pod.server_env`). Pure data, like the rest of the Kubernetes emitter.
"""

from __future__ import annotations

import copy
from typing import Any

from aimc.core.digest import sha256
from aimc.emit.k8s_pod import LABEL_MAX, SECURITY_CONTEXT, k8s_escape, k8s_name
from aimc.emit.render import CONTAINER_CACHE
from aimc.plan.model import Plan

__all__ = [
    "DOWNLOAD_SCRIPT",
    "READY_DIR",
    "download_container",
    "download_job",
    "download_job_name",
    "ready_mark",
    "shares_download",
    "wait_container",
]

#: One download per model (:func:`download_container`): where the download step marks a
#: complete snapshot, in the cache claim, one file per repository and revision.
READY_DIR = f"{CONTAINER_CACHE}/.aimc-ready"
#: The download, run with the image's own Python (the vLLM and SGLang images have
#: huggingface_hub): the repository into ``HF_HUB_CACHE`` with ``HF_TOKEN`` (and the
#: Secret's other variables) from the environment, then the ready mark. The names come from
#: the environment, never from the script's text. ``original/*`` is vLLM's default
#: ``LoadConfig.ignore_patterns`` (vllm/config/load.py:102: Llama's original checkpoints,
#: as large as the safetensors, which vLLM never reads).
DOWNLOAD_SCRIPT = """\
import os, pathlib
from huggingface_hub import snapshot_download
snapshot_download(os.environ["AIMC_MODEL"], revision=os.environ.get("AIMC_REVISION") or None,
                  ignore_patterns=["original/*"])
ready = pathlib.Path(os.environ["AIMC_MODEL_READY"])
ready.parent.mkdir(parents=True, exist_ok=True)
ready.touch()
"""
#: A pod that shares the cache waits for the ready mark (then starts offline).
WAIT_SCRIPT = """\
import os, time
while not os.path.exists(os.environ["AIMC_MODEL_READY"]):
    time.sleep(10)
"""
#: The download step: network and disk bound, a few threads (huggingface_hub's 8 workers).
#: Requests equal to limits: a Job pod of it is Guaranteed.
DOWNLOAD_RESOURCES: dict[str, dict[str, Any]] = {
    "requests": {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "1Gi"},
    "limits": {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "1Gi"},
}
#: The wait step: a Python loop that sleeps.
WAIT_RESOURCES: dict[str, dict[str, Any]] = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"cpu": "100m", "memory": "128Mi"},
}
#: Retries of the download Job's pod before the Job fails (the Kubernetes default, 6).
DOWNLOAD_BACKOFF_LIMIT = 6


def ready_mark(plan: Plan) -> str:
    """The file the download step writes once the snapshot is complete: under
    :data:`READY_DIR`, named by 16 hex digits of the sha256 of ``MODEL@REVISION`` (no
    character of a repository id reaches a path)."""
    key = f"{plan.model_id}@{plan.model_revision or 'main'}"
    return f"{READY_DIR}/{sha256(key.encode()).hexdigest()[:16]}"


def download_job_name(plan: Plan) -> str:
    """The download Job of a shared cache: ``NAME-download`` (at most 63 characters: the
    Job controller labels its pods ``job-name: NAME``)."""
    return k8s_name(plan.name, "-download", LABEL_MAX)


def shares_download(plan: Plan, replicas: int) -> bool:
    """Whether several pods share the cache (replicas, or the pods of a LeaderWorkerSet
    group): then one Job downloads and every pod waits; else the one pod downloads."""
    return replicas > 1 or plan.nodes > 1


def download_container(plan: Plan, secret_env: list[dict[str, Any]]) -> dict[str, Any]:
    """The container that fills the cache once (:data:`DOWNLOAD_SCRIPT`): the server's
    image, the Secret's Hub variables (``HF_TOKEN``, ``HF_HUB_OFFLINE``: none of the
    server's, such as ``VLLM_API_KEY``), ``HF_HUB_CACHE`` and the model,
    revision and ready mark as values (each ``$`` doubled)."""
    hub = [copy.deepcopy(var) for var in secret_env if var["name"].startswith("HF_")]
    env = [*hub, {"name": "HF_HUB_CACHE", "value": CONTAINER_CACHE}]
    env.append({"name": "AIMC_MODEL", "value": k8s_escape(plan.model_id)})
    if plan.model_revision:
        env.append({"name": "AIMC_REVISION", "value": k8s_escape(plan.model_revision)})
    env.append({"name": "AIMC_MODEL_READY", "value": ready_mark(plan)})
    return {
        "name": "download",
        "image": plan.image,
        "command": ["python3", "-c", k8s_escape(DOWNLOAD_SCRIPT)],
        "env": env,
        "resources": copy.deepcopy(DOWNLOAD_RESOURCES),
        "securityContext": copy.deepcopy(SECURITY_CONTEXT),
        "volumeMounts": [{"name": "model-cache", "mountPath": CONTAINER_CACHE}],
    }


def wait_container(plan: Plan) -> dict[str, Any]:
    """The init container of a pod that shares the cache: waits for the download Job's
    ready mark (:data:`WAIT_SCRIPT`)."""
    return {
        "name": "wait-for-model",
        "image": plan.image,
        "command": ["python3", "-c", k8s_escape(WAIT_SCRIPT)],
        "env": [{"name": "AIMC_MODEL_READY", "value": ready_mark(plan)}],
        "resources": copy.deepcopy(WAIT_RESOURCES),
        "securityContext": copy.deepcopy(SECURITY_CONTEXT),
        "volumeMounts": [{"name": "model-cache", "mountPath": CONTAINER_CACHE, "readOnly": True}],
    }


def download_job(
    plan: Plan,
    labels: dict[str, str],
    secret_env: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
) -> dict[str, Any]:
    """The Job that fills a shared cache once, for every replica and every pod of a group
    (the pods wait for its ready mark: :func:`wait_container`). Its pods are labelled
    ``component: download``: the Services and the Deployment select ``server`` only."""
    job_labels = {**labels, "app.kubernetes.io/component": "download"}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": download_job_name(plan), "labels": job_labels},
        "spec": {
            "backoffLimit": DOWNLOAD_BACKOFF_LIMIT,
            "template": {
                "metadata": {"labels": job_labels},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "containers": [download_container(plan, secret_env)],
                    "volumes": copy.deepcopy(volumes),
                },
            },
        },
    }
