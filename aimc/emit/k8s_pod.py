"""The server pod of ``--emit k8s``: its names, container, resources, security and volumes.

Pure data (dicts before YAML) from one :class:`~aimc.plan.model.Plan`. The container is the one
``launch.sh`` runs with ``docker run``: the same image, the same arguments
(:func:`aimc.emit.render.container_args`) and the same environment
(:func:`aimc.emit.render.container_env`); the caller's pass-through variables (``HF_TOKEN``,
``VLLM_API_KEY``, ...) come from an optional Secret, never from a value
(:func:`env_entry`).

What the docker path has and a pod does not need: ``--device /dev/kfd /dev/dri``,
``--group-add video`` and ``--gpus`` are what the AMD / NVIDIA device plugins give a pod
that requests ``amd.com/gpu`` / ``nvidia.com/gpu`` (the vendor's
:attr:`~aimc.vendors.Vendor.device_resource`); ``--ipc host`` and ``--shm-size`` become
a memory-backed ``/dev/shm``; ``seccomp=unconfined`` and ``SYS_PTRACE`` are left out
(:data:`SECURITY_CONTEXT`: AMD's "Running ROCm Docker containers" lists only
``--device /dev/kfd --device /dev/dri`` as needed, ``seccomp=unconfined`` as optional for
NUMA memory mapping, and no ``SYS_PTRACE``, which only debuggers use). Device ids
(:attr:`~aimc.plan.model.Plan.devices`, ``--devices``) are left out too: the device plugin
chooses a pod's GPUs and numbers them from 0 inside it, so a pod asks for ``total_gpus``
of them and sets no visibility variable (:func:`aimc.emit.render.device_env` is not part of the
pod's environment).

Every container asks for CPU, memory and ephemeral storage besides its GPUs
(:func:`pod_resources`, from the profile's reference node: ``host``), so no pod is
BestEffort (the first evicted); its securityContext (:data:`SECURITY_CONTEXT`) meets the
Pod Security Standards' ``baseline`` level and every ``restricted`` rule but one: the
containers run as the images' user, root (the vLLM and SGLang images are built for it, and
ROCm's device files are ``root:render`` with a ``render`` group id that differs from host
to host, so no portable ``supplementalGroups`` or non-root user reaches them). Every
server starts offline (:func:`server_env`): the model is downloaded before it starts
(:mod:`aimc.emit.k8s_download`).
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

from aimc.core.digest import sha256
from aimc.core.errors import ConfigError
from aimc.emit.render import CONTAINER_CACHE, container_args, container_env, rdma
from aimc.plan.model import Plan
from aimc.vendors import vendor

__all__ = [
    "DEFAULT_SHM",
    "LABEL_MAX",
    "SECURITY_CONTEXT",
    "STARTUP_PERIOD_S",
    "cache_claim_gib",
    "claim_name",
    "env_entry",
    "k8s_escape",
    "k8s_name",
    "pod_resources",
    "pod_volumes",
    "secret_name",
    "security_context",
    "server_container",
    "server_env",
    "shm_size",
    "startup_budget_s",
    "weights_gib",
]

#: A DNS-1035 label (a Service's name), a label value, a pod's hostname: at most 63.
LABEL_MAX = 63
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
#: (init containers run before any probe: :func:`aimc.emit.k8s_download.download_container`).
STARTUP_FLOOR_S = 600
STARTUP_S_PER_GIB = 8
STARTUP_PERIOD_S = 10
#: The model-cache claim: the weights, 20% for the files beside them, and 20 GiB spare.
CACHE_SPARE_GIB = 20

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
    digest = sha256(base.encode()).hexdigest()[:5]
    return base[: limit - len(suffix) - len(digest) - 1].rstrip("-") + f"-{digest}{suffix}"


def secret_name(plan: Plan) -> str:
    """The optional Secret the caller's pass-through variables come from."""
    return f"{plan.name}-secrets"


def claim_name(plan: Plan) -> str:
    """The model cache's PersistentVolumeClaim."""
    return f"{plan.name}-model-cache"


def weights_gib(plan: Plan) -> float:
    """The checkpoint's size: the plan's estimate is per GPU, over ``plan.gpus`` GPUs on
    each of ``plan.nodes`` nodes."""
    return float(plan.estimate.get("weights_gib") or 0) * plan.gpus * plan.nodes


def startup_budget_s(plan: Plan) -> int:
    """Seconds the startup probe waits: ``600 + 8 x GiB of weights``, a whole number of
    probe periods (e.g. 16 GB = 14.9 GiB: 720 s; 800 GB = 745 GiB: 6570 s)."""
    budget = STARTUP_FLOOR_S + STARTUP_S_PER_GIB * weights_gib(plan)
    return math.ceil(budget / STARTUP_PERIOD_S) * STARTUP_PERIOD_S


def cache_claim_gib(plan: Plan) -> int:
    """The model cache's size: ``ceil(1.2 x GiB of weights) + 20``."""
    return math.ceil(weights_gib(plan) * 1.2) + CACHE_SPARE_GIB


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
    """A server container's environment: ``docker run``'s (:func:`aimc.emit.render.container_env`)
    with ``HF_HUB_OFFLINE=1`` in place of the caller's. One download per model: the server
    reads the complete snapshot the download step left in the cache and asks the Hub
    nothing (with HF_HUB_OFFLINE vLLM maps the repo id to the cached snapshot:
    vllm/engine/arg_utils.py:908; SGLang's loader and transformers read it too)."""
    env = [(name, value) for name, value in container_env(plan) if name != "HF_HUB_OFFLINE"]
    return [*env, ("HF_HUB_OFFLINE", "1")]


def env_entry(plan: Plan, var: str, value: str | None) -> dict[str, Any]:
    """One variable of a container's ``env``: ``value`` (each ``$`` doubled), or with no
    value (a pass-through secret) a reference to the optional Secret's key ``var``."""
    if value is None:
        ref = {"name": secret_name(plan), "key": var, "optional": True}
        return {"name": var, "valueFrom": {"secretKeyRef": ref}}
    return {"name": var, "value": k8s_escape(value)}


def _probe(plan: Plan, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": plan.health_path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def server_container(plan: Plan, role_args: list[str]) -> dict[str, Any]:
    """The container that serves the API: ``docker run``'s image, arguments (each ``$``
    doubled) and then ``role_args`` as they are (a multi-node leader's, whose ``$(...)`` the
    kubelet expands), the offline environment, the port, resources, security, the cache
    and ``/dev/shm`` mounts, and its startup, readiness and liveness probes."""
    container: dict[str, Any] = {
        "name": "server",
        "image": plan.image,
        "args": [*(k8s_escape(word) for word in container_args(plan)), *role_args],
        "env": [env_entry(plan, var, value) for var, value in server_env(plan)],
        "ports": [{"name": "http", "containerPort": plan.port, "protocol": "TCP"}],
        "resources": pod_resources(plan),
        "securityContext": security_context(plan),
        "volumeMounts": [
            {"name": "model-cache", "mountPath": CONTAINER_CACHE},
            {"name": "dshm", "mountPath": "/dev/shm"},
        ],
    }
    # /health answers 200 once the engine is up, without the API key; /v1/models needs
    # VLLM_API_KEY when one is set, and its 200 is a list to read, not a health verdict.
    container["startupProbe"] = _probe(
        plan, STARTUP_PERIOD_S, startup_budget_s(plan) // STARTUP_PERIOD_S
    )
    container["readinessProbe"] = _probe(plan, 5, 3)
    container["livenessProbe"] = _probe(plan, 10, 6)
    return container


def pod_volumes(plan: Plan) -> list[dict[str, Any]]:
    """A server pod's volumes: the model cache's claim, then the memory-backed
    ``/dev/shm`` (:func:`shm_size`)."""
    shm = {"medium": "Memory", "sizeLimit": shm_size(plan)}
    return [
        {"name": "model-cache", "persistentVolumeClaim": {"claimName": claim_name(plan)}},
        {"name": "dshm", "emptyDir": shm},
    ]
