"""DaemonSets from the reconcile core's workloads: one per module, on the nodes labelled for it.

Each DaemonSet's pods run on the nodes carrying the label ``smart.aero/module.<module>=true``,
which the operator keeps on the nodes of the stations that need the module (the nodes a
Station's ``nodeSelector`` matches). A station joining or leaving changes node labels, never a
pod template, so no module pod on another station is rolled. A DaemonSet carries an owner
reference to every contract that asks for the module, and an annotation with the hash of its
desired spec, so an unchanged workload is never patched (editing a limit leaves the DaemonSets
alone). The container's resource requests and limits are the
module's manifest's, and its pods carry an annotation naming the hardware the
manifest says it drives (camera, GPIO, microphone…), for whoever wires a
station.

Every module pod meets Pod Security ``restricted``: non-root (the image's uid 10001), seccomp
``RuntimeDefault``, every capability dropped, a read-only root filesystem (``/tmp`` an
``emptyDir``), no privilege escalation, no host namespace, no hostPath. A module that drives
hardware gets exactly the devices of its manifest's ``hardware`` and nothing else, as extended
resources of the node's device plugin (smarter-device-manager, ``smarter-devices/<device>``:
the kubelet then admits that device node into the container's device cgroup, which a hostPath
mount of ``/dev/...`` would not do without ``privileged``), plus the group that owns the device
node on Raspberry Pi OS (``gpio``, ``video``, ``audio``, ``dialout``) as a supplemental group.
A module without hardware gets no device and no extra group.

Every module pod serves its own ``/metrics`` on :data:`METRICS_PORT` (``smart module run``'s
``SMART_MODULE_METRICS_PORT``, on the pod's address), a container port named ``metrics``, and
says so with the ``prometheus.io/scrape|port|path`` annotations an annotation-driven Prometheus
reads (the chart's optional PodMonitor selects the same pods by their managed-by label).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kubernetes.aio import client

from smart.contracts.models import GROUP
from smart.contracts.reconcile import Workload

MANAGED_BY = "smart-operator"
MODULE_LABEL = f"{GROUP}/module"
HASH_ANNOTATION = f"{GROUP}/workload-hash"
HARDWARE_ANNOTATION = f"{GROUP}/hardware"
SELECTOR = f"app.kubernetes.io/managed-by={MANAGED_BY}"


#: Where a module pod finds its own node's station leaf: the chart's Service
#: ``<release>-station-leaf`` (``internalTrafficPolicy: Local``: only the leaf on the pod's node),
#: for the default release name ``smart``.
LEAF_URL = "nats://smart-station-leaf:4222"
#: The image's user and group (images/Dockerfile): module pods run as it, never as root.
RUN_AS = 10001
#: The device plugin's resources each kind of hardware a manifest names needs: the GPIO header's
#: chip (gpiochip0 on a Pi 5 with a current kernel, gpiochip4 before), the camera, the sound
#: card, a USB serial adapter. The node's smarter-device-manager must expose these names.
DEVICE_RESOURCES: dict[str, tuple[str, ...]] = {
    "gpio": ("smarter-devices/gpiochip0",),
    "camera": ("smarter-devices/video0",),
    "microphone": ("smarter-devices/snd",),
    "speaker": ("smarter-devices/snd",),
    "serial": ("smarter-devices/ttyUSB0",),
}
#: The group owning those device nodes (Debian's fixed gids; ``gpio`` as Raspberry Pi OS makes it).
DEVICE_GROUPS: dict[str, int] = {"gpio": 997, "camera": 44, "microphone": 29, "speaker": 29, "serial": 20}
#: Where a module pod serves ``/metrics`` (its own pod address: no two module pods share one).
METRICS_PORT = 9464
#: What an annotation-driven Prometheus scrape configuration reads off a module pod.
SCRAPE_ANNOTATIONS = {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": str(METRICS_PORT),
    "prometheus.io/path": "/metrics",
}


def _hardware_kind(hardware: str) -> str:
    """``gpio-interlock`` → ``gpio``: the manifest names what it drives, the pin map which pin."""
    return hardware.split("-", 1)[0]


def devices(hardware: Iterable[str]) -> tuple[dict[str, str], list[int]]:
    """The device resources (name → "1") and supplemental groups for the hardware a module drives.

    Hardware of a kind this builder does not know is refused: a module would otherwise start
    without the device it needs and fail at its first reading.
    """
    kinds = sorted({_hardware_kind(h) for h in hardware})
    unknown = [k for k in kinds if k not in DEVICE_RESOURCES]
    if unknown:
        raise ValueError(
            f"no device is known for hardware {', '.join(unknown)}; known: {', '.join(DEVICE_RESOURCES)}"
        )
    resources = {name: "1" for kind in kinds for name in DEVICE_RESOURCES[kind]}
    groups = sorted({DEVICE_GROUPS[kind] for kind in kinds})
    return resources, groups


#: Prefix of the node labels the operator manages; nothing else should set labels under it.
NODE_LABEL_PREFIX = f"{GROUP}/module."


def name(module: str) -> str:
    return f"smart-{module}"


def node_label(module: str) -> str:
    """The label on a station's node that lets ``module``'s DaemonSet place a pod there."""
    return f"{NODE_LABEL_PREFIX}{module}"


def daemonset(
    workload: Workload, *, namespace: str, owners: Mapping[str, str], image: str | None = None
) -> dict[str, Any]:
    """The DaemonSet of ``workload``; ``owners`` maps contract name → uid.

    ``image`` (the ``station_image`` setting, from the Helm chart) replaces the manifest's, so the
    module pods run the same build as the chart's hub and station pods.
    """
    labels = {
        "app.kubernetes.io/name": name(workload.module),
        "app.kubernetes.io/part-of": "smart",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        MODULE_LABEL: workload.module,
    }
    annotations = dict(SCRAPE_ANNOTATIONS)
    if workload.hardware:
        annotations[HARDWARE_ANNOTATION] = ",".join(workload.hardware)
    template_metadata: dict[str, Any] = {"labels": labels, "annotations": annotations}
    device_resources, device_groups = devices(workload.hardware)
    pod_security: dict[str, Any] = {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if device_groups:
        pod_security["supplementalGroups"] = device_groups
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {MODULE_LABEL: workload.module}},
        "template": {
            "metadata": template_metadata,
            "spec": {
                "nodeSelector": {node_label(workload.module): "true"},
                "automountServiceAccountToken": False,
                "securityContext": pod_security,
                "containers": [
                    {
                        "name": workload.module,
                        "image": image or workload.image,
                        # one DaemonSet spans several stations' nodes: each pod learns its station
                        # from the node it landed on (downward API; nodes are named after stations)
                        "args": ["module", "run", workload.module, "--station", "$(SMART_STATION)"],
                        "env": [
                            {"name": "SMART_MODULE", "value": workload.module},
                            {"name": "SMART_LEAF_URL", "value": LEAF_URL},
                            {"name": "SMART_MODULE_METRICS_HOST", "value": "0.0.0.0"},
                            {"name": "SMART_MODULE_METRICS_PORT", "value": str(METRICS_PORT)},
                            {
                                "name": "SMART_STATION",
                                "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
                            },
                        ],
                        "ports": [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
                        "resources": {
                            "requests": dict(workload.requests),
                            "limits": {**dict(workload.limits), **device_resources},
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "privileged": False,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                    }
                ],
                "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
            },
        },
    }
    owner_refs = [
        {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "SmartContract",
            "name": contract,
            "uid": owners.get(contract, ""),
            "blockOwnerDeletion": True,
        }
        for contract in workload.contracts
    ]
    digest = hashlib.sha256(json.dumps([spec, owner_refs], sort_keys=True).encode()).hexdigest()[:16]
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": name(workload.module),
            "namespace": namespace,
            "labels": labels,
            "annotations": {HASH_ANNOTATION: digest},
            "ownerReferences": owner_refs,
        },
        "spec": spec,
    }


def changes(
    desired: Sequence[dict[str, Any]], existing: Sequence[client.V1DaemonSet]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """(to create, to patch, names to delete), comparing the desired-spec hashes."""
    have = {d.metadata.name: d for d in existing if d.metadata is not None and d.metadata.name}
    want = {d["metadata"]["name"]: d for d in desired}
    create = [d for n, d in want.items() if n not in have]
    patch = [
        d
        for n, d in want.items()
        if n in have and desired_hash(have[n]) != d["metadata"]["annotations"][HASH_ANNOTATION]
    ]
    delete = sorted(n for n in have if n not in want)
    return create, patch, delete


def typed(body: Mapping[str, Any]) -> client.V1DaemonSet:
    """The manifest as the client's model (checked against the API's schema on the way)."""
    model = client.V1DaemonSet.from_dict(dict(body))
    if model is None:
        raise ValueError(f"not a DaemonSet: {body.get('metadata', {}).get('name')}")
    return model


def desired_hash(daemonset: client.V1DaemonSet) -> str | None:
    annotations = (daemonset.metadata.annotations if daemonset.metadata else None) or {}
    return annotations.get(HASH_ANNOTATION)


def label_changes(
    nodes: Iterable[client.V1Node], workloads: Sequence[Workload]
) -> dict[str, dict[str, str | None]]:
    """Node name → the module labels to set ("true") or drop (None) so each node runs what it should.

    A node runs a module when it matches the ``nodeSelector`` of a station the module's workload
    covers. Only labels under :data:`NODE_LABEL_PREFIX` are touched.
    """
    patches: dict[str, dict[str, str | None]] = {}
    for node in nodes:
        if node.metadata is None or node.metadata.name is None:
            continue
        labels = dict(node.metadata.labels or {})
        wanted = {
            node_label(w.module)
            for w in workloads
            for selector in w.node_selectors
            if all(labels.get(key) == value for key, value in selector.items())
        }
        held = {key for key, value in labels.items() if key.startswith(NODE_LABEL_PREFIX) and value == "true"}
        stale = {key for key in labels if key.startswith(NODE_LABEL_PREFIX)} - held
        patch: dict[str, str | None] = {key: "true" for key in sorted(wanted - held)}
        patch.update({key: None for key in sorted((held | stale) - wanted)})
        if patch:
            patches[node.metadata.name] = patch
    return patches
