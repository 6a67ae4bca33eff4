"""Kubernetes artifacts (``--emit k8s``): the same :class:`~aimc.plan.Plan` as plain manifests.

Pure, like :mod:`aimc.render`: one resource kind per file (``deployment.yaml``,
``service.yaml``, ``pvc.yaml``) plus ``manifest.aimc`` (aimc's ownership and drift record,
the JSON of the local folders' ``manifest.json`` under a name ``kubectl apply -f DIR``
does not read: :data:`aimc.write.KUBERNETES_MANIFEST`), deterministic, with the provenance
header of the other artifacts. The container is the one ``launch.sh`` runs with ``docker
run``: the same image, the same arguments (:func:`aimc.render.container_args`) and the same
environment (:func:`aimc.render.container_env`); the caller's pass-through variables
(``HF_TOKEN``, ``VLLM_API_KEY``, ...) come from an optional Secret, never from a value.

What the docker path has and a pod does not need: ``--device /dev/kfd /dev/dri``,
``--group-add video`` and ``--gpus`` are what the AMD / NVIDIA device plugins give a pod
that requests ``amd.com/gpu`` / ``nvidia.com/gpu``; ``--ipc host`` and ``--shm-size`` become
a memory-backed ``/dev/shm``; ``seccomp=unconfined`` and ``SYS_PTRACE`` are left out
(:data:`SECURITY_CONTEXT`: AMD's "Running ROCm Docker containers" lists only
``--device /dev/kfd --device /dev/dri`` as needed, ``seccomp=unconfined`` as optional for
NUMA memory mapping, and no ``SYS_PTRACE``, which only debuggers use). Device ids
(:attr:`~aimc.plan.Plan.devices`, ``--devices``) are left out too: the device plugin
chooses a pod's GPUs and numbers them from 0 inside it, so a pod asks for ``total_gpus``
of them and sets no visibility variable (:func:`aimc.render.device_env` is not part of the
pod's environment).

Every container asks for CPU, memory and ephemeral storage besides its GPUs
(:func:`pod_resources`, from the profile's reference node: ``host``), so no pod is
BestEffort (the first evicted); its securityContext (:data:`SECURITY_CONTEXT`) meets the
Pod Security Standards' ``baseline`` level and every ``restricted`` rule but one: the
containers run as the images' user, root (the vLLM and SGLang images are built for it, and
ROCm's device files are ``root:render`` with a ``render`` group id that differs from host
to host, so no portable ``supplementalGroups`` or non-root user reaches them).

One download per model (:func:`download_container`): a single pod downloads in its own
``download`` init container; when several pods share the cache (replicas, a LeaderWorkerSet
group) a Job (``download.yaml``) downloads once and every server pod waits for its mark
(:func:`wait_container`). Every server starts offline (:func:`server_env`).

A multi-node plan (``plan.nodes`` > 1: vLLM tensor parallel within a node and pipeline
parallel across nodes, SGLang tensor parallel across every node's GPUs) is a LeaderWorkerSet
(``leaderworkerset.yaml``, the kubernetes-sigs/lws controller must be installed) instead of
a Deployment: one group of ``nodes`` pods per replica, each pod the same container on its
own node. The leader (node rank 0) serves the API and hosts torch.distributed's store; the
workers join it at ``$(LWS_LEADER_ADDRESS)`` (vLLM ``--master-addr``, SGLang
``--dist-init-addr $(LWS_LEADER_ADDRESS):20000``) with ``--node-rank $(LWS_WORKER_INDEX)``
and serve no API (vLLM ``--headless``; an SGLang rank above 0 runs no tokenizer or API
server): the only ``$(...)`` the kubelet expands (every ``$`` of the plan's own words is
written ``$$``). The Service
(``NAME-leader``, :func:`leader_service_name`) selects the leaders only; it never has a name
the controller gives what it creates (:func:`lws_name`); the model cache is ReadWriteMany
(every pod of a group mounts it).

What the LWS controller does, at kubernetes-sigs/lws commit 060ab4d (the vendored CRD's,
tests/data/lws/SOURCE.md), and what aimc relies on:

- It creates a headless Service named after the LeaderWorkerSet, only if no Service of
  that name exists (pkg/controllers/leaderworkerset_controller.go:215,
  pkg/utils/controller/controller_utils.go:33-51): the pods' subdomain, through which
  ``LWS_LEADER_ADDRESS`` resolves. A Service of aimc's with that name would take its place.
- It names the leader StatefulSet after the LeaderWorkerSet and its pods ``NAME-GROUP``
  (leaderworkerset_controller.go:846), each group's worker StatefulSet after its leader
  pod, and the workers ``NAME-GROUP-INDEX`` from 1 (pkg/controllers/pod_controller.go:436,
  442); with ``subdomainPolicy: UniquePerReplica`` (not used here) one Service
  ``NAME-GROUP`` each (pod_controller.go:125); ControllerRevisions ``NAME-HASH-N``
  (pkg/utils/revision/revision_utils.go:91, 323).
- Its webhook gives every container ``LWS_LEADER_ADDRESS`` =
  ``NAME-GROUP.SUBDOMAIN.NAMESPACE`` (the leader pod's DNS name through the headless
  Service, which publishes not-ready addresses), ``LWS_GROUP_SIZE`` = ``size`` and
  ``LWS_WORKER_INDEX`` = 0 on the leader, 1 .. size-1 on the workers
  (pkg/utils/pod/pod_utils.go:132-179; api/leaderworkerset/v1/leaderworkerset_types.go:67-75).
  aimc uses the first as the head's address (``--master-addr``, SGLang's
  ``--dist-init-addr``) and the last as ``--node-rank``; ``--nnodes`` is the plan's node
  count, which is ``size`` (one node per pod).
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
from typing import Any

from aimc import __version__
from aimc.errors import ConfigError
from aimc.plan import Plan
from aimc.render import (
    CONTAINER_CACHE,
    container_args,
    container_env,
    interconnect_note,
    manifest,
    multinode_layout,
    node_role_args,
    rdma,
    store_port,
    worker_role,
)
from aimc.safety import check_env
from aimc.vendors import vendor
from aimc.write import KUBERNETES_MANIFEST

__all__ = [
    "DEFAULT_SHM",
    "FILES",
    "MULTINODE_FILES",
    "SECURITY_CONTEXT",
    "SHARED_FILES",
    "cache_claim_gib",
    "compile_k8s",
    "download_container",
    "download_job_name",
    "k8s_escape",
    "k8s_name",
    "k8s_request_line",
    "leader_service_name",
    "lws_name",
    "pod_resources",
    "ready_mark",
    "render_k8s",
    "resources",
    "server_env",
    "shares_download",
    "shm_size",
    "startup_budget_s",
    "wait_container",
    "weights_gib",
]

#: The Kubernetes artifacts, one resource kind each (``manifest.aimc`` besides).
FILES = ("deployment.yaml", "pvc.yaml", "service.yaml")
#: The Kubernetes artifacts of a multi-node plan.
MULTINODE_FILES = ("download.yaml", "leaderworkerset.yaml", "pvc.yaml", "service.yaml")
#: With replicas (a cache that several pods share), a download Job besides :data:`FILES`.
SHARED_FILES = ("deployment.yaml", "download.yaml", "pvc.yaml", "service.yaml")
#: The LeaderWorkerSet API, and the labels and variables its controller gives each pod.
LWS_API = "leaderworkerset.x-k8s.io/v1"
LWS_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
LWS_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"
LWS_LEADER_ADDRESS = "$(LWS_LEADER_ADDRESS)"
LWS_WORKER_INDEX = "$(LWS_WORKER_INDEX)"
#: The longest name whose pods a StatefulSet can create: each pod is labelled
#: ``controller-revision-hash: NAME-HASH`` (a hash of up to 10 characters) and a label value
#: has at most 63 (kubernetes/kubernetes#64023).
STATEFULSET_NAME_MAX = 52
#: A DNS-1035 label (a Service's name), a label value, a pod's hostname: at most 63.
LABEL_MAX = 63
#: aimc's Service in front of the leaders: a suffix no controller-made name has.
LEADER_SERVICE_SUFFIX = "-leader"
#: GPU resource name of each hardware vendor's device plugin.
#: ``/dev/shm`` size when the hardware profile gives none (the NVIDIA profiles share the
#: host's IPC namespace under docker instead): what the AMD profiles give docker, enough
#: for NCCL/RCCL's buffers at tensor parallel 8 and vLLM's shared-memory broadcast.
DEFAULT_SHM = "16Gi"
#: The container's security context, the same for every backend and vendor: no privilege
#: escalation (``no_new_privs``), no capability (the server needs none: the device files
#: the device plugin adds belong to root, the user the images run as, and it listens on a
#: port above 1024), the container runtime's default seccomp profile.
SECURITY_CONTEXT: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
#: Per GPU when the profile has no ``host``: a modest node (8 cores, 64 GiB per GPU).
DEFAULT_HOST_PER_GPU = {"cpu_cores": 8, "memory_gib": 64}
#: What a pod requests of its GPUs' share of the reference node: half the cores and a
#: quarter of the memory (room for the system, the node's daemons and nodes smaller than
#: the reference); its memory limit is three quarters. No CPU limit: CFS throttling would
#: stall the engine's busy loops, and idle cores may as well serve it.
CPU_REQUEST_SHARE = 0.5
MEMORY_REQUEST_SHARE = 0.25
MEMORY_LIMIT_SHARE = 0.75
#: The container's writable layer: vLLM's torch.compile and Triton caches under ~/.cache,
#: logs, temporary files (the model is in the claim, /dev/shm in memory).
EPHEMERAL_STORAGE_REQUEST = "50Gi"
#: Startup budget: a floor for starting the engine, compiling and capturing graphs, plus
#: seconds per GiB of weights to read them from the cache (about 125 MB/s, a 1 Gbit/s link
#: to the network storage a ReadWriteMany claim usually is). The download is done before
#: (init containers run before any probe: :func:`download_container`).
STARTUP_FLOOR_S = 600
STARTUP_S_PER_GIB = 8
STARTUP_PERIOD_S = 10
#: The model-cache claim: the weights, 20% for the files beside them, and 20 GiB spare.
CACHE_SPARE_GIB = 20
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

_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?\Z")
_DOCKER_SIZE = re.compile(r"^([0-9]+)([bkmg]?)b?$", re.IGNORECASE)


def k8s_escape(text: str) -> str:
    """``text`` as a Kubernetes env value or argument that reads back as itself.

    The kubelet expands ``$(NAME)`` in ``args`` and ``env`` values (a planned argument
    ``$(HF_TOKEN)`` would become the secret) and reads ``$$`` as ``$``; every ``$``
    doubled reads back as exactly ``text``.
    """
    return text.replace("$", "$$")


def k8s_name(base: str, suffix: str, limit: int) -> str:
    """``base + suffix`` when it has at most ``limit`` characters; else ``base`` cut short,
    ``-`` and 5 hex digits of its sha256 (two long names that share a beginning stay
    apart), then ``suffix``. ``base`` is a DNS-1035 label: so is the result."""
    if len(base) + len(suffix) <= limit:
        return base + suffix
    digest = hashlib.sha256(base.encode()).hexdigest()[:5]
    return base[: limit - len(suffix) - len(digest) - 1].rstrip("-") + f"-{digest}{suffix}"


def lws_name(plan: Plan, replicas: int) -> str:
    """The LeaderWorkerSet's name: ``plan.name``, shortened (:func:`k8s_name`) so that what
    the controller names after it is valid: the worker StatefulSets ``NAME-GROUP`` at most
    :data:`STATEFULSET_NAME_MAX` characters, the worker pods ``NAME-GROUP-INDEX`` at most
    :data:`LABEL_MAX` (e.g. 50 characters for up to 10 replicas of up to 10 nodes)."""
    group = len(str(replicas - 1))
    index = len(str(plan.nodes - 1))
    limit = min(STATEFULSET_NAME_MAX - 1 - group, LABEL_MAX - 2 - group - index)
    return k8s_name(plan.name, "", limit)


def leader_service_name(plan: Plan) -> str:
    """The Service of a LeaderWorkerSet's leaders: ``NAME-leader`` (at most 63
    characters). The controller names its own Services ``NAME`` (the headless one behind
    ``LWS_LEADER_ADDRESS``) or ``NAME-GROUP`` (a number): never with this suffix."""
    return k8s_name(plan.name, LEADER_SERVICE_SUFFIX, LABEL_MAX)


def weights_gib(plan: Plan) -> float:
    """The checkpoint's size: the plan's estimate is per GPU, over ``plan.gpus`` GPUs on
    each of ``plan.nodes`` nodes."""
    return float(plan.estimate.get("weights_gib") or 0) * plan.gpus * plan.nodes


def startup_budget_s(plan: Plan) -> int:
    """Seconds the startup probe waits: ``600 + 8 x GiB of weights``, a whole number of
    probe periods (e.g. 16 GB = 14.9 GiB: 720 s; 800 GB = 745 GiB: 6570 s)."""
    budget = STARTUP_FLOOR_S + STARTUP_S_PER_GIB * weights_gib(plan)
    return math.ceil(budget / STARTUP_PERIOD_S) * STARTUP_PERIOD_S


def shm_size(plan: Plan) -> str:
    """``/dev/shm``'s size limit: the profile's docker ``shm_size`` (``16g`` -> ``16Gi``,
    docker's units are powers of 1024), else :data:`DEFAULT_SHM`."""
    size = plan.container.get("shm_size")
    if not size:
        return DEFAULT_SHM
    match = _DOCKER_SIZE.match(str(size))
    if not match:
        raise ConfigError(f"shm_size {size!r} of {plan.hardware['name']} is not a docker size")
    number, unit = match.groups()
    return number + {"": "", "b": "", "k": "Ki", "m": "Mi", "g": "Gi"}[unit.lower()]


def _mib(quantity: str) -> int:
    """MiB in a quantity :func:`shm_size` gives (``16Gi``, ``512Mi``, ``1024Ki``, bytes),
    rounded up."""
    match = re.fullmatch(r"([0-9]+)(Ki|Mi|Gi)?", quantity)
    if not match:
        raise ConfigError(f"{quantity!r} is not a size")
    number, unit = int(match.group(1)), match.group(2) or ""
    return math.ceil(number * {"": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}[unit] / 2**20)


def _memory(mib: int) -> str:
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def pod_resources(plan: Plan) -> dict[str, dict[str, Any]]:
    """Requests and limits of one pod's container: its GPUs, and of their share of the
    reference node (``host.cpu_cores`` and ``host.memory_gib`` over ``gpus_per_node``;
    :data:`DEFAULT_HOST_PER_GPU` without a ``host``): CPU :data:`CPU_REQUEST_SHARE`,
    memory :data:`MEMORY_REQUEST_SHARE` (limit :data:`MEMORY_LIMIT_SHARE`), each memory
    figure plus ``/dev/shm`` (a memory-backed emptyDir is charged to the container's
    memory), and :data:`EPHEMERAL_STORAGE_REQUEST`. Burstable: a CPU limit would throttle.

    E.g. 8 GPUs of a DGX H100 (112 cores, 2048 GiB): CPU 56, memory 528Gi (limit 1552Gi).
    """
    gpus = plan.total_gpus
    host = plan.hardware.get("host")
    per_node = int(plan.hardware.get("gpus_per_node") or 1)
    if host:
        cores, memory = host["cpu_cores"] / per_node, float(host["memory_gib"]) / per_node
    else:
        cores, memory = DEFAULT_HOST_PER_GPU["cpu_cores"], DEFAULT_HOST_PER_GPU["memory_gib"]
    shm = _mib(shm_size(plan))
    requests: dict[str, Any] = {
        "cpu": str(max(1, math.floor(cores * gpus * CPU_REQUEST_SHARE))),
        "memory": _memory(math.floor(memory * gpus * MEMORY_REQUEST_SHARE) * 1024 + shm),
        "ephemeral-storage": EPHEMERAL_STORAGE_REQUEST,
    }
    limits: dict[str, Any] = {
        "memory": _memory(math.floor(memory * gpus * MEMORY_LIMIT_SHARE) * 1024 + shm),
    }
    gpu = vendor(str(plan.hardware["vendor"])).device_resource
    if gpu:
        requests[gpu] = limits[gpu] = gpus
    found = rdma(plan)
    if found:
        requests[found["resource"]] = limits[found["resource"]] = int(found.get("count", 1))
    return {"requests": requests, "limits": limits}


def security_context(plan: Plan) -> dict[str, Any]:
    """:data:`SECURITY_CONTEXT`, plus ``IPC_LOCK`` for a multi-node plan over RDMA (verbs
    pin the memory they register). IPC_LOCK is beyond the ``baseline`` Pod Security level's
    capabilities: such pods need a namespace at ``privileged``."""
    context = copy.deepcopy(SECURITY_CONTEXT)
    if rdma(plan):
        context["capabilities"]["add"] = ["IPC_LOCK"]
    return context


def server_env(plan: Plan) -> list[tuple[str, str | None]]:
    """A server container's environment: ``docker run``'s (:func:`aimc.render.container_env`)
    with ``HF_HUB_OFFLINE=1`` in place of the caller's. One download per model: the server
    reads the complete snapshot the download step left in the cache and asks the Hub
    nothing (with HF_HUB_OFFLINE vLLM maps the repo id to the cached snapshot:
    vllm/engine/arg_utils.py:908; SGLang's loader and transformers read it too)."""
    env = [(name, value) for name, value in container_env(plan) if name != "HF_HUB_OFFLINE"]
    return [*env, ("HF_HUB_OFFLINE", "1")]


def ready_mark(plan: Plan) -> str:
    """The file the download step writes once the snapshot is complete: under
    :data:`READY_DIR`, named by 16 hex digits of the sha256 of ``MODEL@REVISION`` (no
    character of a repository id reaches a path)."""
    key = f"{plan.model_id}@{plan.model_revision or 'main'}"
    return f"{READY_DIR}/{hashlib.sha256(key.encode()).hexdigest()[:16]}"


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


def cache_claim_gib(plan: Plan) -> int:
    """The model cache's size: ``ceil(1.2 x GiB of weights) + 20``."""
    return math.ceil(weights_gib(plan) * 1.2) + CACHE_SPARE_GIB


def _check(plan: Plan, replicas: int) -> None:
    if plan.launcher != "docker" or not plan.image:
        raise ConfigError(
            f"--emit k8s runs {plan.model_id} in a container, and this plan has none "
            f"(launcher {plan.launcher})",
            hint="use a GPU target with an image, without --launcher process",
        )
    if plan.local_model:
        raise ConfigError(
            "--emit k8s cannot mount a local model folder into a pod",
            hint="serve a Hugging Face repo id (the pod downloads it into its cache volume)",
        )
    host = plan.arg("host")
    if host not in (None, "0.0.0.0", "::"):
        raise ConfigError(
            f"--emit k8s: the server listens on {host}, which the Service and the kubelet's "
            "probes cannot reach",
            hint="drop --set host=... (a pod's server listens on 0.0.0.0)",
        )
    if not _LABEL.match(plan.name):
        raise ConfigError(f"{plan.name!r} is not a Kubernetes name (DNS-1035 label)")
    if replicas < 1:
        raise ConfigError("--replicas must be at least 1")


def resources(plan: Plan, replicas: int = 1) -> dict[str, dict[str, Any]]:
    """The Kubernetes resources of ``plan``, by file name (data, before YAML)."""
    _check(plan, replicas)
    name = plan.name
    selector = {"app.kubernetes.io/name": name, "app.kubernetes.io/component": "server"}
    labels = {**selector, "app.kubernetes.io/managed-by": "aimc"}
    secret = f"{name}-secrets"
    claim = f"{name}-model-cache"

    def entry(var: str, value: str | None) -> dict[str, Any]:
        if value is None:
            ref = {"name": secret, "key": var, "optional": True}
            return {"name": var, "valueFrom": {"secretKeyRef": ref}}
        return {"name": var, "value": k8s_escape(value)}

    env = [entry(var, value) for var, value in server_env(plan)]
    secret_env = [entry(var, None) for var, value in container_env(plan) if value is None]
    shared = shares_download(plan, replicas)
    init = [wait_container(plan) if shared else download_container(plan, secret_env)]

    def probe(period: int, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": plan.health_path, "port": "http"},
            "periodSeconds": period,
            "timeoutSeconds": 5,
            "failureThreshold": failures,
        }

    args = [k8s_escape(word) for word in container_args(plan)]
    if plan.nodes > 1:
        args += node_role_args(plan, "0", LWS_LEADER_ADDRESS)
    container: dict[str, Any] = {
        "name": "server",
        "image": plan.image,
        "args": args,
        "env": env,
        "ports": [{"name": "http", "containerPort": plan.port, "protocol": "TCP"}],
    }
    container["resources"] = pod_resources(plan)
    container["securityContext"] = security_context(plan)
    container["volumeMounts"] = [
        {"name": "model-cache", "mountPath": CONTAINER_CACHE},
        {"name": "dshm", "mountPath": "/dev/shm"},
    ]
    # A worker: the same container without the API server (no port, no probes).
    worker = {k: v for k, v in container.items() if k != "ports"}
    worker["name"] = "worker"
    worker["args"] = [
        *(k8s_escape(word) for word in container_args(plan)),
        *node_role_args(plan, LWS_WORKER_INDEX, LWS_LEADER_ADDRESS),
    ]
    # /health answers 200 once the engine is up, without the API key; /v1/models needs
    # VLLM_API_KEY when one is set, and its 200 is a list to read, not a health verdict.
    container["startupProbe"] = probe(STARTUP_PERIOD_S, startup_budget_s(plan) // STARTUP_PERIOD_S)
    container["readinessProbe"] = probe(5, 3)
    container["livenessProbe"] = probe(10, 6)
    if replicas == 1:
        # One pod holds the GPUs and the claim: replace it, never run two at once.
        strategy: dict[str, Any] = {"type": "Recreate"}
    else:
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    shm = {"medium": "Memory", "sizeLimit": shm_size(plan)}
    volumes = [
        {"name": "model-cache", "persistentVolumeClaim": {"claimName": claim}},
        {"name": "dshm", "emptyDir": shm},
    ]
    job = _download_job(plan, labels, secret_env, volumes[:1]) if shared else None
    if plan.nodes > 1:
        assert job is not None
        return _multinode(plan, replicas, labels, container, worker, init, volumes, claim, job)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "strategy": strategy,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "initContainers": init,
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": plan.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": claim, "labels": labels},
        "spec": {
            # Replicas on several nodes share the cache: that needs a ReadWriteMany class.
            "accessModes": ["ReadWriteOnce" if replicas == 1 else "ReadWriteMany"],
            "resources": {"requests": {"storage": f"{cache_claim_gib(plan)}Gi"}},
        },
    }
    files = {"deployment.yaml": deployment, "pvc.yaml": pvc, "service.yaml": service}
    if job is not None:
        files["download.yaml"] = job
    return files


def _download_job(
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


def _multinode(
    plan: Plan,
    replicas: int,
    labels: dict[str, str],
    leader: dict[str, Any],
    worker: dict[str, Any],
    init: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
    claim: str,
    job: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """The LeaderWorkerSet, the Service of its leaders and the shared model cache."""
    name = lws_name(plan, replicas)
    lws = {
        "apiVersion": LWS_API,
        "kind": "LeaderWorkerSet",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            # LeaderCreated: the workers start as soon as the leader pod exists. With
            # LeaderReady the controller would create them once the leader is Ready
            # (pod_controller.go:143), and the leader's /health answers only when every
            # pipeline stage has joined: the group would never start.
            "startupPolicy": "LeaderCreated",
            "leaderWorkerTemplate": {
                "size": plan.nodes,
                # A torch.distributed group does not take a restarted rank back: when any
                # container of a group restarts, the controller recreates every pod of the
                # group (the default, and the LWS vLLM and SGLang examples' choice).
                # RecreateGroupAfterStart would not while a pod of the group is Pending,
                # leaving a restarted stage to wait for a group that is gone.
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": {
                    "metadata": {"labels": labels},
                    "spec": {"initContainers": init, "containers": [leader], "volumes": volumes},
                },
                # No probe on a worker: a headless vLLM (--headless, api_server_count 0:
                # vllm/entrypoints/cli/serve.py:69-76) serves no HTTP, and a process that
                # runs says nothing of the weights (an SGLang rank above 0 answers /health
                # with a stand-in server that says only that its own ranks started). The
                # leader's /health answers only once every node has loaded its weights and
                # joined, so the leader's startup probe is the group's budget: when it runs
                # out the leader restarts, and RecreateGroupOnPodRestart recreates every
                # pod of the group.
                "workerTemplate": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "initContainers": copy.deepcopy(init),
                        "containers": [worker],
                        "volumes": volumes,
                    },
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": leader_service_name(plan), "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "selector": {LWS_NAME_LABEL: name, LWS_INDEX_LABEL: "0"},
            "ports": [{"name": "http", "port": plan.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": claim, "labels": labels},
        "spec": {
            # Every pod of a group, each on its own node, mounts the cache.
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": f"{cache_claim_gib(plan)}Gi"}},
        },
    }
    return {
        "download.yaml": job,
        "leaderworkerset.yaml": lws,
        "pvc.yaml": pvc,
        "service.yaml": service,
    }


def render_k8s(plan: Plan, request_line: str, replicas: int = 1) -> dict[str, str]:
    """The Kubernetes manifests of ``plan`` by file name, ``manifest.aimc`` excluded.

    Raises:
        ConfigError: An env name or value of the plan cannot be written (the check
            launch.sh and aim.env make through their templates' ``env_name`` and
            ``env_value`` filters: these manifests are built as data, not by them).
    """
    from aimc.templating import environment

    for name, setting in plan.env.items():
        check_env(name, str(setting.value), "plan")
    env = environment()
    files = {}
    for name, resource in resources(plan, replicas).items():
        context = {
            "plan": plan,
            "version": __version__,
            "request_line": request_line,
            "resource": resource,
            "secret": f"{plan.name}-secrets",
            "passthrough": plan.passthrough_env,
            "hub_passthrough": [v for v in plan.passthrough_env if v.startswith("HF_")],
            "replicas": replicas,
            "nodes": plan.nodes,
            "interconnect": interconnect_note(plan),
            "layout": multinode_layout(plan) if plan.nodes > 1 else "",
            "worker_role": worker_role(plan),
            "worker_args": " ".join(node_role_args(plan, LWS_WORKER_INDEX, LWS_LEADER_ADDRESS)),
            "store_port": store_port(plan),
        }
        files[name] = env.get_template(f"k8s/{name}.j2").render(context)
    return files


def k8s_request_line(line: str, replicas: int) -> str:
    """The ``aim-engine compile`` line with ``--emit k8s`` (and ``--replicas``) added."""
    return line + " --emit k8s" + (f" --replicas {replicas}" if replicas != 1 else "")


def compile_k8s(plan: Plan, request: Any, target: str, replicas: int = 1) -> dict[str, str]:
    """Every Kubernetes artifact of ``plan``, ``manifest.aimc`` included (its inputs as
    :func:`aimc.build.compile_plan` writes them, plus ``kubernetes``)."""
    from aimc.request import request_line

    line = k8s_request_line(request_line(request, target), replicas)
    files = render_k8s(plan, line, replicas)
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
    files[KUBERNETES_MANIFEST] = manifest(plan, files, inputs)
    return files
