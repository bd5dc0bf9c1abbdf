"""The operator's deploy manifests and the DaemonSets it builds from the module manifests.

Pure: no kopf, no API server. The deploy manifests are valid and least privilege; each module's
DaemonSet takes its resources from the module's manifest and runs only where the manifest allows
(logistics on shipping stations), and a deploy says which selected stations a module was kept off.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes.aio import client

from smart.contracts import catalog, reconcile
from smart.contracts.models import ROLE_LABEL, LabelSelector, SmartContract, Station
from smart.keys import SigningKey
from smart.operator import workloads
from tests import pod_security

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def documents() -> list[dict[str, object]]:
    return [
        doc for path in sorted(DEPLOY.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc
    ]


def test_deploy_manifests_are_valid_kubernetes_objects() -> None:
    for doc in documents():
        kubernetes_validate.validate(doc, "1.30", strict=True)


def test_operator_rbac_grants_no_wildcards_no_secrets_and_no_cluster_writes() -> None:
    for doc in documents():
        if doc["kind"] not in ("Role", "ClusterRole"):
            continue
        for rule in doc["rules"]:  # type: ignore[attr-defined]
            assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
            assert "secrets" not in rule["resources"]
            if doc["kind"] == "ClusterRole":  # cluster-wide it reads, and writes only node labels
                writes = set(rule["verbs"]) - {"get", "list", "watch"}
                assert not writes or (rule["resources"] == ["nodes"] and writes == {"patch"}), rule


def station(sid: str, role: str) -> Station:
    return Station.model_validate(
        {
            "apiVersion": "smart.aero/v1alpha1",
            "kind": "Station",
            "metadata": {"name": sid, "labels": {"smart.aero/station": sid, ROLE_LABEL: role}},
            "spec": {"stationId": sid, "process": role, "nodeSelector": {"smart.aero/station": sid}},
        }
    )


STATIONS = [station("pt-1", "inspection"), station("ht-1", "heat-treat"), station("sr-1", "shipping")]

EVERYWHERE = SmartContract.model_validate(
    {
        "apiVersion": "smart.aero/v1alpha1",
        "kind": "SmartContract",
        "metadata": {"name": "whole-floor"},
        "spec": {
            "stationSelector": {"matchExpressions": [{"key": ROLE_LABEL, "operator": "Exists"}]},
            "modules": ["gatekeeper", "vision", "logistics"],
            "rules": [{"kind": "quantity", "id": "count-matches-po"}],
        },
    }
)


class Bucket:
    """The KV bucket as the reconcile core sees it, in memory."""

    def __init__(self) -> None:
        self.held: dict[tuple[str, str], bytes] = {}

    async def put(self, station: str, contract: str, envelope: bytes) -> None:
        self.held[station, contract] = envelope

    async def delete(self, station: str, contract: str) -> None:
        self.held.pop((station, contract), None)

    async def revisions(self, contract: str) -> dict[str, str]:
        return {s: "held" for s, c in self.held if c == contract}


def daemonsets() -> dict[str, dict[str, Any]]:
    found = reconcile.workloads([EVERYWHERE], STATIONS)
    return {w.module: workloads.daemonset(w, namespace="smart", owners={"whole-floor": "u-1"}) for w in found}


def container(daemonset: dict[str, Any]) -> dict[str, Any]:
    return dict(daemonset["spec"]["template"]["spec"]["containers"][0])


def placed(module: str) -> list[str]:
    """The stations whose nodes get the module's placement label."""
    found = reconcile.workloads([EVERYWHERE], STATIONS)
    nodes = [
        client.V1Node(metadata=client.V1ObjectMeta(name=s.spec.station_id, labels=dict(s.spec.node_selector)))
        for s in STATIONS
    ]
    label = workloads.node_label(module)
    return sorted(
        n for n, labels in workloads.label_changes(nodes, found).items() if labels.get(label) == "true"
    )


def test_daemonset_resources_are_the_module_manifests() -> None:
    for module, daemonset in daemonsets().items():
        manifest = catalog.MODULES[module]
        devices, _ = workloads.devices(manifest.hardware)
        assert container(daemonset)["resources"] == {
            "requests": dict(manifest.requests),
            "limits": {**dict(manifest.limits), **devices},
        }
        kubernetes_validate.validate(daemonset, "1.30", strict=True)
    vision, gatekeeper = daemonsets()["vision"], daemonsets()["gatekeeper"]
    assert container(vision)["resources"] != container(gatekeeper)["resources"]


def test_daemonset_pods_name_the_hardware_their_module_drives() -> None:
    found = daemonsets()
    vision = found["vision"]["spec"]["template"]["metadata"]["annotations"]
    assert vision[workloads.HARDWARE_ANNOTATION] == "camera"
    assert (
        workloads.HARDWARE_ANNOTATION
        not in found["gatekeeper"]["spec"]["template"]["metadata"]["annotations"]
    )


def test_every_module_pod_serves_metrics_on_the_port_its_annotations_name() -> None:
    """Annotation-driven Prometheus finds each module pod; the port is the one the process listens on."""
    for module, daemonset in daemonsets().items():
        annotations = daemonset["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", module
        assert annotations["prometheus.io/path"] == "/metrics"
        ports = {p["name"]: p["containerPort"] for p in container(daemonset)["ports"]}
        assert annotations["prometheus.io/port"] == str(ports["metrics"])
        env = {e["name"]: e.get("value") for e in container(daemonset)["env"]}
        # smart module run reads these (tests/node/test_module_metrics.py runs one with them)
        assert env["SMART_MODULE_METRICS_PORT"] == str(ports["metrics"])
        assert env["SMART_MODULE_METRICS_HOST"] == "0.0.0.0"  # the pod's address, for the scraper


def test_a_new_limit_in_a_manifest_patches_the_daemonset_and_an_unchanged_one_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = [workloads.typed(d) for d in daemonsets().values()]  # as the API server lists them
    assert workloads.changes(list(daemonsets().values()), before) == ([], [], [])
    bigger = dataclasses.replace(catalog.MODULES["vision"], limits={"memory": "1Gi"})
    monkeypatch.setattr(catalog, "MODULES", {**catalog.MODULES, "vision": bigger})
    create, patch, delete = workloads.changes(list(daemonsets().values()), before)
    assert (create, delete) == ([], [])
    assert [d["metadata"]["name"] for d in patch] == ["smart-vision"]
    assert container(patch[0])["resources"]["limits"] == {"memory": "1Gi", "smarter-devices/video0": "1"}


def test_logistics_is_placed_only_on_shipping_stations_even_when_asked_for_everywhere() -> None:
    assert placed("gatekeeper") == ["ht-1", "pt-1", "sr-1"]
    assert placed("logistics") == ["sr-1"]
    # The template names the label only: which stations run it never enters the pod template.
    assert daemonsets()["logistics"]["spec"]["template"]["spec"]["nodeSelector"] == {
        "smart.aero/module.logistics": "true"
    }


async def test_the_deploy_says_logistics_was_not_placed_on_the_stations_not_labelled_for_shipping() -> None:
    deployment = await reconcile.deploy(
        EVERYWHERE, STATIONS, key=SigningKey.generate("hub"), store=Bucket(), log_=None
    )
    assert sorted(deployment.revisions) == ["ht-1", "pt-1", "sr-1"]
    assert dict(deployment.unplaced) == {"logistics": ("ht-1", "pt-1")}
    assert deployment.warnings == (
        "module logistics not placed on ht-1, pt-1: it runs only where smart.aero/role=shipping",
    )
    shipping_only = EVERYWHERE.model_copy(
        update={
            "spec": EVERYWHERE.spec.model_copy(
                update={
                    "station_selector": LabelSelector.model_validate(
                        {"matchLabels": {ROLE_LABEL: "shipping"}}
                    )
                }
            )
        }
    )
    quiet = await reconcile.deploy(
        shipping_only, STATIONS, key=SigningKey.generate("hub"), store=Bucket(), log_=None
    )
    assert quiet.warnings == () and dict(quiet.unplaced) == {}


def every_module_daemonset() -> dict[str, dict[str, Any]]:
    """A DaemonSet for every module there is, hardware or not, as the operator would build it."""
    found = {}
    for name, manifest in catalog.MODULES.items():
        workload = reconcile.Workload(
            module=name,
            image="ghcr.io/smart-aero/smart:1.0",
            stations=("pt-1",),
            node_selectors=({"smart.aero/station": "pt-1"},),
            contracts=("penetrant",),
            requests=manifest.requests,
            limits=manifest.limits,
            hardware=manifest.hardware,
        )
        found[name] = workloads.daemonset(workload, namespace="smart", owners={"penetrant": "u-1"})
    return found


def test_every_module_pod_meets_pod_security_restricted_with_only_the_devices_it_drives() -> None:
    for name, daemonset in every_module_daemonset().items():
        pod = daemonset["spec"]["template"]["spec"]
        assert pod_security.restricted(pod) == [], name
        kubernetes_validate.validate(daemonset, "1.30", strict=True)
        limits = container(daemonset)["resources"]["limits"]
        devices = sorted(k for k in limits if k.startswith("smarter-devices/"))
        groups = pod["securityContext"].get("supplementalGroups", [])
        if name == "vision":
            assert devices == ["smarter-devices/video0"] and groups == [workloads.DEVICE_GROUPS["camera"]]
        elif name in ("safety", "alert-broadcast"):  # the interlock, e-stop, stack light, buzzer pins
            assert devices == ["smarter-devices/gpiochip0"] and groups == [workloads.DEVICE_GROUPS["gpio"]]
        elif name == "node-query":  # the microphone and the speaker: the sound card
            assert devices == ["smarter-devices/snd"] and groups == [workloads.DEVICE_GROUPS["microphone"]]
        else:
            assert devices == [] and groups == [], name
        assert pod_security.restricted({**pod, "volumes": [{"name": "dev", "hostPath": {"path": "/dev"}}]})


def test_hardware_no_device_is_known_for_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="lidar"):
        workloads.devices(["lidar-front"])
