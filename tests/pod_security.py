"""The Pod Security Standards' checks (Kubernetes 1.30), for pod specs rendered here without a cluster.

What the admission controller's ``baseline`` and ``restricted`` levels refuse, field by field, as
https://kubernetes.io/docs/concepts/security/pod-security-standards/ lists them, so a test can
say which level a chart's or the operator's pod meets and why not. Each check returns the
problems it found ("<container>: <field> …"), none when the pod passes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

Level = Literal["baseline", "restricted"]

#: Capabilities ``baseline`` lets a container add (anything else is refused).
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
#: Volume types ``restricted`` admits.
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}


def _containers(pod: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from pod.get(key) or ()


def baseline(pod: Mapping[str, Any]) -> list[str]:
    """Why ``pod`` (a PodSpec) breaks Pod Security ``baseline``; empty when it meets it."""
    problems = [f"pod: {key}" for key in ("hostNetwork", "hostPID", "hostIPC") if pod.get(key)]
    problems += [f"pod: hostPath volume {v['name']}" for v in pod.get("volumes") or () if "hostPath" in v]
    pod_context = pod.get("securityContext") or {}
    for sysctl in pod_context.get("sysctls") or ():
        if sysctl.get("name") not in SAFE_SYSCTLS:
            problems.append(f"pod: sysctl {sysctl.get('name')}")
    for where, context in [("pod", pod_context)] + [
        (str(c.get("name")), c.get("securityContext") or {}) for c in _containers(pod)
    ]:
        if (context.get("seccompProfile") or {}).get("type") == "Unconfined":
            problems.append(f"{where}: seccompProfile Unconfined")
        if (context.get("appArmorProfile") or {}).get("type") == "Unconfined":
            problems.append(f"{where}: appArmorProfile Unconfined")
        selinux = context.get("seLinuxOptions") or {}
        if selinux.get("type") not in (None, "", "container_t", "container_init_t", "container_kvm_t"):
            problems.append(f"{where}: seLinuxOptions.type {selinux.get('type')}")
        if selinux.get("user") or selinux.get("role"):
            problems.append(f"{where}: seLinuxOptions user/role")
        if context.get("windowsOptions", {}).get("hostProcess"):
            problems.append(f"{where}: windowsOptions.hostProcess")
    for container in _containers(pod):
        name = str(container.get("name"))
        context = container.get("securityContext") or {}
        if context.get("privileged"):
            problems.append(f"{name}: privileged")
        added = set((context.get("capabilities") or {}).get("add") or ())
        if added - BASELINE_CAPABILITIES:
            problems.append(f"{name}: capabilities.add {sorted(added - BASELINE_CAPABILITIES)}")
        if context.get("procMount") not in (None, "Default"):
            problems.append(f"{name}: procMount {context.get('procMount')}")
        problems += [
            f"{name}: hostPort {p['hostPort']}" for p in container.get("ports") or () if p.get("hostPort")
        ]
    return problems


def restricted(pod: Mapping[str, Any]) -> list[str]:
    """Why ``pod`` breaks Pod Security ``restricted`` (``baseline`` included); empty when it meets it."""
    problems = baseline(pod)
    for volume in pod.get("volumes") or ():
        kinds = {key for key in volume if key != "name"} - RESTRICTED_VOLUMES
        if kinds and "hostPath" not in kinds:
            problems.append(f"pod: volume {volume['name']} of type {sorted(kinds)}")
    pod_context = pod.get("securityContext") or {}
    if pod_context.get("runAsUser") == 0:
        problems.append("pod: runAsUser 0")
    for container in _containers(pod):
        name = str(container.get("name"))
        context = container.get("securityContext") or {}
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is not True:
            problems.append(f"{name}: runAsNonRoot is not true")
        if context.get("runAsUser") == 0:
            problems.append(f"{name}: runAsUser 0")
        seccomp = (context.get("seccompProfile") or pod_context.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile is not RuntimeDefault or Localhost")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or ()):
            problems.append(f"{name}: capabilities.drop lacks ALL")
        if set(capabilities.get("add") or ()) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: capabilities.add beyond NET_BIND_SERVICE")
    return problems


def check(pod: Mapping[str, Any], level: Level) -> list[str]:
    return restricted(pod) if level == "restricted" else baseline(pod)
