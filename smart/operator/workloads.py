"""DaemonSets from the reconcile core's workloads: one per module, pinned to its stations' nodes.

Each DaemonSet's pods may run only on the nodes of the stations that need
the module (node affinity: one selector term per station, from the
Station's ``nodeSelector``), carry an owner reference to every contract that
asks for the module, and an annotation with the hash of their desired spec,
so an unchanged workload is never patched (editing a limit leaves the
DaemonSets alone). The container's resource requests and limits are the
module's manifest's, and its pods carry an annotation naming the hardware the
manifest says it drives (camera, GPIO, microphone…), for whoever wires a
station.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from smart.contracts.models import GROUP
from smart.contracts.reconcile import Workload

MANAGED_BY = "smart-operator"
MODULE_LABEL = f"{GROUP}/module"
HASH_ANNOTATION = f"{GROUP}/workload-hash"
HARDWARE_ANNOTATION = f"{GROUP}/hardware"
SELECTOR = f"app.kubernetes.io/managed-by={MANAGED_BY}"


def name(module: str) -> str:
    return f"smart-{module}"


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
    terms = [
        {"matchExpressions": [{"key": k, "operator": "In", "values": [v]} for k, v in selector.items()]}
        for selector in workload.node_selectors
    ]
    template_metadata: dict[str, Any] = {"labels": labels}
    if workload.hardware:
        template_metadata["annotations"] = {HARDWARE_ANNOTATION: ",".join(workload.hardware)}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {MODULE_LABEL: workload.module}},
        "template": {
            "metadata": template_metadata,
            "spec": {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}
                    }
                },
                "containers": [
                    {
                        "name": workload.module,
                        "image": image or workload.image,
                        # one DaemonSet spans several stations' nodes: each pod learns its station
                        # from the node it landed on (downward API; nodes are named after stations)
                        "args": ["module", "run", workload.module, "--station", "$(SMART_STATION)"],
                        "env": [
                            {"name": "SMART_MODULE", "value": workload.module},
                            {
                                "name": "SMART_STATION",
                                "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
                            },
                        ],
                        "resources": {"requests": dict(workload.requests), "limits": dict(workload.limits)},
                    }
                ],
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
    desired: Sequence[dict[str, Any]], existing: Sequence[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """(to create, to patch, names to delete), comparing the desired-spec hashes."""
    have = {d["metadata"]["name"]: d for d in existing}
    want = {d["metadata"]["name"]: d for d in desired}
    create = [d for n, d in want.items() if n not in have]
    patch = [
        d
        for n, d in want.items()
        if n in have
        and have[n].get("metadata", {}).get("annotations", {}).get(HASH_ANNOTATION)
        != d["metadata"]["annotations"][HASH_ANNOTATION]
    ]
    delete = sorted(n for n in have if n not in want)
    return create, patch, delete
