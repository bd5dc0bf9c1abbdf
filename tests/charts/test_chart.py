"""`helm lint` and `helm template` of charts/smart offline: valid manifests, schema, Pod Security, networking.

Rendered through helm-python-sdk (Helm v4's Go SDK in a shared library: no helm binary, no cluster)
for the three installations the issue names: the defaults, external PostgreSQL and NATS, and six
stations. Every rendered manifest is validated against the Kubernetes version the README names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from smart.contracts import semantics
from smart.contracts.models import SmartContract
from smart.keys import KeyStore
from smart.provision import chart as generated
from tests import pod_security
from tests.charts.conftest import (
    CHART,
    KUBERNETES_VERSION,
    NAMESPACE,
    REPO,
    env_of,
    find,
    render,
    station_value,
    workloads,
)

SCENARIOS = ["defaults", "external", "six-stations", "hub-roles"]
NEWEST_KUBERNETES = "1.37"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_helm_lint_finds_no_warning_or_error(scenario: str, scenarios: dict[str, dict[str, Any]]) -> None:
    report = helm.lint(CHART, scenarios[scenario], strict=True, namespace=NAMESPACE, kube_version="v1.30.0")
    assert report["errors"] == []
    # Severity 1 is information (Helm suggests an icon); 2 warnings and 3 errors fail.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_rendered_manifest_is_valid_for_the_kubernetes_version_the_readme_names(
    scenario: str, scenarios: dict[str, dict[str, Any]]
) -> None:
    objects = render(scenarios[scenario])
    assert len(objects) > 10
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        kubernetes_validate.validate(obj, NEWEST_KUBERNETES, strict=True)  # and the newest schemas here
    readme = (REPO / "README.md").read_text()
    assert f"Kubernetes {KUBERNETES_VERSION}" in readme


def test_the_defaults_render_the_operator_hub_nats_and_postgresql_and_no_station() -> None:
    objects = render()
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert {
        ("Deployment", "smart-operator"),
        ("Deployment", "smart-hub"),
        ("StatefulSet", "smart-nats"),
        ("StatefulSet", "smart-postgresql"),
    } <= kinds
    assert not [o for o in objects if o["kind"] == "DaemonSet"]
    operator = find(objects, "Deployment", "smart-operator")
    assert operator["spec"]["replicas"] == 1 and operator["spec"]["strategy"] == {"type": "Recreate"}
    container = operator["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:4] == ["operator", "run", "--namespace", NAMESPACE]
    volumes = {v["name"]: v for v in operator["spec"]["template"]["spec"]["volumes"]}
    assert volumes["state"]["persistentVolumeClaim"]["claimName"] == "smart-operator-state"
    assert {"name": "state", "mountPath": "/var/lib/smart"} in container["volumeMounts"]
    nats = find(objects, "StatefulSet", "smart-nats")
    assert nats["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    config = find(objects, "ConfigMap", "smart-nats-config")["data"]["nats-server.conf"]
    assert "domain: hub" in config and 'store_dir: "/data/jetstream"' in config


def test_external_postgresql_and_nats_render_neither_server_and_read_their_urls_from_the_secrets(
    scenarios: dict[str, dict[str, Any]],
) -> None:
    objects = render(scenarios["external"])
    assert not [o for o in objects if o["kind"] == "StatefulSet"]
    pod = find(objects, "Deployment", "smart-hub")["spec"]["template"]["spec"]
    env = env_of(pod["containers"][0])
    assert env["SMART_NATS_URL"] == {"secretKeyRef": {"name": "smart-nats-urls", "key": "hub-url"}}
    (migrate,) = [c for c in pod["initContainers"] if c["name"] == "migrate"]  # the owner's step alone
    assert env_of(migrate)["SMART_DATABASE_URL"] == {"secretKeyRef": {"name": "smart-db-url", "key": "url"}}
    operator = find(objects, "Deployment", "smart-operator")["spec"]["template"]["spec"]["containers"][0]
    assert env_of(operator)["SMART_NATS_URL"] == {
        "secretKeyRef": {"name": "smart-nats-urls", "key": "operator-url"}
    }


def test_six_stations_get_a_daemonset_each_pinned_to_their_node_with_their_own_store_identity_and_nkey(
    six_stations: dict[str, Any],
) -> None:
    objects = render(six_stations)
    for station in six_stations["stations"]:
        sid = station["id"]
        daemonset = find(objects, "DaemonSet", f"smart-station-{sid}")
        pod = daemonset["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {"smart.aero/station": sid}
        leaf, agent = pod["containers"]
        assert agent["args"] == ["node", "run", "--station", sid, "--modules", "none"]
        assert env_of(leaf)["SMART_STATION_NKEY"] == {
            "secretKeyRef": {"name": f"smart-station-{sid}", "key": "seed"}
        }
        store = {v["name"]: v for v in pod["volumes"]}["store"]
        assert store == {
            "name": "store",
            "persistentVolumeClaim": {"claimName": f"smart-station-{sid}-store"},
        }
        volume = find(objects, "PersistentVolume", f"{NAMESPACE}-smart-station-{sid}-store")["spec"]
        assert (
            volume["local"] == {"path": "/var/lib/smart"}
            and volume["persistentVolumeReclaimPolicy"] == "Retain"
        )
        assert volume["claimRef"] == {"namespace": NAMESPACE, "name": f"smart-station-{sid}-store"}
        (term,) = volume["nodeAffinity"]["required"]["nodeSelectorTerms"]
        assert term["matchExpressions"] == [{"key": "smart.aero/station", "operator": "In", "values": [sid]}]
        claim = find(objects, "PersistentVolumeClaim", f"smart-station-{sid}-store")["spec"]
        assert claim["volumeName"] == f"{NAMESPACE}-smart-station-{sid}-store"
        env = env_of(agent)
        assert env["SMART_NODE_STATION"] == sid and env["SMART_KIOSK_HOST"] == "0.0.0.0"
        assert env["SMART_NODE_LEAF_PORT"] == str(leaf["ports"][0]["containerPort"])
        kiosk = find(objects, "Service", f"smart-station-{sid}-kiosk")["spec"]
        assert kiosk["selector"]["smart.aero/station"] == sid and kiosk["ports"][0]["targetPort"] == "kiosk"
        assert agent["ports"] == [{"name": "kiosk", "containerPort": int(env["SMART_NODE_WEB_PORT"])}]
        conf = find(objects, "ConfigMap", f"smart-station-{sid}-leaf")["data"]["leaf.conf"]
        assert f'domain: "{sid}"' in conf and "nkey: $SMART_STATION_NKEY" in conf
    service = find(objects, "Service", "smart-station-leaf")
    assert service["spec"]["internalTrafficPolicy"] == "Local"


def test_a_station_in_systemd_mode_gets_no_pods_but_still_its_hub_nats_user(
    six_stations: dict[str, Any],
) -> None:
    stations = [dict(s, mode="systemd") if s["id"] == "pt-1" else s for s in six_stations["stations"]]
    objects = render({"stations": stations})
    assert "smart-station-pt-1" not in {o["metadata"]["name"] for o in objects if o["kind"] == "DaemonSet"}
    config = find(objects, "ConfigMap", "smart-nats-config")["data"]["nats-server.conf"]
    assert stations[0]["nkeyPublic"] in config


def test_any_station_id_is_placed_by_its_own_identity(chart_keys: KeyStore) -> None:
    """pt-2 is no station of the simulated floor: its pod is still placed, as pt-2, on pt-2's node."""
    objects = render({"stations": [station_value("pt-2", chart_keys)]})
    pod = find(objects, "DaemonSet", "smart-station-pt-2")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"smart.aero/station": "pt-2"}
    assert env_of(pod["containers"][1])["SMART_NODE_STATION"] == "pt-2"
    conf = find(objects, "ConfigMap", "smart-station-pt-2-leaf")["data"]["leaf.conf"]
    assert 'domain: "pt-2"' in conf


@pytest.mark.parametrize(
    ("values", "path"),
    [
        ({"nats": {"persistence": {"size": 5}}}, "/nats/persistence/size"),
        ({"hub": {"replicas": 3}}, "/hub"),
        ({"image": {"digest": "latest"}}, "/image/digest"),
        (
            {"stations": [{"id": "PT 1", "nodeSelector": {"a": "b"}, "nkeyPublic": "U" + "A" * 55}]},
            "/stations/0/id",
        ),
        (
            {"stations": [{"id": "pt-1", "nodeSelector": {"a": "b"}, "nkeyPublic": "SUAAAA"}]},
            "/stations/0/nkeyPublic",
        ),
        ({"stations": [{"id": "pt-1", "nkeyPublic": "U" + "A" * 55}]}, "/stations/0"),
        ({"nats": {"external": {"url": "nats://x:4222"}}}, "/nats/external/existingSecret"),
        ({"postgresql": {"password": "hunter2"}}, "/postgresql"),
        ({"nats": {"leafnodeTls": {"secretName": "hub-tls"}}}, "/nats/leafnodeTls/caConfigMap"),
    ],
)
def test_the_schema_refuses_a_wrong_value_naming_its_path(values: dict[str, Any], path: str) -> None:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError) as refused:
        chart.render(values, name="smart", namespace=NAMESPACE, is_install=True)
    assert f"at '{path}'" in str(refused.value)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_pod_has_the_restricted_pod_security_fields(
    scenario: str, scenarios: dict[str, dict[str, Any]]
) -> None:
    pods = list(workloads(render(scenarios[scenario])))
    assert pods
    for obj, pod in pods:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] > 0, where
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, where
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            assert not pod.get(key), where
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            context = container["securityContext"]
            name = f"{where} container {container['name']}"
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context.get("privileged", False) is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert "ports" not in container or all("hostPort" not in p for p in container["ports"]), name
        assert [v for v in pod.get("volumes", []) if "hostPath" in v] == [], where
        assert pod_security.restricted(pod) == [], where  # the namespace can enforce restricted
    readme = (REPO / "README.md").read_text()  # and the install section has the namespace enforce it
    assert "kubectl label namespace smart pod-security.kubernetes.io/enforce=restricted" in readme


def _pods_labelled(objects: list[dict[str, Any]], label: str) -> set[str]:
    found = set()
    for obj, _pod in workloads(objects):
        labels = (
            obj["spec"]["template"]["metadata"]["labels"]
            if obj["kind"] != "Pod"
            else obj["metadata"]["labels"]
        )
        if labels.get(label) == "true":
            found.add(f"{obj['kind']}/{obj['metadata']['name']}")
    return found


def test_network_policies_let_only_hub_pods_reach_nats_stations_its_leafnodes_and_the_hub_postgresql(
    six_stations: dict[str, Any],
) -> None:
    values = {**six_stations, "nats": {"leafnodeFrom": ["192.168.40.0/24"]}}
    objects = render(values)
    policies = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "NetworkPolicy"}
    assert set(policies) == {
        "smart-nats",
        "smart-postgresql",
        "smart-operator",
        "smart-modules",
        "smart-hub",
        "smart-stations",
    }
    nats = policies["smart-nats"]
    assert nats["policyTypes"] == ["Ingress"]
    client, leafnodes = nats["ingress"]
    assert client["ports"] == [{"protocol": "TCP", "port": 4222}]
    assert client["from"] == [
        {
            "podSelector": {
                "matchLabels": {"app.kubernetes.io/instance": "smart", "smart.aero/nats-client": "true"}
            }
        }
    ]
    assert leafnodes["ports"] == [{"protocol": "TCP", "port": 7422}]
    assert leafnodes["from"][1] == {"ipBlock": {"cidr": "192.168.40.0/24"}}
    assert _pods_labelled(objects, "smart.aero/nats-client") == {
        "Deployment/smart-operator",
        "Deployment/smart-hub",
    }
    assert _pods_labelled(objects, "smart.aero/station-leaf") == {
        f"DaemonSet/smart-station-{s['id']}" for s in six_stations["stations"]
    }
    (postgres,) = policies["smart-postgresql"]["ingress"]
    assert postgres["ports"] == [{"protocol": "TCP", "port": 5432}]
    assert _pods_labelled(objects, "smart.aero/postgresql-client") == {"Deployment/smart-hub"}
    # the operator takes a scrape of its metrics port only (tests/charts/test_metrics_chart.py)
    assert policies["smart-operator"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": "metrics"}]}]
    assert policies["smart-hub"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8480}]}]
    assert policies["smart-stations"]["ingress"] == [
        {
            "from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/managed-by": "smart-operator"}}}],
            "ports": [{"protocol": "TCP", "port": "leaf"}],
        },
        {"ports": [{"protocol": "TCP", "port": "kiosk"}]},  # the kiosk, for the floor's screens
    ]


def test_every_station_user_of_the_hub_nats_has_exactly_the_permissions_of_stationauth(
    six_stations: dict[str, Any],
) -> None:
    config = find(render(six_stations), "ConfigMap", "smart-nats-config")["data"]["nats-server.conf"]
    users = [yaml.safe_load(line) for line in config.splitlines() if line.strip().startswith('{"allowed')]
    assert len(users) == 6
    by_key = {user["nkey"]: user for user in users}
    for station in six_stations["stations"]:
        user = by_key[station["nkeyPublic"]]
        expected = generated.station_permissions(station["id"])
        assert user["allowed_connection_types"] == ["LEAFNODE"]
        assert user["permissions"]["publish"]["allow"] == list(expected.publish)
        assert user["permissions"]["subscribe"]["allow"] == list(expected.subscribe)
    assert "no_auth_user" not in config


def test_the_charts_generated_files_are_current() -> None:
    assert generated.PERMISSIONS_FILE.read_text() == generated.permissions_template(), (
        "run python -m smart.provision.chart"
    )
    assert generated.FLOOR_FILE.read_text() == generated.floor_template(), (
        "run python -m smart.provision.chart"
    )


def test_the_charts_crds_are_the_top_level_crds_byte_for_byte() -> None:
    top = sorted(p.name for p in (REPO / "crds").glob("*.yaml"))
    assert sorted(p.name for p in (CHART / "crds").glob("*.yaml")) == top
    for name in top:
        assert (CHART / "crds" / name).read_bytes() == (REPO / "crds" / name).read_bytes(), name


def _rules(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: sorted(v) for k, v in rule.items()} for rule in doc["rules"]]


def test_the_operator_rbac_is_the_least_privilege_role_of_deploy_rule_for_rule() -> None:
    deployed = [
        d for p in sorted((REPO / "deploy").glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d
    ]
    objects = render()
    for kind in ("Role", "ClusterRole"):
        (mine,) = [o for o in objects if o["kind"] == kind and "operator" in o["metadata"]["name"]]
        (theirs,) = [d for d in deployed if d["kind"] == kind]
        assert _rules(mine) == _rules(theirs), kind
    # No station configured: no helm test rendered (a contract selecting no station is never Ready).
    assert not [o for o in objects if o["metadata"]["name"] == "smart-test"]


def test_helm_test_applies_an_audit_contract_for_a_configured_station_and_waits_for_ready(
    six_stations: dict[str, Any],
) -> None:
    objects = render(six_stations)
    pod = find(objects, "Pod", "smart-test")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    apply, wait = pod["spec"]["initContainers"]
    assert apply["args"][:3] == ["apply", "-n", NAMESPACE]
    assert wait["args"][:4] == ["wait", "-n", NAMESPACE, "--for=condition=Ready"]
    contract = yaml.safe_load(find(objects, "ConfigMap", "smart-test")["data"]["contract.yaml"])
    assert contract["spec"]["stationSelector"] == {"matchLabels": {"smart.aero/station": "pt-1"}}
    assert contract["spec"]["enforcement"] == "audit"
    assert wait["args"][4] == f"smartcontract/{contract['metadata']['name']}"
    # The sample is a contract the operator accepts (else the test could never pass).
    parsed = SmartContract.model_validate(contract)
    semantics.check(parsed.metadata.name, parsed.spec)
    (role,) = [o for o in objects if o["kind"] == "Role" and o["metadata"]["name"] == "smart-test"]
    assert role["rules"] == [
        {
            "apiGroups": ["smart.aero"],
            "resources": ["smartcontracts"],
            "verbs": ["get", "list", "watch", "create", "patch", "delete"],
        }
    ]


def test_notes_say_how_to_reach_the_hub_and_apply_a_first_contract() -> None:
    from tests.charts.conftest import notes

    text = notes()
    assert "port-forward svc/smart-hub 8480:8480" in text
    assert f"kubectl -n {NAMESPACE} apply -f contracts/" in text


def test_the_reference_contracts_pin_no_namespace_so_they_install_into_the_releases() -> None:
    for path in sorted((REPO / "contracts").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert "namespace" not in doc["metadata"], f"{path.name}: {doc['metadata']['name']}"


def test_the_chart_files_are_where_the_generator_writes_them() -> None:
    assert generated.CHART == CHART and Path(generated.PERMISSIONS_FILE).is_file()


#: The volume types Pod Security "restricted" admits (hostPath is not among them).
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


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_pod_uses_a_volume_the_restricted_profile_refuses(
    scenario: str, scenarios: dict[str, dict[str, Any]]
) -> None:
    objects = render(scenarios[scenario])
    claims = [t for o in objects if o["kind"] == "StatefulSet" for t in o["spec"]["volumeClaimTemplates"]]
    for obj, pod in workloads(objects):
        kinds = {key for volume in pod.get("volumes", []) for key in volume if key != "name"}
        outside = kinds - RESTRICTED_VOLUMES
        assert outside == set(), f"{obj['kind']}/{obj['metadata']['name']}: {outside}"
    assert all(c["spec"]["accessModes"] == ["ReadWriteOnce"] for c in claims)


def test_the_readme_installs_the_chart_then_the_contracts_then_says_what_to_look_at() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Install on Kubernetes (Helm)") :]
    steps = [
        "kubectl label namespace smart pod-security.kubernetes.io/enforce=restricted",
        "helm install smart charts/smart -n smart --create-namespace",
        "kubectl -n smart apply -f contracts/",
        "kubectl -n smart get pods",
        "helm test smart -n smart",
    ]
    found = [section.find(step) for step in steps]
    assert all(at >= 0 for at in found) and found == sorted(found), dict(zip(steps, found, strict=True))
