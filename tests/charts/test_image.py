"""The chart's one image reference reaches the module DaemonSets the operator creates.

The chart renders the operator's Deployment with ``SMART_STATION_IMAGE``; the operator's settings
read it, and the DaemonSets it builds for the reference contracts and Stations run that image,
the same the chart's own hub and station pods run.
"""

from __future__ import annotations

from typing import Any

import pytest

from smart import settings as smart_settings
from smart.contracts import manifests, reconcile
from smart.contracts.models import SmartContract, Station
from smart.operator import workloads
from tests.charts.conftest import REPO, env_of, find, render
from tests.charts.conftest import workloads as pods

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("image", "reference"),
    [
        (
            {"repository": "registry.shop.example/smart", "tag": "2026.12.1"},
            "registry.shop.example/smart:2026.12.1",
        ),
        (
            {"repository": "registry.shop.example/smart", "digest": DIGEST},
            f"registry.shop.example/smart@{DIGEST}",
        ),
        ({}, "ghcr.io/smart-aero/smart:0.1.0"),
    ],
)
def test_the_charts_image_reaches_the_daemonsets_the_operator_creates(
    image: dict[str, Any], reference: str, six_stations: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = render({**six_stations, "image": image})
    operator = find(objects, "Deployment", "smart-operator")["spec"]["template"]["spec"]["containers"][0]
    assert operator["image"] == reference
    chart_images = {
        c["image"]
        for _obj, pod in pods(objects)
        for c in pod["containers"]
        if "kubectl" not in c["image"] and "postgres" not in c["image"]
    }
    assert chart_images == {reference}

    monkeypatch.setenv("SMART_STATION_IMAGE", env_of(operator)["SMART_STATION_IMAGE"])
    monkeypatch.setenv("SMART_SETTINGS_FILE", "/nonexistent/smart.toml")
    config = smart_settings.load()
    loaded = [m.manifest for m in manifests.load([REPO / "contracts"])]
    contracts = [m for m in loaded if isinstance(m, SmartContract)]
    stations = [m for m in loaded if isinstance(m, Station)]
    built = [
        workloads.daemonset(w, namespace="smart", owners={}, image=config.station_image)
        for w in reconcile.workloads(contracts, stations)
    ]
    assert len(built) >= 10
    assert {d["spec"]["template"]["spec"]["containers"][0]["image"] for d in built} == {reference}


def test_without_the_setting_the_daemonsets_keep_the_manifests_image() -> None:
    loaded = [m.manifest for m in manifests.load([REPO / "contracts"])]
    contracts = [m for m in loaded if isinstance(m, SmartContract)]
    stations = [m for m in loaded if isinstance(m, Station)]
    (first, *_) = reconcile.workloads(contracts, stations)
    built = workloads.daemonset(first, namespace="smart", owners={}, image=None)
    assert built["spec"]["template"]["spec"]["containers"][0]["image"] == first.image
