"""The chart's scrape configuration: each pod serving ``/metrics`` says where; Prometheus may reach it.

Rendered offline (helm-python-sdk). Each pod template of the hub, the hub roles, the station agents
and the operator carries ``prometheus.io/scrape|port|path`` naming the port its process serves
``/metrics`` on (read off the container's own arguments and environment, not a copy of the
annotation); the operator's module DaemonSets (built by ``smart.operator.workloads``) the same.
With ``metrics.serviceMonitor.enabled`` the PodMonitors select exactly those pods, by the port name
they serve on; off by default. With NetworkPolicies, the operator and module pods take a scrape of
their metrics port and nothing else.
"""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest

from smart.contracts.reconcile import Workload
from smart.operator import workloads as module_workloads
from tests.charts.conftest import CHART, NAMESPACE, env_of, render, workloads

SCENARIOS = ["defaults", "six-stations", "hub-roles"]
#: Pods of the release that serve no /metrics of SMART's (NATS and PostgreSQL have their own exporters).
NOT_SMART_PROCESSES = {"nats", "postgresql"}
MONITORED = {
    "metrics": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "scrapeFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
    }
}


def metrics_port(component: str, pod: dict[str, Any]) -> tuple[str, int]:
    """(container port name, number) where the pod's process serves /metrics, from its own command line."""
    containers = {c["name"]: c for c in pod["containers"]}
    if component == "operator":
        container = containers["operator"]
        args = container["args"]
        number = int(args[args.index("--metrics-port") + 1])
    elif component == "station":
        container = containers["agent"]  # the station's web app: kiosk, /healthz, /metrics
        number = int(env_of(container)["SMART_NODE_WEB_PORT"])
    else:  # the hub and each hub role: its web app serves /metrics beside its pages
        (container,) = pod["containers"]
        number = next(p["containerPort"] for p in container["ports"] if p["name"] == "http")
    (name,) = [p["name"] for p in container["ports"] if p["containerPort"] == number]
    return name, number


def template_pods(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(component, pod template metadata, pod spec) of every long-running workload of the release."""
    return [
        (
            obj["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"],
            obj["spec"]["template"]["metadata"],
            spec,
        )
        for obj, spec in workloads(objects)
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet")
    ]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_pod_that_serves_metrics_is_annotated_with_the_port_it_serves_them_on(
    scenario: str, scenarios: dict[str, dict[str, Any]]
) -> None:
    seen = set()
    for component, metadata, pod in template_pods(render(scenarios[scenario])):
        if component in NOT_SMART_PROCESSES:
            assert "prometheus.io/scrape" not in metadata.get("annotations", {}), component
            continue
        seen.add(component)
        annotations = metadata["annotations"]
        _, number = metrics_port(component, pod)
        assert annotations["prometheus.io/scrape"] == "true", component
        assert annotations["prometheus.io/path"] == "/metrics", component
        assert annotations["prometheus.io/port"] == str(number), component
    expected = {"hub", "operator"}
    if scenario != "defaults":
        expected.add("station")
    if scenario == "hub-roles":
        expected = (expected - {"hub"}) | {"hub-vault", "hub-floor", "hub-business"}  # the roles instead
    assert expected <= seen


def module_daemonset() -> dict[str, Any]:
    workload = Workload(
        module="gatekeeper",
        image="smart-station:test",
        stations=("pt-1",),
        node_selectors=({"smart.aero/station": "pt-1"},),
        contracts=("penetrant",),
    )
    return module_workloads.daemonset(workload, namespace=NAMESPACE, owners={})


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def test_no_podmonitor_by_default_the_crd_may_not_exist() -> None:
    assert not [o for o in render() if o["kind"] in ("PodMonitor", "ServiceMonitor")]


def test_the_podmonitors_select_every_metrics_pod_once_by_the_port_it_serves_on(
    scenarios: dict[str, dict[str, Any]],
) -> None:
    objects = render({**scenarios["hub-roles"], **MONITORED})
    monitors = [o for o in objects if o["kind"] == "PodMonitor"]
    assert monitors and all(o["apiVersion"] == "monitoring.coreos.com/v1" for o in monitors)
    module = module_daemonset()
    pods = [(c, m, p) for c, m, p in template_pods(objects) if c not in NOT_SMART_PROCESSES]
    pods.append(("module", module["spec"]["template"]["metadata"], module["spec"]["template"]["spec"]))
    for component, metadata, pod in pods:
        selecting = [m for m in monitors if selects(m["spec"]["selector"], metadata["labels"])]
        assert len(selecting) == 1, (component, [m["metadata"]["name"] for m in selecting])
        (monitor,) = selecting
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        assert endpoint["path"] == "/metrics" and endpoint["interval"] == "30s"
        if component == "module":
            container = pod["containers"][0]
            number = int(env_of(container)["SMART_MODULE_METRICS_PORT"])
            (name,) = [p["name"] for p in container["ports"] if p["containerPort"] == number]
        else:
            name, number = metrics_port(component, pod)
        assert endpoint["port"] == name, component
        assert metadata["annotations"]["prometheus.io/port"] == str(number)
    # NATS and PostgreSQL pods are selected by none.
    for component, metadata, _ in template_pods(objects):
        if component in NOT_SMART_PROCESSES:
            assert not [m for m in monitors if selects(m["spec"]["selector"], metadata["labels"])]


def test_the_chart_with_podmonitors_lints_clean(scenarios: dict[str, dict[str, Any]]) -> None:
    report = helm.lint(CHART, {**scenarios["six-stations"], **MONITORED}, strict=True, namespace=NAMESPACE)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []
    bad = helm.lint(
        CHART, {"metrics": {"serviceMonitor": {"enabled": True, "interval": "often"}}}, strict=True
    )
    assert any("interval" in str(m) for m in bad["messages"] + bad["errors"]), bad


def test_the_operator_and_module_pods_take_a_scrape_of_their_metrics_port_and_nothing_else() -> None:
    objects = render(MONITORED)
    policies = {o["metadata"]["name"]: o for o in objects if o["kind"] == "NetworkPolicy"}
    operator, modules = policies["smart-operator"], policies["smart-modules"]
    assert modules["spec"]["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/managed-by": "smart-operator"}
    }
    assert selects(
        modules["spec"]["podSelector"], module_daemonset()["spec"]["template"]["metadata"]["labels"]
    )
    for policy in (operator, modules):
        (rule,) = policy["spec"]["ingress"]
        assert rule["ports"] == [{"protocol": "TCP", "port": "metrics"}]
        assert rule["from"] == MONITORED["metrics"]["scrapeFrom"]
    (default_rule,) = {o["metadata"]["name"]: o for o in render() if o["kind"] == "NetworkPolicy"}[
        "smart-operator"
    ]["spec"]["ingress"]
    assert "from" not in default_rule  # no peers given: any source, that port only
