"""Kubernetes artifacts (``--emit k8s``): the same :class:`~aimc.plan.model.Plan` as plain
manifests.

Pure, like :mod:`aimc.emit.render`: one resource kind per file (``deployment.yaml``,
``service.yaml``, ``pvc.yaml``) plus ``manifest.aimc`` (aimc's ownership and drift record,
the JSON of the local folders' ``manifest.json`` under a name ``kubectl apply -f DIR``
does not read: :data:`aimc.core.ownership.KUBERNETES_MANIFEST`), deterministic, with the provenance
header of the other artifacts.

This module checks that a plan can run in a pod, puts the objects of a single-node plan
together (a Deployment, its Service and the model cache's claim), hands a multi-node plan
to a LeaderWorkerSet instead, and renders and records them all. The parts:

- :mod:`aimc.emit.k8s_pod`: the server pod (its names, container, resources, security and
  volumes: what ``docker run`` does, as a pod);
- :mod:`aimc.emit.k8s_download`: one download per model (an init container, or a Job whose
  ready mark every pod that shares the cache waits for);
- :mod:`aimc.emit.k8s_lws`: a multi-node plan's LeaderWorkerSet, its names and the roles of
  its pods (and what the kubernetes-sigs/lws controller does that aimc relies on).
"""

from __future__ import annotations

import re
from typing import Any

from aimc import __version__
from aimc.core.errors import ConfigError
from aimc.core.ownership import KUBERNETES_MANIFEST
from aimc.core.safety import check_env
from aimc.emit.adapter import ADAPTER_FILE, adapter_config_map
from aimc.emit.autoscale import Autoscale, hpa, scaled_object, scaling_notes
from aimc.emit.cluster import render_files
from aimc.emit.k8s_download import download_container, download_job, shares_download, wait_container
from aimc.emit.k8s_lws import (
    leader_args,
    leader_selector,
    leader_service_name,
    leader_worker_set,
    lws_name,
    worker_args,
)
from aimc.emit.k8s_pod import (
    cache_claim_gib,
    claim_name,
    env_entry,
    pod_volumes,
    secret_name,
    server_container,
)
from aimc.emit.monitoring import monitoring_resources
from aimc.emit.render import (
    container_env,
    interconnect_note,
    manifest,
    multinode_layout,
    store_port,
    worker_role,
)
from aimc.emit.templating import environment
from aimc.plan.model import Plan
from aimc.plan.request import Request, request_line

__all__ = [
    "FILES",
    "MULTINODE_FILES",
    "SHARED_FILES",
    "check_plan",
    "compile_k8s",
    "k8s_request_line",
    "render_k8s",
    "resources",
]

#: The Kubernetes artifacts, one resource kind each (``manifest.aimc`` besides).
FILES = (
    "deployment.yaml",
    "monitoring/dashboard.yaml",
    "monitoring/podmonitor.yaml",
    "pvc.yaml",
    "service.yaml",
)
#: The Kubernetes artifacts of a multi-node plan.
MULTINODE_FILES = (
    "download.yaml",
    "leaderworkerset.yaml",
    "monitoring/dashboard.yaml",
    "monitoring/podmonitor.yaml",
    "pvc.yaml",
    "service.yaml",
)
#: With replicas (a cache that several pods share), a download Job besides :data:`FILES`.
SHARED_FILES = (
    "deployment.yaml",
    "download.yaml",
    "monitoring/dashboard.yaml",
    "monitoring/podmonitor.yaml",
    "pvc.yaml",
    "service.yaml",
)

_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?\Z")


def check_plan(plan: Plan, replicas: int, emit: str = "k8s") -> None:
    """Refuse a plan that cannot run in a pod (``emit`` names the ``--emit`` that asked, for
    the message): no container image, a local model folder, a host the Service and the
    kubelet's probes cannot reach, a name that is no DNS-1035 label, fewer than 1 replica.

    Raises:
        ConfigError: The plan cannot run in a pod.
    """
    if plan.launcher != "docker" or not plan.image:
        raise ConfigError(
            f"--emit {emit} runs {plan.model_id} in a container, and this plan has none "
            f"(launcher {plan.launcher})",
            hint="use a GPU target with an image, without --launcher process",
        )
    if plan.local_model:
        raise ConfigError(
            f"--emit {emit} cannot mount a local model folder into a pod",
            hint="serve a Hugging Face repo id (the pod downloads it into its cache volume)",
        )
    host = plan.arg("host")
    if host not in (None, "0.0.0.0", "::"):
        raise ConfigError(
            f"--emit {emit}: the server listens on {host}, which the Service and the kubelet's "
            "probes cannot reach",
            hint="drop --set host=... (a pod's server listens on 0.0.0.0)",
        )
    if not _LABEL.match(plan.name):
        raise ConfigError(f"{plan.name!r} is not a Kubernetes name (DNS-1035 label)")
    if replicas < 1:
        raise ConfigError("--replicas must be at least 1")


def _selector(plan: Plan) -> dict[str, str]:
    """The labels that pick the server pods of ``plan`` (the Deployment's, the Service's)."""
    return {"app.kubernetes.io/name": plan.name, "app.kubernetes.io/component": "server"}


def resources(plan: Plan, replicas: int = 1, emit: str = "k8s") -> dict[str, dict[str, Any]]:
    """The Kubernetes resources of ``plan``, by file name (data, before YAML): a
    Deployment for one node (:func:`_single_node`), a LeaderWorkerSet for several
    (:func:`_multinode`); one download per model either way
    (:mod:`aimc.emit.k8s_download`). ``emit``: the ``--emit`` that asked
    (:func:`check_plan`'s messages; the KServe emitter builds on these objects)."""
    check_plan(plan, replicas, emit)
    selector = _selector(plan)
    labels = {**selector, "app.kubernetes.io/managed-by": "aimc"}
    secret_env = [env_entry(plan, var, None) for var, value in container_env(plan) if value is None]
    shared = shares_download(plan, replicas)
    init = [wait_container(plan) if shared else download_container(plan, secret_env)]
    volumes = pod_volumes(plan)
    job = download_job(plan, labels, secret_env, volumes[:1]) if shared else None
    if plan.nodes > 1:
        assert job is not None
        return _multinode(plan, replicas, labels, init, volumes, job)
    return _single_node(plan, replicas, labels, init, volumes, job)


def _service(
    name: str, labels: dict[str, str], selector: dict[str, str], port: int
) -> dict[str, Any]:
    """A ClusterIP Service ``name`` in front of the pods ``selector`` picks."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def _claim(plan: Plan, labels: dict[str, str], access: str) -> dict[str, Any]:
    """The model cache's claim (:func:`aimc.emit.k8s_pod.cache_claim_gib`), ``access`` its mode."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": claim_name(plan), "labels": labels},
        "spec": {
            "accessModes": [access],
            "resources": {"requests": {"storage": f"{cache_claim_gib(plan)}Gi"}},
        },
    }


def _deployment(
    plan: Plan,
    replicas: int,
    labels: dict[str, str],
    init: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
) -> dict[str, Any]:
    """The Deployment of ``replicas`` server pods."""
    if replicas == 1:
        # One pod holds the GPUs and the claim: replace it, never run two at once.
        strategy: dict[str, Any] = {"type": "Recreate"}
    else:
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": plan.name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": _selector(plan)},
            "strategy": strategy,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "initContainers": init,
                    "containers": [server_container(plan, [])],
                    "volumes": volumes,
                },
            },
        },
    }


def _single_node(
    plan: Plan,
    replicas: int,
    labels: dict[str, str],
    init: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
    job: dict[str, Any] | None,
) -> dict[str, dict[str, Any]]:
    """The Deployment, its Service and the model cache (and the download Job when the
    replicas share the cache)."""
    files = {
        "deployment.yaml": _deployment(plan, replicas, labels, init, volumes),
        # Replicas on several nodes share the cache: that needs a ReadWriteMany class.
        "pvc.yaml": _claim(plan, labels, "ReadWriteOnce" if replicas == 1 else "ReadWriteMany"),
        "service.yaml": _service(plan.name, labels, _selector(plan), plan.port),
    }
    if job is not None:
        files["download.yaml"] = job
    return files


def _multinode(
    plan: Plan,
    replicas: int,
    labels: dict[str, str],
    init: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
    job: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """The LeaderWorkerSet, the Service of its leaders and the shared model cache."""
    leader = server_container(plan, leader_args(plan))
    selector = leader_selector(lws_name(plan, replicas))
    return {
        "download.yaml": job,
        "leaderworkerset.yaml": leader_worker_set(plan, replicas, labels, leader, init, volumes),
        # Every pod of a group, each on its own node, mounts the cache.
        "pvc.yaml": _claim(plan, labels, "ReadWriteMany"),
        "service.yaml": _service(leader_service_name(plan), labels, selector, plan.port),
    }


def cluster_extras(
    plan: Plan, replicas: int, autoscale: Autoscale | None
) -> dict[str, dict[str, Any]]:
    """What every ``--emit k8s`` folder adds to the workload: ``monitoring/`` (a PodMonitor
    of the pods that serve the API, a Grafana dashboard: :mod:`aimc.emit.monitoring`) and,
    with ``autoscale``, the ScaledObject or HorizontalPodAutoscaler of the Deployment (the
    LeaderWorkerSet on several nodes: :mod:`aimc.emit.autoscale`)."""
    if plan.nodes > 1:
        kind, name = "LeaderWorkerSet", lws_name(plan, replicas)
        selector = leader_selector(name)
    else:
        kind, name, selector = "Deployment", plan.name, _selector(plan)
    extras = monitoring_resources(plan, selector, {"port": "http"})
    if autoscale is not None:
        labels = {"app.kubernetes.io/name": plan.name, "app.kubernetes.io/managed-by": "aimc"}
        if autoscale.kind == "keda":
            extras["scaledobject.yaml"] = scaled_object(plan, autoscale, kind, name, labels)
        else:
            extras["hpa.yaml"] = hpa(plan, autoscale, kind, name, labels)
            extras[ADAPTER_FILE] = adapter_config_map(plan, labels)
    return extras


def _extra_notes(plan: Plan, autoscale: Autoscale | None) -> dict[str, list[str]]:
    scaled = scaling_notes(plan, autoscale) if autoscale is not None else []
    return {
        "monitoring/podmonitor.yaml": [
            "kubectl apply -f monitoring/   (needs prometheus-operator: PodMonitor)",
            "Scrapes /metrics of every pod that serves the API.",
        ],
        "monitoring/dashboard.yaml": [
            "kubectl apply -f monitoring/   (Grafana's dashboard sidecar loads ConfigMaps"
            " labelled grafana_dashboard)",
        ],
        "scaledobject.yaml": [
            *scaled,
            "Needs KEDA (keda.sh); the queries read the Prometheus"
            " that monitoring/podmonitor.yaml feeds.",
        ],
        "hpa.yaml": [
            *scaled,
            "Needs a metrics adapter that serves the engine's metrics as Pods metrics under"
            f" their own names: {ADAPTER_FILE} holds prometheus-adapter's rules for them.",
        ],
        ADAPTER_FILE: [
            "prometheus-adapter's rules that serve the engine's metrics that hpa.yaml reads,"
            " as Pods metrics under their own names.",
            "The adapter reads one config file: merge these rules into it once per backend"
            " (the Helm chart's rules.custom), or give this config.yaml as its --config.",
            "The series of monitoring/podmonitor.yaml carry the namespace and pod labels the"
            " rules map to pods (docs/kubernetes.md).",
        ],
    }


def render_k8s(
    plan: Plan, line: str, replicas: int = 1, autoscale: Autoscale | None = None
) -> dict[str, str]:
    """The Kubernetes manifests of ``plan`` by file name, ``manifest.aimc`` excluded;
    ``line`` is the request line their headers show (:func:`k8s_request_line`).

    Raises:
        ConfigError: An env name or value of the plan cannot be written (the check
            launch.sh and aim.env make through their templates' ``env_name`` and
            ``env_value`` filters: these manifests are built as data, not by them).
    """
    for name, setting in plan.env.items():
        check_env(name, str(setting.value), "plan")
    env = environment()
    files = {}
    scaling = ""
    if autoscale is not None:
        # The cache and the download are shared as for the most replicas; the workload has no
        # replicas of its own (each apply would reset what the autoscaler set).
        replicas = max(autoscale.max_replicas, 1)
        scaling = f"replicas: {autoscale.min_replicas} to {autoscale.max_replicas}, autoscaled"
    for name, resource in resources(plan, replicas).items():
        if autoscale is not None and name in ("deployment.yaml", "leaderworkerset.yaml"):
            del resource["spec"]["replicas"]
        context = {
            "scaling": scaling,
            "plan": plan,
            "version": __version__,
            "request_line": line,
            "resource": resource,
            "secret": secret_name(plan),
            "passthrough": plan.passthrough_env,
            "hub_passthrough": [v for v in plan.passthrough_env if v.startswith("HF_")],
            "replicas": replicas,
            "nodes": plan.nodes,
            "interconnect": interconnect_note(plan),
            "layout": multinode_layout(plan) if plan.nodes > 1 else "",
            "worker_role": worker_role(plan),
            "worker_args": " ".join(worker_args(plan)),
            "store_port": store_port(plan),
        }
        files[name] = env.get_template(f"k8s/{name}.j2").render(context)
    extras = cluster_extras(plan, replicas, autoscale)
    return dict(
        sorted({**files, **render_files(plan, line, extras, _extra_notes(plan, autoscale))}.items())
    )


def k8s_request_line(line: str, replicas: int) -> str:
    """The ``aim-engine compile`` line with ``--emit k8s`` (and ``--replicas``) added."""
    return line + " --emit k8s" + (f" --replicas {replicas}" if replicas != 1 else "")


def compile_k8s(
    plan: Plan,
    request: Request,
    target: str,
    replicas: int = 1,
    autoscale: Autoscale | None = None,
) -> dict[str, str]:
    """Every Kubernetes artifact of ``plan``, ``manifest.aimc`` included (its inputs as
    :func:`aimc.app.pipeline.compile_plan` writes them, plus ``kubernetes``)."""
    line = k8s_request_line(request_line(request, target), replicas)
    line += autoscale.words() if autoscale is not None else ""
    files = render_k8s(plan, line, replicas, autoscale)
    inputs: dict[str, Any] = {
        "command": line,
        "recipe": plan.recipe,
        "hardware": {k: plan.hardware[k] for k in ("name", "source", "path", "sha256")},
    }
    if request.config is not None:
        inputs["config"] = {"path": request.config.path, "sha256": request.config.sha256}
    inputs["kubernetes"] = {"replicas": replicas}
    if plan.nodes > 1:
        inputs["kubernetes"]["nodes"] = plan.nodes
    if autoscale is not None:
        inputs["kubernetes"]["autoscale"] = autoscale.record(plan)
    files[KUBERNETES_MANIFEST] = manifest(plan, files, inputs)
    return files
