"""Kubernetes' own rules for a pod, as the tests apply them to what aimc emits: its QoS
class (from the resource requests and limits) and the Pod Security Standards' baseline and
restricted levels."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

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
