"""KServe artifacts (``--emit kserve``): the plan as an ``LLMInferenceService``.

Written against ``serving.kserve.io/v1alpha1`` of KServe v0.20.0 (kserve/kserve commit
1fb7810, the vendored CRD: tests/data/kserve/SOURCE.md), which v0.17 and later take (they
store v1alpha2 and convert; v0.16's v1alpha1 has no ``storageInitializer`` or
``annotations``). The pod is the one ``--emit k8s`` builds (:func:`aimc.emit.k8s.resources`:
the same image, arguments, environment, resources, security and probes, and one download
per model into the claim in ``pvc.yaml``, with the Job in ``download.yaml`` when several
pods share it). What KServe's controller does with it
(``pkg/controller/v1alpha2/llmisvc`` at that commit), and what this module does about it:

- It merges a preset under the service (``config_merge.go``: a strategic merge, the
  service's own fields last): ``kserve-config-llm-template`` for one node, whose container
  ``main`` starts llm-d's CUDA vLLM image with a bash script. So the server container is
  named ``main`` and sets its image, ``command`` (:data:`IMAGE_ENTRYPOINTS`: the image's
  entrypoint, which the preset's command would replace) and ``args``; its probes name their
  scheme (the preset's is HTTPS when the cluster enables TLS); ``runAsNonRoot: false`` (the
  preset's ``true`` refuses the vLLM and SGLang images, which run as root); the cache volume
  is ``aimc-model-cache`` (the preset has an emptyDir ``model-cache``: one volume with two
  sources would be invalid); ``serving.kserve.io/model-based-routing-enabled: "false"``
  (the preset's ``true`` routes a second served name that this server does not serve).
  What else the preset brings stays: an emptyDir at ``/home``, ``/tmp`` and ``/models``,
  ``HOME=/home``, ``VLLM_LOGGING_LEVEL=INFO``, a 15 s preStop sleep, the TLS secret volume.
- ``storageInitializer.enabled: false``: KServe's own download into ``/mnt/models`` is off;
  aimc's download fills the claim and the server starts offline, as with ``--emit k8s``.
- Its workload Service sends port 8000 to port 8000 (``workload.go``: KServe does not
  support another port): a plan on another port is refused.
- A multi-node plan is ``worker`` (the pods of rank above 0) and ``parallelism`` (``tensor``
  GPUs per node, ``pipeline`` = nodes): the controller makes a LeaderWorkerSet of
  ``parallelism.pipeline`` pods per group (``GetSize``), named ``NAME-kserve-mn``
  (``workload_multi_node.go``): the service's name is shortened so that the LeaderWorkerSet's
  own names stay valid (:func:`service_name`). Its validation requires pipeline or data
  parallelism with a worker, so a backend that spans nodes as one tensor-parallel group
  (SGLang) is refused on several nodes. A pipeline-parallel service merges the preset
  ``kserve-config-llm-worker-pipeline-parallel``, which KServe v0.20 names but does not ship
  (the reconcile stops at ``ConfigNotFound``): ``llminferenceserviceconfig.yaml`` is an empty
  one (:data:`PIPELINE_PRESET`), looked up in the service's namespace first.
- No ``router``: the CRD does not need one; KServe then serves the workload Service only
  (no Gateway, HTTPRoute or llm-d scheduler, whose tokenizer reads KServe's own download).
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import quote

from aimc.backends import BACKENDS
from aimc.core.errors import ConfigError
from aimc.emit.autoscale import Autoscale, kserve_scaling
from aimc.emit.cluster import emit_request_line, folder, render_files
from aimc.emit.k8s import check_plan, resources
from aimc.emit.k8s_lws import lws_name_limit
from aimc.emit.k8s_pod import LABEL_MAX, k8s_name, secret_name
from aimc.emit.monitoring import monitoring_resources
from aimc.plan.model import Plan
from aimc.plan.request import Request

__all__ = [
    "CACHE_VOLUME",
    "FILES",
    "IMAGE_ENTRYPOINTS",
    "KSERVE_API",
    "KSERVE_PORT",
    "MULTINODE_FILES",
    "PIPELINE_PRESET",
    "SHARED_FILES",
    "compile_kserve",
    "kserve_resources",
    "render_kserve",
    "service_name",
]

KSERVE_API = "serving.kserve.io/v1alpha1"
#: The port KServe's workload Service sends to (``workload.go``: 8000 -> 8000).
KSERVE_PORT = 8000
#: The image's own entrypoint, by backend, for a plan whose command is empty (the
#: container's ``command`` replaces the preset's): ``vllm serve`` in the vLLM images
#: (:mod:`aimc.backends.vllm`). SGLang's images have none: its command is the plan's.
IMAGE_ENTRYPOINTS: dict[str, tuple[str, ...]] = {"vllm": ("vllm", "serve")}
#: The preset a pipeline-parallel multi-node service merges (``config_merge.go``: the
#: default prefix ``kserve-`` and ``config-llm-worker-pipeline-parallel``).
PIPELINE_PRESET = "kserve-config-llm-worker-pipeline-parallel"
#: The suffix of the LeaderWorkerSet the controller names after the service.
LWS_SUFFIX = "-kserve-mn"
#: The model cache's volume (``model-cache`` is the preset's emptyDir).
CACHE_VOLUME = "aimc-model-cache"
ROUTING_ANNOTATION = "serving.kserve.io/model-based-routing-enabled"

FILES = (
    "llminferenceservice.yaml",
    "monitoring/dashboard.yaml",
    "monitoring/podmonitor.yaml",
    "pvc.yaml",
)
SHARED_FILES = (
    "download.yaml",
    "llminferenceservice.yaml",
    "monitoring/dashboard.yaml",
    "monitoring/podmonitor.yaml",
    "pvc.yaml",
)
MULTINODE_FILES = (
    "download.yaml",
    "llminferenceservice.yaml",
    "llminferenceserviceconfig.yaml",
    "monitoring/dashboard.yaml",
    "monitoring/podmonitor.yaml",
    "pvc.yaml",
)


def _check(plan: Plan, replicas: int) -> None:
    check_plan(plan, replicas, "kserve")
    if plan.port != KSERVE_PORT:
        raise ConfigError(
            f"--emit kserve: KServe's workload Service sends port {KSERVE_PORT} to port "
            f"{KSERVE_PORT}, and this server listens on {plan.port}",
            hint=f"drop --port / --set port=... (KServe serves on {KSERVE_PORT})",
        )
    if plan.nodes > 1 and BACKENDS[plan.backend].multinode != "pipeline":
        raise ConfigError(
            f"--emit kserve: {plan.backend} spans {plan.nodes} nodes as one tensor-parallel "
            "group, and KServe's LLMInferenceService runs several nodes only for pipeline or "
            "data parallelism",
            hint="--emit k8s runs it as a LeaderWorkerSet",
        )
    if not plan.command and plan.backend not in IMAGE_ENTRYPOINTS:
        raise ConfigError(f"--emit kserve: the entrypoint of {plan.image} is not known")


def service_name(plan: Plan, replicas: int) -> str:
    """The LLMInferenceService's name: ``plan.name``; on several nodes shortened (with 5 hex
    digits of its hash) so that ``NAME-kserve-mn``, the LeaderWorkerSet, is within
    :func:`aimc.emit.k8s_lws.lws_name_limit`."""
    if plan.nodes == 1:
        return plan.name
    return k8s_name(plan.name, "", lws_name_limit(plan, replicas) - len(LWS_SUFFIX))


def _main(plan: Plan, container: dict[str, Any]) -> dict[str, Any]:
    """``--emit k8s``'s server (or worker) container as KServe's ``main``: the command split
    off its arguments, probes over HTTP, ``runAsNonRoot: false``."""
    args = container["args"]
    own = len(plan.command)
    main = {
        "name": "main",
        "image": container["image"],
        "command": [*IMAGE_ENTRYPOINTS.get(plan.backend, ()), *args[:own]],
        "args": args[own:],
    }
    main.update({k: v for k, v in container.items() if k not in ("name", "image", "args")})
    main["securityContext"] = {**container["securityContext"], "runAsNonRoot": False}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if probe in main:
            main[probe]["httpGet"]["scheme"] = "HTTP"
    return main


def _pod(plan: Plan, spec: dict[str, Any]) -> dict[str, Any]:
    """A pod spec of ``--emit k8s`` as a KServe template: its one container as
    :func:`_main`, the cache volume renamed :data:`CACHE_VOLUME` everywhere."""
    pod = copy.deepcopy(spec)
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        for mount in container.get("volumeMounts", []):
            if mount["name"] == "model-cache":
                mount["name"] = CACHE_VOLUME
    for volume in pod["volumes"]:
        if volume["name"] == "model-cache":
            volume["name"] = CACHE_VOLUME
    (container,) = pod["containers"]
    pod["containers"] = [_main(plan, container)]
    return pod


def _service(plan: Plan, replicas: int, pods: dict[str, Any]) -> dict[str, Any]:
    """The LLMInferenceService: the model, ``replicas``, ``parallelism``, the pods."""
    parallelism: dict[str, Any] = {"tensor": plan.gpus}
    if plan.nodes > 1:
        parallelism["pipeline"] = plan.nodes
    spec: dict[str, Any] = {
        "model": {"uri": "hf://" + quote(plan.model_id, safe="/"), "name": plan.served_model_name},
        "storageInitializer": {"enabled": False},
        "replicas": replicas,
        "parallelism": parallelism,
        "annotations": {ROUTING_ANNOTATION: "false"},
        **pods,
    }
    labels = {"app.kubernetes.io/name": plan.name, "app.kubernetes.io/managed-by": "aimc"}
    return {
        "apiVersion": KSERVE_API,
        "kind": "LLMInferenceService",
        "metadata": {"name": service_name(plan, replicas), "labels": labels},
        "spec": spec,
    }


def kserve_resources(
    plan: Plan, replicas: int = 1, autoscale: Autoscale | None = None
) -> dict[str, dict[str, Any]]:
    """The resources of ``plan`` for KServe, by file name (data, before YAML): with
    ``autoscale``, KServe's own ``spec.scaling`` instead of ``replicas``
    (:func:`aimc.emit.autoscale.kserve_scaling`); ``monitoring/`` always."""
    _check(plan, replicas)
    scaling = kserve_scaling(autoscale) if autoscale is not None else None
    if autoscale is not None:
        replicas = autoscale.max_replicas  # the cache and the download, shared as for the most
    base = resources(plan, replicas, "kserve")
    if plan.nodes > 1:
        group = base["leaderworkerset.yaml"]["spec"]["leaderWorkerTemplate"]
        pods = {
            "template": _pod(plan, group["leaderTemplate"]["spec"]),
            "worker": _pod(plan, group["workerTemplate"]["spec"]),
        }
    else:
        pods = {"template": _pod(plan, base["deployment.yaml"]["spec"]["template"]["spec"])}
    service = _service(plan, replicas, pods)
    if scaling is not None:
        del service["spec"]["replicas"]  # the CRD: replicas and scaling are exclusive
        service["spec"]["scaling"] = scaling
    # KServe labels its workload pods as its Service selects them (kserve.py's _workload_url).
    selector = {
        "app.kubernetes.io/name": service["metadata"]["name"],
        "app.kubernetes.io/part-of": "llminferenceservice",
    }
    files = {
        "llminferenceservice.yaml": service,
        "pvc.yaml": base["pvc.yaml"],
        **monitoring_resources(plan, selector, {"port": "http"}),
    }
    if "download.yaml" in base:
        files["download.yaml"] = base["download.yaml"]
    if plan.nodes > 1:
        files["llminferenceserviceconfig.yaml"] = {
            "apiVersion": KSERVE_API,
            "kind": "LLMInferenceServiceConfig",
            "metadata": {
                "name": PIPELINE_PRESET,
                "labels": {"app.kubernetes.io/managed-by": "aimc"},
            },
            "spec": {},
        }
    return dict(sorted(files.items()))


def _workload_url(service: str) -> str:
    """Where KServe's workload Service answers, in words (``kmeta.ChildName`` hashes a name
    over 63 characters: then the Service is found by its labels)."""
    svc = service + "-kserve-workload-svc"
    if len(svc) <= LABEL_MAX:
        return f"http://{svc}:{KSERVE_PORT}/v1"
    labels = f"app.kubernetes.io/name={service},app.kubernetes.io/part-of=llminferenceservice"
    return f"the Service of kubectl get svc -l {labels}, port {KSERVE_PORT}"


def _notes(plan: Plan, replicas: int, names: list[str]) -> dict[str, list[str]]:
    others = " and ".join(
        n for n in names if n != "llminferenceservice.yaml" and not n.startswith("monitoring/")
    )
    secret = secret_name(plan)
    service = service_name(plan, replicas)
    notes = [
        f"kubectl apply -f .   (with {others}; needs KServe's LLMInferenceService controller,"
        " v0.17 or later)",
        f"KServe serves it at {_workload_url(service)} (no router: add spec.router for a Gateway).",
        "aimc's download fills the model cache (pvc.yaml); the server then starts offline"
        " (HF_HUB_OFFLINE=1).",
        f"{', '.join(plan.passthrough_env)} come from the optional Secret {secret} (one key"
        " each), never from a value:",
        f"  kubectl create secret generic {secret} --from-literal=HF_TOKEN=...",
        'Every "$" in args and env is written "$$": the kubelet would expand "$(NAME)".',
    ]
    if plan.nodes > 1:
        notes.insert(
            3,
            f"{plan.nodes} pods per replica (KServe's LeaderWorkerSet {service}{LWS_SUFFIX}):"
            " the leader serves the API, the workers join it.",
        )
    config = [
        f"The preset KServe merges into a pipeline-parallel service ({PIPELINE_PRESET}),"
        " which KServe v0.20 does not ship:",
        "empty, so the LLMInferenceService's own pods are used as they are (one per"
        " namespace, shared).",
    ]
    return {"llminferenceservice.yaml": notes, "llminferenceserviceconfig.yaml": config}


def render_kserve(
    plan: Plan, line: str, replicas: int = 1, autoscale: Autoscale | None = None
) -> dict[str, str]:
    """The KServe files of ``plan`` by name, ``manifest.aimc`` excluded; ``line`` is the
    command their headers show."""
    data = kserve_resources(plan, replicas, autoscale)
    return render_files(plan, line, data, _notes(plan, replicas, list(data)))


def kserve_line(
    request: Request, target: str, replicas: int, autoscale: Autoscale | None = None
) -> str:
    """The ``aim-engine compile`` line of a KServe folder."""
    return emit_request_line(request, target, "kserve", replicas, autoscale)


def compile_kserve(
    plan: Plan,
    request: Request,
    target: str,
    replicas: int = 1,
    autoscale: Autoscale | None = None,
) -> dict[str, str]:
    """Every file of ``--emit kserve``, ``manifest.aimc`` included."""
    line = kserve_line(request, target, replicas, autoscale)
    kubernetes: dict[str, Any] = {"emit": "kserve", "replicas": replicas}
    if plan.nodes > 1:
        kubernetes["nodes"] = plan.nodes
    if autoscale is not None:
        kubernetes["autoscale"] = autoscale.record()
    files = render_kserve(plan, line, replicas, autoscale)
    return folder(plan, request, line, files, kubernetes)
