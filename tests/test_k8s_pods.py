"""The pods ``--emit k8s`` writes: their QoS class and their Pod Security level.

Failed before: a pod requested GPUs and nothing else: BestEffort (GPUs are not among the
resources the QoS class is computed from), the first evicted under memory pressure, with a
16 GiB in-memory ``/dev/shm``; and it had no securityContext. Every pod template of every
shipped model on every GPU target it supports (one replica, several, and each template of
a LeaderWorkerSet, and the download Job's) is checked here against Kubernetes' rules,
transcribed below.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.emit.k8s import resources
from aimc.emit.k8s_pod import pod_resources, shm_size
from aimc.plan.candidates import candidates
from aimc.plan.request import Request
from tests.helpers.pods import baseline_violations, qos_class, quantity, restricted_violations

CATALOG = Catalog.default()


def _templates(written: dict[str, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    if "deployment.yaml" in written:
        yield "deployment", written["deployment.yaml"]["spec"]["template"]["spec"]
    if "leaderworkerset.yaml" in written:
        lwt = written["leaderworkerset.yaml"]["spec"]["leaderWorkerTemplate"]
        yield "leader", lwt["leaderTemplate"]["spec"]
        yield "worker", lwt["workerTemplate"]["spec"]
    if "download.yaml" in written:
        yield "download", written["download.yaml"]["spec"]["template"]["spec"]


def _every_pod() -> Iterator[tuple[str, Any, dict[str, Any]]]:
    pairs = sorted({(r.model_id, c.hardware) for r in CATALOG.recipes() for c in candidates(r)})
    for model, target in pairs:
        plan = make_plan(CATALOG, Request(model=model), target)
        if plan.launcher != "docker" or plan.local_model:
            continue
        for replicas in (1, 2):
            for which, pod in _templates(resources(plan, replicas)):
                yield f"{model} {target} x{replicas} {which}", plan, pod
    lws = make_plan(
        CATALOG, Request(model="meta-llama/Llama-3.1-405B-Instruct", precision="bf16"), "h100"
    )
    for which, pod in _templates(resources(lws, 1)):
        yield f"405B 2 nodes {which}", lws, pod


PODS = list(_every_pod())


def test_every_kind_of_pod_is_checked() -> None:
    kinds = {what.rsplit(" ", 1)[1] for what, _, _ in PODS}
    assert kinds == {"deployment", "leader", "worker", "download"}
    assert {plan.hardware["vendor"] for _, plan, _ in PODS} == {"amd", "nvidia"}
    assert len(PODS) > 40


@pytest.mark.parametrize(("what", "plan", "pod"), PODS, ids=[p[0] for p in PODS])
def test_no_pod_is_best_effort(what: str, plan: Any, pod: dict[str, Any]) -> None:
    """Burstable: CPU and memory requested, memory limited (with /dev/shm counted in
    both), no CPU limit. The download Job's pod is Guaranteed (a small fixed share); every
    init container (download or wait-for-model) requests and limits CPU and memory."""
    for init in pod.get("initContainers", []):
        res = init["resources"]
        assert res["requests"]["cpu"] == res["limits"]["cpu"], what
        assert res["requests"]["memory"] == res["limits"]["memory"], what
    if what.endswith(" download"):
        assert qos_class(pod) == "Guaranteed", what
        return
    assert qos_class(pod) == "Burstable", what
    (container,) = pod["containers"]
    res = container["resources"]
    assert res == pod_resources(plan)
    shm = next(v["emptyDir"]["sizeLimit"] for v in pod["volumes"] if v["name"] == "dshm")
    assert shm == shm_size(plan)
    requested, limit = quantity(res["requests"]["memory"]), quantity(res["limits"]["memory"])
    assert quantity(shm) < requested < limit
    assert quantity(res["requests"]["cpu"]) >= 1
    assert quantity(res["requests"]["ephemeral-storage"]) > 0
    host = plan.hardware["host"]
    share = Decimal(plan.total_gpus) / plan.hardware["gpus_per_node"]
    # Within the reference node's share of the pod's GPUs: it fits a node like it.
    assert quantity(res["requests"]["cpu"]) <= host["cpu_cores"] * share
    assert requested <= quantity(f"{host['memory_gib']}Gi") * share


@pytest.mark.parametrize(("what", "plan", "pod"), PODS, ids=[p[0] for p in PODS])
def test_every_pod_meets_the_baseline_pod_security_level(
    what: str, plan: Any, pod: dict[str, Any]
) -> None:
    """Baseline, and every restricted control but running as non-root: the images run as
    root (docs/kubernetes.md)."""
    assert baseline_violations(pod) == [], what
    assert restricted_violations(pod) == ["Running as Non-root"], what


def test_a_dgx_h100_pod() -> None:
    """The numbers of the docstring of pod_resources, for the record."""
    plan = make_plan(CATALOG, Request(model="meta-llama/Llama-3.1-405B-Instruct"), "h100")
    assert (plan.total_gpus, plan.hardware["host"]["cpu_cores"]) == (8, 112)
    assert pod_resources(plan) == {
        "requests": {
            "cpu": "56",
            "memory": "528Gi",
            "ephemeral-storage": "50Gi",
            "nvidia.com/gpu": 8,
        },
        "limits": {"memory": "1552Gi", "nvidia.com/gpu": 8},
    }


# --- the rules themselves -------------------------------------------------------------------


def test_the_qos_rules() -> None:
    gpu_only = {"containers": [{"resources": {"limits": {"nvidia.com/gpu": 1}}}]}
    assert qos_class(gpu_only) == "BestEffort"  # what aimc once wrote
    both = {"limits": {"cpu": "2", "memory": "1Gi"}}
    assert qos_class({"containers": [{"resources": both}]}) == "Guaranteed"
    no_cpu_limit = {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}
    assert qos_class({"containers": [{"resources": no_cpu_limit}]}) == "Burstable"
    assert qos_class({"containers": [{"resources": both}, {}]}) == "Burstable"


def test_the_pod_security_rules() -> None:
    ok = {
        "containers": [
            {
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                    "seccompProfile": {"type": "RuntimeDefault"},
                    "runAsNonRoot": True,
                }
            }
        ],
        "volumes": [{"name": "v", "emptyDir": {}}],
    }
    assert restricted_violations(ok) == []
    c = ok["containers"][0]["securityContext"]  # type: ignore[index]

    def with_context(**changes: Any) -> dict[str, Any]:
        return {**ok, "containers": [{"securityContext": {**c, **changes}}]}

    cases = [
        ({**ok, "hostIPC": True}, "Host Namespaces"),
        ({**ok, "volumes": [{"name": "h", "hostPath": {"path": "/dev"}}]}, "HostPath Volumes"),
        (with_context(privileged=True), "Privileged"),
        (with_context(capabilities={"add": ["SYS_PTRACE"]}), "Capabilities"),
        (with_context(seccompProfile={"type": "Unconfined"}), "Seccomp"),
    ]
    for pod, control in cases:
        assert any(v.startswith(control) for v in baseline_violations(pod)), control
    root = with_context(runAsNonRoot=False)
    assert baseline_violations(root) == []
    assert restricted_violations(root) == ["Running as Non-root"]


def test_every_shipped_gpu_profile_has_its_reference_node() -> None:
    for name in CATALOG.hardware_names():
        data = CATALOG.hardware(name).data
        if data["vendor"] == "cpu":
            continue
        host = data["host"]
        assert host["reference"] and host["cpu_cores"] >= data["gpus_per_node"], name
        assert host["memory_gib"] >= 8 * data["gpus_per_node"], name


def test_a_profile_without_a_host_gets_the_modest_default() -> None:
    """A team's own profile may leave ``host`` out: 8 cores and 64 GiB per GPU."""
    plan = make_plan(CATALOG, Request(model="Qwen/Qwen3-8B"), "h100")
    hardware = {k: v for k, v in plan.hardware.items() if k != "host"}
    bare = dataclasses.replace(plan, hardware=hardware)
    assert pod_resources(bare)["requests"]["cpu"] == "4"
    assert pod_resources(bare)["requests"]["memory"] == "32Gi"  # 16 + 16 of /dev/shm
    assert qos_class({"containers": [{"resources": pod_resources(bare)}]}) == "Burstable"
