"""The chart's ``hubs:`` values: the three hub roles as Deployments of their own, rendered offline.

Each role runs ``smart hub run --role <role>``, signs in to the bundled hub NATS as its own user
with exactly the permissions of ``smart.bus.hub_roles`` (the NATS config the chart renders), gets
only its own passwords from the generated Secret (none in values), and only Business may be
reached from outside the release. Lint, Kubernetes validation and Pod Security of the same
installation run in ``test_chart.py`` (scenario ``hub-roles``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml
from typer.testing import CliRunner

from smart.bus import hub_roles
from smart.bus.hub_roles import HubRole
from smart.cli import app as cli
from smart.hub import database_roles, streams
from smart.hub.gathering import NODE_KEY_NAMES
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
        assert container["args"][:4] == ["hub", "run", "--role", role.value]
        env = env_of(container)
        assert env["SMART_NATS_URL"] == f"nats://smart-nats.{NAMESPACE}.svc:4222"  # no user: its own password
        assert env["SMART_SECRETS_DIR"] == "/var/lib/smart/secrets"
        (secrets,) = [v for v in pod["volumes"] if v["name"] == "role-secrets"]
        mounted = {item["key"] for item in secrets["secret"]["items"]}
        assert hub_roles.password_file(role) in mounted
        others = {hub_roles.password_file(r) for r in HubRole if r is not role}
        assert not mounted & others, f"{role}: another role's NATS password is mounted"
        (keys,) = [v["secret"] for v in pod["volumes"] if v["name"] == "hub-keys"]
        assert keys["secretName"] == "smart-keys"
        if role is HubRole.BUSINESS:  # none of the hub's keys: its own ledger node's only
            assert [item["key"] for item in keys["items"]] == [
                "feedback.key",
                "feedback.pub",
                "client-api.key",
                "client-api.pub",
            ]
        else:
            assert "items" not in keys
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


def _secrets_of(container: dict[str, Any], pod: dict[str, Any]) -> set[str]:
    """Every Secret ``container`` can read: through env (secretKeyRef) and through the volumes it mounts."""
    found = {
        str(e["valueFrom"]["secretKeyRef"]["name"]) + ":" + str(e["valueFrom"]["secretKeyRef"]["key"])
        for e in container.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    mounted = {m["name"] for m in container.get("volumeMounts", [])}
    for volume in pod["volumes"]:
        if volume["name"] in mounted and "secret" in volume:
            secret = volume["secret"]
            items = secret.get("items") or [{"key": "*"}]
            found |= {f"{secret['secretName']}:{item['key']}" for item in items}
    return found


def test_each_role_app_container_holds_only_its_own_login_the_migration_step_the_owners(
    installed: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    """The owner's URL (the PostgreSQL Secret's ``url``) reaches the ``migrate`` init container only;
    the app container mounts no Secret and runs on the connection string that step writes."""
    _values, objects = installed
    owner = "smart-postgresql:url"
    for role in HubRole:
        pod = find(objects, "Deployment", f"smart-hub-{role.value}")["spec"]["template"]["spec"]
        (app,) = pod["containers"]
        init = {c["name"]: c for c in pod["initContainers"]}
        assert list(init) == ["secrets", "migrate"]  # the NATS password copied first, then the owner's step
        migrate = init["migrate"]
        url_file = migrate["args"][migrate["args"].index("--url-file") + 1]
        assert migrate["args"][:4] == ["hub", "migrate", "--role", role.value]
        assert app["args"] == ["hub", "run", "--role", role.value, "--database-url-file", url_file]
        assert url_file.startswith(env_of(app)["SMART_SECRETS_DIR"] + "/")  # on the role's own volume
        own_login = f"smart-hub-roles:{database_roles.password_file(role)}"
        grafana = f"smart-hub-roles:{database_roles.GRAFANA_PASSWORD_FILE}"
        assert _secrets_of(migrate, pod) == {owner, own_login, grafana}, role
        assert _secrets_of(app, pod) == set(), f"{role}: the app container holds a Secret"
        assert "SMART_DATABASE_URL" not in env_of(app)
        held = {s for s in _secrets_of(init["secrets"], pod) if not s.startswith("smart-keys:")}
        assert held == {f"smart-hub-roles:{hub_roles.password_file(role)}"}  # and the keys (above)
        # The migration step reads its passwords where they are mounted: nothing of them is copied.
        assert env_of(migrate)["SMART_SECRETS_DIR"] == "/etc/smart/migrate-secrets"
    for deployment in (o for o in objects if o["kind"] in {"Deployment", "StatefulSet", "Job"}):
        pod = deployment["spec"]["template"]["spec"]
        holders = [
            c["name"]
            for c in [*pod.get("initContainers", []), *pod["containers"]]
            if owner in _secrets_of(c, pod)
        ]
        name = deployment["metadata"]["name"]
        assert holders in ([], ["migrate"]) or name == "smart-postgresql", (name, holders)


def test_the_passwords_are_generated_into_a_secret_never_taken_from_values(
    installed: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    values, objects = installed
    secret = find(objects, "Secret", "smart-hub-roles")["stringData"]
    wanted = {hub_roles.password_file(r) for r in HubRole} | {
        "postgres-smart_vault.password",
        "postgres-smart_business.password",
        "ledger-app.password",
        database_roles.GRAFANA_PASSWORD_FILE,
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
    assert generated.HUB_LEDGER_NODES_FILE.read_text() == generated.hub_ledger_nodes_template(), (
        "run python -m smart.provision.chart"
    )


def _bindings_of(objects: list[dict[str, Any]], account: str) -> list[dict[str, Any]]:
    return [
        o
        for o in objects
        if o["kind"] in ("RoleBinding", "ClusterRoleBinding")
        and any(s.get("kind") == "ServiceAccount" and s["name"] == account for s in o.get("subjects", []))
    ]


APPROVALS_ONLY = [
    {"apiGroups": ["smart.aero"], "resources": ["contractapprovals"], "verbs": ["create", "get", "list"]}
]


def test_only_the_vault_holds_an_api_token_and_it_may_only_create_and_read_contract_approvals(
    installed: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    _values, objects = installed
    for role in HubRole:
        name = f"smart-hub-{role.value}"
        vault = role is HubRole.VAULT
        account = find(objects, "ServiceAccount", name)
        pod = find(objects, "Deployment", name)["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == name
        assert account["automountServiceAccountToken"] is vault, role
        assert pod["automountServiceAccountToken"] is vault, role
        (container,) = pod["containers"]
        env = env_of(container)
        # The approval page creates ContractApprovals in the release's namespace; no other role asks.
        assert env.get("SMART_CONTRACT_APPROVAL_NAMESPACE") == (NAMESPACE if vault else None), role
        bindings = _bindings_of(objects, name)
        assert [b["metadata"]["name"] for b in bindings] == (["smart-hub-approvals"] if vault else []), role
    (binding,) = _bindings_of(objects, "smart-hub-vault")
    assert binding["kind"] == "RoleBinding" and binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "smart-hub-approvals",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "smart-hub-vault", "namespace": NAMESPACE}
    ]
    assert find(objects, "Role", "smart-hub-approvals")["rules"] == APPROVALS_ONLY


def test_the_single_hub_holds_the_same_approvals_role_and_no_role_runs_without_the_vault() -> None:
    objects = render({})
    pod = find(objects, "Deployment", "smart-hub")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True
    assert env_of(pod["containers"][0])["SMART_CONTRACT_APPROVAL_NAMESPACE"] == NAMESPACE
    (binding,) = _bindings_of(objects, "smart-hub")
    assert binding["roleRef"]["name"] == "smart-hub-approvals"
    assert find(objects, "Role", "smart-hub-approvals")["rules"] == APPROVALS_ONLY
    without_vault = render({"hubs": {"floor": {"enabled": True}, "business": {"enabled": True}}})
    assert not [o for o in without_vault if o["metadata"]["name"] == "smart-hub-approvals"]


def test_approvers_groups_are_bound_to_the_contract_approver_role_and_checked_by_the_schema() -> None:
    objects = render({"approvers": {"groups": ["shop-level-3", "shop-quality"]}})
    binding = find(objects, "RoleBinding", "smart-contract-approver")
    assert binding["roleRef"]["name"] == "smart-contract-approver"
    assert binding["subjects"] == [
        {"kind": "Group", "name": group, "apiGroup": "rbac.authorization.k8s.io"}
        for group in ("shop-level-3", "shop-quality")
    ]
    with pytest.raises(LookupError):  # no groups: the Role only, bound to nobody
        find(render({}), "RoleBinding", "smart-contract-approver")
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError) as refused:
        chart.render({"approvers": {"groups": [""]}}, name="smart", namespace=NAMESPACE, is_install=True)
    assert "at '/approvers/groups/0'" in str(refused.value)


def test_a_hub_waiting_for_the_ledger_stream_is_not_killed_by_its_liveness_probe(
    installed: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    _values, objects = installed
    pods = [find(objects, "Deployment", f"smart-hub-{r.value}") for r in HubRole]
    pods.append(find(render({}), "Deployment", "smart-hub"))
    for deployment in pods:
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        startup = container["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] > streams.LEDGER_PATIENCE_S


def test_smart_hub_keys_makes_every_key_the_role_pods_mount_and_prints_the_secret(
    installed: tuple[dict[str, Any], list[dict[str, Any]]], tmp_path: Path
) -> None:
    _values, objects = installed
    done = CliRunner().invoke(cli, ["hub", "keys", "--out", str(tmp_path)])
    assert done.exit_code == 0, done.output
    made = {p.name for p in tmp_path.iterdir()}
    command = done.output.strip()
    assert command.startswith("kubectl -n <namespace> create secret generic smart-keys ")
    for name in made:  # every key made goes into the Secret, under its own file name
        assert f"--from-file={name}={tmp_path / name}" in command
    for role in HubRole:
        pod = find(objects, "Deployment", f"smart-hub-{role.value}")["spec"]["template"]["spec"]
        (keys,) = [v["secret"] for v in pod["volumes"] if v["name"] == "hub-keys"]
        assert {item["key"] for item in keys.get("items", [])} <= made, role
    for node in (n for nodes in hub_roles.LEDGER_NODES.values() for n in nodes):
        assert f"{NODE_KEY_NAMES.get(node, node)}.pub" in made, node  # what the Floor checks them with
    assert {"hub.key", "smart-id.key"} <= made


def _mounted_contracts(deployment: dict[str, Any]) -> tuple[str | None, str | None]:
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    folder = env_of(container).get("SMART_CONTRACTS_DIR")
    if "contracts" not in mounts:
        return folder, None
    assert mounts["contracts"]["mountPath"] == folder and mounts["contracts"]["readOnly"] is True
    return folder, volumes["contracts"]["configMap"]["name"]


def test_the_floor_reads_the_contracts_configmap_as_its_contracts_folder(
    six_stations: dict[str, Any],
) -> None:
    """MaintenanceHub's intervals and the audit packet's rules (the Floor's) come from the contracts as
    files: a ConfigMap of the applied manifests, mounted read-only where SMART_CONTRACTS_DIR says."""
    objects = render({**six_stations, "hubs": HUB_ROLES, "contracts": {"configMap": "smart-contracts"}})
    floor = _mounted_contracts(find(objects, "Deployment", "smart-hub-floor"))
    assert floor == ("/etc/smart/contracts", "smart-contracts")
    for role in ("vault", "business"):  # neither runs a service that reads them
        assert _mounted_contracts(find(objects, "Deployment", f"smart-hub-{role}")) == (None, None)
    single = render({"contracts": {"configMap": "smart-contracts"}})
    assert _mounted_contracts(find(single, "Deployment", "smart-hub")) == (
        "/etc/smart/contracts",
        "smart-contracts",
    )
    assert _mounted_contracts(find(render({}), "Deployment", "smart-hub")) == (None, None)
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError) as refused:
        chart.render(
            {"contracts": {"configMap": "Not_A_Name"}}, name="smart", namespace=NAMESPACE, is_install=True
        )
    assert "at '/contracts/configMap'" in str(refused.value)


def test_the_single_hub_migrates_in_an_init_container_and_runs_on_its_own_login() -> None:
    pod = find(render({}), "Deployment", "smart-hub")["spec"]["template"]["spec"]
    (app,) = pod["containers"]
    init = {c["name"]: c for c in pod["initContainers"]}
    migrate = init["migrate"]
    url_file = migrate["args"][migrate["args"].index("--url-file") + 1]
    assert migrate["args"][:4] == ["hub", "migrate", "--role", "all"]
    assert app["args"] == ["hub", "run", "--role", "all", "--database-url-file", url_file]
    owner = "smart-postgresql:url"
    assert owner in _secrets_of(migrate, pod)
    assert owner not in _secrets_of(app, pod) and "SMART_DATABASE_URL" not in env_of(app)
