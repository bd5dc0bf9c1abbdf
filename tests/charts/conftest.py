"""The Helm chart rendered offline through helm-python-sdk (Helm's own Go code, no binary, no cluster)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from smart import settings
from smart.access import stationauth
from smart.keys import KeyStore

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "smart"
#: The Kubernetes version the README names; every rendered manifest is validated against it.
KUBERNETES_VERSION = "1.30"
NAMESPACE = "shop-floor"
RELEASE = "smart"


def render(values: dict[str, Any] | None = None, *, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """Every object the chart renders (templates and test hooks; NOTES and CRDs apart)."""
    with helm.Chart.load(CHART) as chart:
        files = chart.render(values or {}, name=RELEASE, namespace=namespace, is_install=True)
    return [
        doc
        for name, text in sorted(files.items())
        if not name.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def notes(values: dict[str, Any] | None = None) -> str:
    with helm.Chart.load(CHART) as chart:
        files = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return files[f"{CHART.name}/templates/NOTES.txt"]


def station_value(station: str, keys: KeyStore, mode: str = "pods") -> dict[str, Any]:
    seed = stationauth.user_seed(keys.signing_key(stationauth.key_name(station)))
    return {
        "id": station,
        "mode": mode,
        "nodeSelector": {"smart.aero/station": station},
        "nkeyPublic": stationauth.user_public(seed),
    }


@pytest.fixture(scope="module")
def chart_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyStore:
    return KeyStore(tmp_path_factory.mktemp("chart-keys"))


@pytest.fixture(scope="module")
def six_stations(chart_keys: KeyStore) -> dict[str, Any]:
    return {"stations": [station_value(s, chart_keys) for s in settings.SHOP_STATIONS]}


EXTERNAL: dict[str, Any] = {
    "nats": {
        "external": {"url": "nats://nats.messaging.svc:4222", "existingSecret": "smart-nats-urls"},
        "leafnodeUrl": "nats-leaf://nats.shop.example:7422",
    },
    "postgresql": {"external": {"existingSecret": "smart-db-url"}},
}


#: The three hub roles on their own, Business behind an Ingress.
HUB_ROLES: dict[str, Any] = {
    "vault": {"enabled": True},
    "floor": {"enabled": True},
    "business": {
        "enabled": True,
        "replicas": 2,
        "service": {"type": "LoadBalancer"},
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "host": "smart.shop.example",
            "tlsSecretName": "smart-tls",
        },
    },
}


@pytest.fixture(scope="module")
def scenarios(six_stations: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The three installations the issue names: defaults, external PostgreSQL and NATS, six stations."""
    return {
        "defaults": {},
        "external": EXTERNAL,
        "six-stations": six_stations,
        "hub-roles": {**six_stations, "hubs": HUB_ROLES, "contracts": {"configMap": "smart-contracts"}},
    }


def workloads(objects: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(object, pod spec) of every object that makes pods."""
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield obj, obj["spec"]["template"]["spec"]
        elif obj["kind"] == "Pod":
            yield obj, obj["spec"]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise LookupError(
        f"{kind}/{name} not rendered; have {[(o['kind'], o['metadata']['name']) for o in objects]}"
    )


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}
