"""The chart's Grafana provisioning (grafana.enabled): datasources, the dashboards, lint-clean and valid.

Rendered offline through helm-python-sdk as the chart's other tests are, for the bundled and an
external PostgreSQL; every object is validated for the Kubernetes version the README names.
"""

from __future__ import annotations

import json
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from smart.grafana import dashboards
from tests.charts.conftest import CHART, EXTERNAL, KUBERNETES_VERSION, NAMESPACE, find, render

PROMETHEUS = "http://prometheus-server.monitoring.svc"
ON: dict[str, Any] = {"grafana": {"enabled": True, "prometheus": {"url": PROMETHEUS}}}
EXTERNAL_ON: dict[str, Any] = {
    **EXTERNAL,
    "grafana": {"enabled": True, "prometheus": {"url": PROMETHEUS}, "postgresql": {"host": "pg.db.svc:5432"}},
}


def _datasources(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    config = find(objects, "ConfigMap", "smart-grafana-datasources")
    assert config["metadata"]["labels"]["grafana_datasource"] == "1"
    loaded = yaml.safe_load(config["data"]["smart-datasources.yaml"])
    return {d["uid"]: d for d in loaded["datasources"]}


@pytest.mark.parametrize("values", [ON, EXTERNAL_ON], ids=["bundled", "external"])
def test_grafana_provisioning_lints_clean_and_every_object_is_valid(values: dict[str, Any]) -> None:
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version="v1.30.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []
    for obj in render(values):
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_datasources_are_the_read_only_role_with_a_password_file_and_prometheus() -> None:
    objects = render(ON)
    sources = _datasources(objects)
    assert set(sources) == {dashboards.POSTGRES_UID, dashboards.PROMETHEUS_UID}
    pg = sources[dashboards.POSTGRES_UID]
    assert pg["type"] == "grafana-postgresql-datasource" and pg["user"] == "smart_grafana"
    assert pg["url"] == f"smart-postgresql.{NAMESPACE}.svc:5432"
    assert pg["secureJsonData"] == {"password": "$__file{/etc/secrets/smart-grafana-postgresql/password}"}
    assert pg["jsonData"]["database"] == "smart" and not pg["editable"]
    assert sources[dashboards.PROMETHEUS_UID]["url"] == PROMETHEUS
    policy = find(objects, "NetworkPolicy", "smart-grafana-postgresql")
    assert policy["spec"]["ingress"][0]["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "grafana"}}}
    ]
    external = _datasources(render(EXTERNAL_ON))[dashboards.POSTGRES_UID]
    assert external["url"] == "pg.db.svc:5432"
    assert not [o for o in render(EXTERNAL_ON) if o["metadata"]["name"] == "smart-grafana-postgresql"]


def test_the_dashboards_configmap_carries_the_generated_json_and_the_provider_points_at_it() -> None:
    objects = render(ON)
    config = find(objects, "ConfigMap", "smart-grafana-dashboards")
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config["data"] == dashboards.render()
    for text in config["data"].values():
        json.loads(text)
    provider = yaml.safe_load(
        find(objects, "ConfigMap", "smart-grafana-dashboards-provider")["data"]["smart-dashboards.yaml"]
    )
    (only,) = provider["providers"]
    assert only["options"]["path"] == "/var/lib/grafana/dashboards/smart" and only["folder"] == "SMART"
    assert only["disableDeletion"] and not only["allowUiUpdates"]


def test_grafana_is_off_by_default_and_refuses_to_render_without_prometheus() -> None:
    assert not [o for o in render({}) if "grafana" in o["metadata"]["name"]]
    with (
        helm.Chart.load(CHART) as chart,
        pytest.raises(Exception, match=r"grafana\.prometheus\.url is required"),
    ):
        chart.render({"grafana": {"enabled": True}}, name="smart", namespace=NAMESPACE, is_install=True)
    with helm.Chart.load(CHART) as chart, pytest.raises(Exception, match="grafana/postgresql/sslmode"):
        chart.render(
            {"grafana": {"enabled": True, "postgresql": {"sslmode": "maybe"}}},
            name="smart",
            namespace=NAMESPACE,
            is_install=True,
        )
