"""A multi-node plan for ``--emit k8s``: the LeaderWorkerSet, its names and its pods' roles.

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
(``NAME-leader``, :func:`leader_service_name`) selects the leaders only
(:func:`leader_selector`); it never has a name the controller gives what it creates
(:func:`lws_name`); the model cache is ReadWriteMany (every pod of a group mounts it).

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
from typing import Any

from aimc.emit.k8s_pod import LABEL_MAX, k8s_escape, k8s_name
from aimc.emit.render import container_args, node_role_args
from aimc.plan.model import Plan

__all__ = [
    "LWS_API",
    "STATEFULSET_NAME_MAX",
    "leader_args",
    "leader_selector",
    "leader_service_name",
    "leader_worker_set",
    "lws_name",
    "lws_name_limit",
    "worker_args",
    "worker_container",
]

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
#: aimc's Service in front of the leaders: a suffix no controller-made name has.
LEADER_SERVICE_SUFFIX = "-leader"


def lws_name_limit(plan: Plan, replicas: int) -> int:
    """The longest LeaderWorkerSet name whose controller-made names are valid: the worker
    StatefulSets ``NAME-GROUP`` at most :data:`STATEFULSET_NAME_MAX` characters, the worker
    pods ``NAME-GROUP-INDEX`` at most :data:`~aimc.emit.k8s_pod.LABEL_MAX` (e.g. 50
    characters for up to 10 replicas of up to 10 nodes)."""
    group = len(str(replicas - 1))
    index = len(str(plan.nodes - 1))
    return min(STATEFULSET_NAME_MAX - 1 - group, LABEL_MAX - 2 - group - index)


def lws_name(plan: Plan, replicas: int) -> str:
    """The LeaderWorkerSet's name: ``plan.name``, shortened (:func:`k8s_name`) to
    :func:`lws_name_limit`."""
    return k8s_name(plan.name, "", lws_name_limit(plan, replicas))


def leader_service_name(plan: Plan) -> str:
    """The Service of a LeaderWorkerSet's leaders: ``NAME-leader`` (at most 63
    characters). The controller names its own Services ``NAME`` (the headless one behind
    ``LWS_LEADER_ADDRESS``) or ``NAME-GROUP`` (a number): never with this suffix."""
    return k8s_name(plan.name, LEADER_SERVICE_SUFFIX, LABEL_MAX)


def leader_selector(name: str) -> dict[str, str]:
    """The pods of LeaderWorkerSet ``name`` that serve the API: the leaders (index 0)."""
    return {LWS_NAME_LABEL: name, LWS_INDEX_LABEL: "0"}


def leader_args(plan: Plan) -> list[str]:
    """What the leader adds after ``docker run``'s arguments: node rank 0, the store at
    its own ``$(LWS_LEADER_ADDRESS)`` (:func:`aimc.emit.render.node_role_args`)."""
    return node_role_args(plan, "0", LWS_LEADER_ADDRESS)


def worker_args(plan: Plan) -> list[str]:
    """What a worker adds: its rank ``$(LWS_WORKER_INDEX)``, the leader's address."""
    return node_role_args(plan, LWS_WORKER_INDEX, LWS_LEADER_ADDRESS)


def worker_container(plan: Plan, leader: dict[str, Any]) -> dict[str, Any]:
    """A worker: the ``leader``'s container without the API server (no port, no probes)
    and with the worker's role arguments."""
    skip = ("ports", "startupProbe", "readinessProbe", "livenessProbe")
    worker = {k: v for k, v in leader.items() if k not in skip}
    worker["name"] = "worker"
    worker["args"] = [*(k8s_escape(word) for word in container_args(plan)), *worker_args(plan)]
    return worker


def leader_worker_set(
    plan: Plan,
    replicas: int,
    labels: dict[str, str],
    leader: dict[str, Any],
    init: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
) -> dict[str, Any]:
    """The LeaderWorkerSet (named :func:`lws_name`): ``replicas`` groups of ``plan.nodes``
    pods, the ``leader`` container on rank 0 and its :func:`worker_container` on the
    others, each pod with the ``init`` containers and ``volumes``."""
    return {
        "apiVersion": LWS_API,
        "kind": "LeaderWorkerSet",
        "metadata": {"name": lws_name(plan, replicas), "labels": labels},
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
                        "containers": [worker_container(plan, leader)],
                        "volumes": volumes,
                    },
                },
            },
        },
    }
