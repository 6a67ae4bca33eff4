"""The pods ``--emit k8s`` writes: their QoS class and their Pod Security level (issue 21).

Before issue 21 a pod requested GPUs and nothing else: BestEffort (GPUs are not among the
resources the QoS class is computed from), the first evicted under memory pressure, with a
16 GiB in-memory ``/dev/shm``; and it had no securityContext. Every pod template of every
shipped model on every GPU target it supports (one replica, several, and each template of
a LeaderWorkerSet, and the download Job's) is checked here against Kubernetes' rules,
transcribed below.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from aimc.build import make_plan
from aimc.catalog import Catalog
from aimc.k8s import pod_resources, resources, shm_size
from aimc.resolve import Request, candidates

CATALOG = Catalog.default()

# --- Kubernetes' rules --------------------------------------------------------------------

_SUFFIX = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
}


def quantity(value: Any) -> Decimal:
    """A resource quantity (``48``, ``500m``, ``478Gi``) as a number."""
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value))
    assert match and match.group(2) in _SUFFIX, value
    return Decimal(match.group(1)) * _SUFFIX[match.group(2)]


def qos_class(pod: dict[str, Any]) -> str:
    """The pod's QoS class, as Kubernetes computes it (pkg/apis/core/helper/qos/qos.go,
    ``ComputePodQOS``; the API server first sets a request to its limit where only the
    limit is given): from cpu and memory only. BestEffort when no container requests or
    limits either; Guaranteed when every container limits both and every request equals
    its limit; Burstable otherwise."""
    requests: dict[str, Decimal] = {}
    limits: dict[str, Decimal] = {}
    guaranteed = True
    for container in pod.get("initContainers", []) + pod["containers"]:
        res = container.get("resources", {})
        lim = {k: quantity(v) for k, v in res.get("limits", {}).items() if k in ("cpu", "memory")}
        req = {k: quantity(v) for k, v in res.get("requests", {}).items() if k in ("cpu", "memory")}
        req = {**lim, **req}  # defaulting: a limit without a request is both
        for name, value in req.items():
            if value:
                requests[name] = requests.get(name, Decimal(0)) + value
        for name, value in lim.items():
            limits[name] = limits.get(name, Decimal(0)) + value
        if set(lim) != {"cpu", "memory"}:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and requests == limits:
        return "Guaranteed"
    return "Burstable"


#: Pod Security Standards (kubernetes.io/docs/concepts/security/pod-security-standards/):
#: the capabilities the baseline level allows adding, the volume types the restricted level
#: allows, the sysctls baseline allows, the SELinux types it allows.
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}  # fmt: skip
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}  # fmt: skip
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}  # fmt: skip
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        *pod.get("initContainers", []),
        *pod["containers"],
        *pod.get("ephemeralContainers", []),
    ]


def baseline_violations(pod: dict[str, Any]) -> list[str]:
    """The baseline controls ``pod`` (a pod spec) breaks."""
    out = []
    psc = pod.get("securityContext", {})
    contexts = [psc] + [c.get("securityContext", {}) for c in _containers(pod)]
    if any(ctx.get("windowsOptions", {}).get("hostProcess") for ctx in contexts):
        out.append("HostProcess")
    if any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")):
        out.append("Host Namespaces")
    if any(c.get("securityContext", {}).get("privileged") for c in _containers(pod)):
        out.append("Privileged Containers")
    for c in _containers(pod):
        added = set(c.get("securityContext", {}).get("capabilities", {}).get("add", []))
        if added - BASELINE_CAPABILITIES:
            out.append("Capabilities")
    if any("hostPath" in v for v in pod.get("volumes", [])):
        out.append("HostPath Volumes")
    if any(p.get("hostPort") for c in _containers(pod) for p in c.get("ports", [])):
        out.append("Host Ports")
    if any(ctx.get("appArmorProfile", {}).get("type") == "Unconfined" for ctx in contexts):
        out.append("AppArmor")
    for ctx in contexts:
        se = ctx.get("seLinuxOptions", {})
        if se.get("type", "") not in SELINUX_TYPES or se.get("user") or se.get("role"):
            out.append("SELinux")
    mounts = {c.get("securityContext", {}).get("procMount", "Default") for c in _containers(pod)}
    if mounts - {"Default"}:
        out.append("/proc Mount Type")
    if any(ctx.get("seccompProfile", {}).get("type") == "Unconfined" for ctx in contexts):
        out.append("Seccomp")
    if any(s["name"] not in SAFE_SYSCTLS for s in psc.get("sysctls", [])):
        out.append("Sysctls")
    return out


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """The restricted controls ``pod`` breaks, baseline's included."""
    out = baseline_violations(pod)
    psc = pod.get("securityContext", {})
    containers = [c.get("securityContext", {}) for c in _containers(pod)]
    if any(set(v) - {"name"} - RESTRICTED_VOLUMES for v in pod.get("volumes", [])):
        out.append("Volume Types")
    if any(ctx.get("allowPrivilegeEscalation") is not False for ctx in containers):
        out.append("Privilege Escalation")
    if not all(ctx.get("runAsNonRoot", psc.get("runAsNonRoot")) is True for ctx in containers):
        out.append("Running as Non-root")
    if any(ctx.get("runAsUser") == 0 for ctx in [psc, *containers]):
        out.append("Running as Non-root user")
    for ctx in containers:
        kind = ctx.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
        if kind not in ("RuntimeDefault", "Localhost"):
            out.append("Seccomp (restricted)")
        caps = ctx.get("capabilities", {})
        if "ALL" not in caps.get("drop", []) or set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            out.append("Capabilities (restricted)")
    return out


# --- every pod aimc writes ----------------------------------------------------------------


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
    assert qos_class(gpu_only) == "BestEffort"  # what aimc wrote before issue 21
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
