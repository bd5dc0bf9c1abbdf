"""The chart's ``hubs:`` values: the three hub roles as Deployments of their own, rendered offline.

Each role runs ``smart hub run --role <role>``, signs in to the bundled hub NATS as its own user
with exactly the permissions of ``smart.bus.hub_roles`` (the NATS config the chart renders), gets
only its own passwords from the generated Secret (none in values), and only Business may be
reached from outside the release. Lint, Kubernetes validation and Pod Security of the same
installation run in ``test_chart.py`` (scenario ``hub-roles``).
"""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest
import yaml

from smart.bus import hub_roles
from smart.bus.hub_roles import HubRole
from smart.provision import chart as generated
from tests.charts.conftest import CHART, HUB_ROLES, NAMESPACE, env_of, find, render


@pytest.fixture(scope="module")
def installed(six_stations: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    values = {**six_stations, "hubs": HUB_ROLES}
    return values, render(values)


def test_each_enabled_role_is_a_deployment_running_its_role_with_a_service(
    installed: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    _values, objects = installed
    for role in HubRole:
        name = f"smart-hub-{role.value}"
        deployment = find(objects, "Deployment", name)
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"] == ["hub", "run", "--role", role.value]
        env = env_of(container)
        assert env["SMART_NATS_URL"] == f"nats://smart-nats.{NAMESPACE}.svc:4222"  # no user: its own password
        assert env["SMART_SECRETS_DIR"] == "/var/lib/smart/secrets"
        (secrets,) = [v for v in pod["volumes"] if v["name"] == "role-secrets"]
        mounted = {item["key"] for item in secrets["secret"]["items"]}
        assert hub_roles.password_file(role) in mounted
        others = {hub_roles.password_file(r) for r in HubRole if r is not role}
        assert not mounted & others, f"{role}: another role's NATS password is mounted"
        keys = [v for v in pod["volumes"] if v["name"] == "hub-keys"]
        assert bool(keys) is (role is not HubRole.BUSINESS), "Business holds none of the hub's keys"
        service = find(objects, "Service", name)
        assert service["spec"]["selector"]["app.kubernetes.io/component"] == f"hub-{role.value}"
    assert find(objects, "Deployment", "smart-hub-business")["spec"]["replicas"] == 2
    assert find(objects, "Service", "smart-hub-vault")["spec"]["type"] == "ClusterIP"
    assert find(objects, "Service", "smart-hub-floor")["spec"]["type"] == "ClusterIP"
    assert find(objects, "Service", "smart-hub-business")["spec"]["type"] == "LoadBalancer"
    ingress = find(objects, "Ingress", "smart-hub-business")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "smart-hub-business" and ingress["spec"]["tls"][0]["secretName"] == "smart-tls"
    assert [o for o in objects if o["kind"] == "Ingress"] == [ingress]
    with pytest.raises(LookupError):  # never beside the single hub: one ledger intake
        find(objects, "Deployment", "smart-hub")


def test_the_passwords_are_generated_into_a_secret_never_taken_from_values(
    installed: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    values, objects = installed
    secret = find(objects, "Secret", "smart-hub-roles")["stringData"]
    wanted = {hub_roles.password_file(r) for r in HubRole} | {
        "postgres-smart_vault.password",
        "postgres-smart_business.password",
        "ledger-app.password",
    }
    assert set(secret) == wanted
    assert all(len(v) == 32 for v in secret.values())
    assert "password" not in yaml.safe_dump(values).lower()


def test_the_hub_nats_lists_each_role_user_with_exactly_the_permissions_of_hub_roles(
    installed: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    values, objects = installed
    config = find(objects, "ConfigMap", "smart-nats-config")["data"]["nats-server.conf"]
    stations = [s["id"] for s in values["stations"]]
    lines = {line.strip() for line in config.splitlines()}
    nats = find(objects, "StatefulSet", "smart-nats")["spec"]["template"]["spec"]["containers"][0]
    for role in HubRole:
        (line,) = [x for x in lines if x.startswith(f'{{user: "{hub_roles.user_name(role)}"')]
        variable = f"SMART_HUB_{role.value.upper()}_NATS_PASSWORD"
        assert f"password: ${variable}," in line
        assert env_of(nats)[variable]["secretKeyRef"]["key"] == hub_roles.password_file(role)
        granted = yaml.safe_load(line.replace(f"${variable}", '"x"'))["permissions"]
        expected = hub_roles.permissions(role, stations)
        assert granted["publish"]["allow"] == list(expected.publish), role
        assert granted["subscribe"]["allow"] == list(expected.subscribe), role
        assert granted.get("allow_responses", False) is expected.allow_responses
    assert "no_auth_user" not in config


def test_only_business_may_be_reached_from_outside_the_release(
    installed: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    _values, objects = installed
    policies = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "NetworkPolicy"}
    for role in (HubRole.VAULT, HubRole.FLOOR):
        (rule,) = policies[f"smart-hub-{role.value}"]["ingress"]
        assert rule["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/instance": "smart"}}}]
    (business,) = policies["smart-hub-business"]["ingress"]
    assert "from" not in business and business["ports"] == [{"protocol": "TCP", "port": 8483}]


def test_the_defaults_run_no_hub_role_and_list_no_role_user() -> None:
    objects = render({})
    roles = tuple(f"smart-hub-{r.value}" for r in HubRole)
    assert not [o for o in objects if o["metadata"]["name"].startswith(roles)]
    assert find(objects, "Deployment", "smart-hub")  # the single hub (role all) instead
    config = find(objects, "ConfigMap", "smart-nats-config")["data"]["nats-server.conf"]
    assert "hub-vault" not in config


@pytest.mark.parametrize(
    ("hubs", "path"),
    [
        ({"vault": {"replicas": 2}}, "/hubs/vault/replicas"),
        ({"floor": {"replicas": 2}}, "/hubs/floor/replicas"),
        ({"business": {"enabled": True, "ingress": {"enabled": True}}}, "/hubs/business/ingress"),
        ({"vault": {"service": {"type": "LoadBalancer"}}}, "/hubs/vault"),
    ],
)
def test_the_schema_refuses_a_second_writer_an_ingress_without_host_and_an_exposed_vault(
    hubs: dict[str, Any], path: str
) -> None:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError) as refused:
        chart.render({"hubs": hubs}, name="smart", namespace=NAMESPACE, is_install=True)
    assert f"at '{path}" in str(refused.value)


def test_the_hub_role_permissions_file_is_current() -> None:
    assert generated.HUB_ROLES_FILE.read_text() == generated.hub_roles_template(), (
        "run python -m smart.provision.chart"
    )
