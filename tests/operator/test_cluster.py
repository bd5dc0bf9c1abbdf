"""The operator as a hardened cluster meets it: ordering, honest Ready, deletions, no churn, RBAC.

The real operator (kopf, the ``kubernetes`` client), a real NATS floor, the real ledger and real
station agents where heartbeats matter; kmock stands in for the API server (see conftest).
"""

from __future__ import annotations

import asyncio
import copy
import threading
from pathlib import Path
from typing import Any

import nats
import pytest
import yaml

from smart import ledger
from smart.hub.streams import ensure_hub_streams
from smart.keys import KeyStore
from smart.node.agent import AgentConfig, NodeAgent
from smart.operator import metrics
from smart.runtime.background import BackgroundFloor
from tests.operator import approvals
from tests.operator.conftest import VersionedEmulator
from tests.operator.test_operator import (
    CONTRACT,
    CONTRACTS,
    DAEMONSETS,
    NODES,
    NS,
    STATIONS,
    Api,
    Starter,
    condition,
    distributed,
    eventually,
    kv_value,
    nodes_labelled,
    station,
)

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def deployed() -> float:
    """How many contract reconciles the operator has finished (its own metric)."""
    value = metrics.REGISTRY.get_sample_value(
        "smart_operator_reconciles_total", {"resource": "smartcontract", "outcome": "deployed"}
    )
    return value or 0.0


def ledger_kinds(tmp_path: Path) -> list[tuple[str, str, str]]:
    """(kind, station, revision) of the operator's ledger entries, read beside the running writer."""
    path = tmp_path / "operator" / "ledger" / "smart-operator.sqlite3"
    if not path.exists():
        return []
    entries = ledger.NodeLogReader(path).entries(0, 1 << 30)
    return [(e.kind, e.data.get("station", ""), e.data["revision"]) for e in entries]


class StationInThread:
    """A station's agent on an event loop of its own, as on its own Pi.

    kopf, when it stops, cancels every task started on its loop after it started (it cannot tell
    them from its own), so an agent on the test's loop would die with the first operator.
    """

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.started = threading.Event()
        self.thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping: asyncio.Event | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=asyncio.run, args=(self._run(),), daemon=True)
        self.thread.start()
        assert self.started.wait(60), "the station agent did not start"

    async def _run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        agent = NodeAgent(self.config)
        await agent.start()
        self.started.set()
        await self.stopping.wait()
        await agent.stop()

    def stop(self) -> None:
        if self.thread is None or not self.thread.is_alive():
            return
        assert self.loop is not None and self.stopping is not None
        self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(60)


def contract(name: str, selector: dict[str, Any], modules: list[str]) -> dict[str, Any]:
    body = copy.deepcopy(CONTRACT)
    body["metadata"].update({"name": name, "uid": f"u-{name}"})
    body["spec"]["stationSelector"] = selector
    body["spec"]["modules"] = modules
    if "qa" not in modules:
        body["spec"]["rules"] = [r for r in body["spec"]["rules"] if r["kind"] != "measurement"]
        body["spec"]["standards"] = []
    return body


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", f"{CONTRACTS}/floor-basics/status"),  # the contract's own status
        ("POST", DAEMONSETS),  # the module workloads
        ("PATCH", "/api/v1/nodes/pi-pt-1"),  # the placement labels on a station's node
    ],
)
async def test_no_bundle_and_no_ledger_entry_before_the_cluster_write_succeeds(
    start_operator: Starter,
    kmock: VersionedEmulator,
    nats_floor: BackgroundFloor,
    tmp_path: Path,
    method: str,
    path: str,
) -> None:
    kmock.refuse(method, path)  # RBAC or an admission plugin says no
    api = await start_operator()
    await api.call("POST", STATIONS, station("pt-1", "inspection", "penetrant"))
    await api.call("POST", CONTRACTS, copy.deepcopy(CONTRACT))

    async def tried_twice() -> bool:  # kopf retried the handler: the refusal was met more than once
        return len([r for r in kmock if r.method.value == method and r.url.path == path]) >= 2

    await eventually(tried_twice, patience=120)
    assert await kv_value(nats_floor.hub_url, "pt-1.floor-basics") is None
    assert not [k for k in ledger_kinds(tmp_path) if k[0] == "contract.deployed"]

    kmock.allow(method, path)  # the cluster write goes through: now, and only now, distribution
    done = await eventually(lambda: distributed(api, "floor-basics", 1, 1), patience=120)
    assert await kv_value(nats_floor.hub_url, "pt-1.floor-basics") is not None
    assert ("contract.deployed", "pt-1", done["status"]["revisions"]["pt-1"]) in ledger_kinds(tmp_path)


@pytest.mark.parametrize("operator_env", [{"SMART_STATION_OFFLINE_AFTER_S": "2"}])
async def test_ready_only_once_the_station_reports_the_revision_and_times_survive_a_restart(
    start_operator: Starter, kmock: VersionedEmulator, nats_floor: BackgroundFloor, tmp_path: Path
) -> None:
    hub = await nats.connect(nats_floor.hub_url, **nats_floor.settings.hub_nats_signin())
    await ensure_hub_streams(hub.jetstream())  # the stations ship their ledgers somewhere
    await hub.close()
    api = await start_operator()
    await api.call("POST", STATIONS, station("pt-1", "inspection", "penetrant"))
    await api.call("POST", CONTRACTS, copy.deepcopy(CONTRACT))
    nowhere = contract("no-such-role", {"matchLabels": {"smart.aero/role": "plating"}}, ["gatekeeper"])
    await api.call("POST", CONTRACTS, nowhere)

    # Distributed, but pt-1's agent is not running: not Ready, 0/1 active.
    sent = await eventually(lambda: distributed(api, "floor-basics", 1, 1))
    assert condition(sent, "Ready")["status"] == "False"
    assert condition(sent, "Ready")["reason"] == "Activating"
    assert "pt-1" in condition(sent, "Ready")["message"]
    assert sent["status"]["stations"] == "0/1"

    # A selection of no station is its own condition, and never Ready.
    empty = await eventually(lambda: distributed(api, "no-such-role", 1, 0))
    assert condition(empty, "NoStations")["status"] == "True"
    assert condition(empty, "Ready")["status"] == "False"
    assert condition(empty, "Ready")["reason"] == "NoStations"

    agent = StationInThread(
        AgentConfig(
            station="pt-1",
            leaf_url=nats_floor.floor.leaves["pt-1"].url,
            data_dir=tmp_path / "stations" / "pt-1",
            keys=KeyStore(tmp_path / "keys"),
            heartbeat_s=0.2,
        )
    )
    await asyncio.to_thread(agent.start)
    try:

        async def ready() -> dict[str, Any] | None:
            obj = await api.get(f"{CONTRACTS}/floor-basics")
            status = (obj or {}).get("status", {})
            return obj if status.get("ready") == "True" and status.get("stations") == "1/1" else None

        active = await eventually(ready, patience=60)
        assert condition(active, "Ready")["reason"] == "Active"

        async def station_shows_it() -> bool:  # the Station's status says the same, from the same heartbeats
            shown = (await api.get(f"{STATIONS}/pt-1"))["status"]
            return bool(
                shown.get("activeRevisions", {}).get("floor-basics") == active["status"]["revisions"]["pt-1"]
            )

        await eventually(station_shows_it)

        before = {
            name: {
                c["type"]: c["lastTransitionTime"]
                for c in (await api.get(f"{CONTRACTS}/{name}"))["status"]["conditions"]
            }
            for name in ("floor-basics", "no-such-role")
        }
        await api.stop()
        resumes_before = deployed()
        writes = len(kmock[f"patch {CONTRACTS}/floor-basics/status"])
        await asyncio.sleep(1.1)  # the restart lands in a later second, so a rewritten time would differ
        again = await start_operator()

        async def resumed() -> bool:  # the new operator resumed both contracts
            return deployed() >= resumes_before + 2

        await eventually(resumed, patience=60)
        await asyncio.sleep(3)  # past the offline time: judged on live heartbeats alone by now
        for name, times in before.items():
            conditions = (await again.get(f"{CONTRACTS}/{name}"))["status"]["conditions"]
            assert {c["type"]: c["lastTransitionTime"] for c in conditions} == times, name
        assert (await again.get(f"{CONTRACTS}/floor-basics"))["status"]["ready"] == "True"
        assert len(kmock[f"patch {CONTRACTS}/floor-basics/status"]) == writes, "a restart rewrote the status"

        # The station falls silent: its old report no longer counts, Ready goes False.
        await asyncio.to_thread(agent.stop)

        async def not_ready() -> dict[str, Any] | None:
            obj = await again.get(f"{CONTRACTS}/floor-basics")
            return obj if obj["status"].get("ready") == "False" else None

        silent = await eventually(not_ready, patience=60)
        assert silent["status"]["stations"] == "0/1"
    finally:
        await asyncio.to_thread(agent.stop)


async def test_deleting_a_station_retires_its_bundles_and_its_node_labels_at_once(
    operator: Api, kmock: VersionedEmulator, nats_floor: BackgroundFloor, tmp_path: Path
) -> None:
    api = operator
    for sid in ("pt-1", "mt-1"):
        await api.call("POST", STATIONS, station(sid, "inspection", "penetrant"))
    await api.call("POST", CONTRACTS, copy.deepcopy(CONTRACT))
    sent = await eventually(lambda: distributed(api, "floor-basics", 1, 2))
    revision = sent["status"]["revisions"]["mt-1"]
    assert await nodes_labelled(api, "gatekeeper") == ["pi-mt-1", "pi-pt-1"]
    obj = await api.get(f"{STATIONS}/mt-1")
    assert "smart.aero/retire" in obj["metadata"].get("finalizers", [])

    await api.call("DELETE", f"{STATIONS}/mt-1")

    async def gone() -> bool:
        return await api.get(f"{STATIONS}/mt-1") is None

    await eventually(gone)  # the finalizer was released: the work below was done first
    assert await kv_value(nats_floor.hub_url, "mt-1.floor-basics") is None
    assert await kv_value(nats_floor.hub_url, "pt-1.floor-basics") is not None
    assert ("contract.retired", "mt-1", revision) in ledger_kinds(tmp_path)
    assert await nodes_labelled(api, "gatekeeper") == ["pi-pt-1"]
    node = next(n for n in await api.items(NODES) if n["metadata"]["name"] == "pi-mt-1")
    assert not [k for k in node["metadata"]["labels"] if k.startswith("smart.aero/module.")]
    after = await eventually(lambda: distributed(api, "floor-basics", 1, 1))
    assert list(after["status"]["revisions"]) == ["pt-1"]


async def test_deleting_a_contract_changes_no_other_daemonsets_pod_template(
    operator: Api, kmock: VersionedEmulator, nats_floor: BackgroundFloor
) -> None:
    api = operator
    for body in (station("pt-1", "inspection", "penetrant"), station("sr-1", "shipping", "shipping")):
        await api.call("POST", STATIONS, body)
    inspection = contract("inspection", {"matchLabels": {"smart.aero/role": "inspection"}}, ["gatekeeper"])
    shipping = contract("shipping", {"matchLabels": {"smart.aero/role": "shipping"}}, ["gatekeeper", "qa"])
    await api.call("POST", CONTRACTS, inspection)
    await api.call("POST", CONTRACTS, shipping)
    await eventually(lambda: distributed(api, "inspection", 1, 1))
    await eventually(lambda: distributed(api, "shipping", 1, 1))

    async def both_placed() -> bool:
        return await nodes_labelled(api, "gatekeeper") == ["pi-pt-1", "pi-sr-1"]

    await eventually(both_placed)
    templates = {d["metadata"]["name"]: d["spec"]["template"] for d in await api.items(DAEMONSETS)}

    await api.call("DELETE", f"{CONTRACTS}/shipping")

    async def retired() -> bool:
        return await api.get(f"{CONTRACTS}/shipping") is None and await nodes_labelled(api, "gatekeeper") == [
            "pi-pt-1"
        ]

    await eventually(retired)
    assert await nodes_labelled(api, "qa") == []
    after = {d["metadata"]["name"]: d for d in await api.items(DAEMONSETS)}
    assert "smart-qa" not in after  # nobody asks for qa any more
    for name, ds in after.items():  # every DaemonSet still there keeps its template: no pod rolls
        assert ds["spec"]["template"] == templates[name], name


async def test_a_node_gaining_or_losing_a_stations_label_gets_or_loses_its_modules_and_no_pod_rolls(
    operator: Api, kmock: VersionedEmulator, nats_floor: BackgroundFloor
) -> None:
    """The Pi under pt-1 is swapped: the shop labels the new node for pt-1 and unlabels the old one."""
    api = operator
    await api.call("POST", STATIONS, station("pt-1", "inspection", "penetrant"))
    await api.call("POST", CONTRACTS, copy.deepcopy(CONTRACT))
    await eventually(lambda: distributed(api, "floor-basics", 1, 1))

    async def placed(*nodes: str) -> bool:
        return await nodes_labelled(api, "gatekeeper") == list(nodes)

    await eventually(lambda: placed("pi-pt-1"))
    templates = {d["metadata"]["name"]: d["spec"]["template"] for d in await api.items(DAEMONSETS)}
    spare = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "pi-spare", "labels": {"bay": "2"}}}
    await api.call("POST", NODES, spare)
    await api.call("PATCH", f"{NODES}/pi-spare", {"metadata": {"labels": {"smart.aero/station": "pt-1"}}})
    await eventually(lambda: placed("pi-pt-1", "pi-spare"))

    await api.call("PATCH", f"{NODES}/pi-pt-1", {"metadata": {"labels": {"smart.aero/station": None}}})
    await eventually(lambda: placed("pi-spare"))
    old = next(n for n in await api.items(NODES) if n["metadata"]["name"] == "pi-pt-1")
    assert not [k for k in old["metadata"].get("labels", {}) if k.startswith("smart.aero/module.")]
    after = {d["metadata"]["name"]: d["spec"]["template"] for d in await api.items(DAEMONSETS)}
    assert after == templates  # placement moved by node labels alone: no template changed, no pod rolled
    shown = await api.get(f"{CONTRACTS}/floor-basics")
    assert list(shown["status"]["revisions"]) == ["pt-1"]  # the station is the same; only its Pi changed


# What a call needs beyond its own verb: blockOwnerDeletion on an owner reference to a contract
# is checked by OwnerReferencesPermissionEnforcement as `update` on the owner's finalizers.
ADMISSION_ONLY = {("smart.aero", "smartcontracts/finalizers", "update")}


def granted() -> set[tuple[str, str, str]]:
    found = set()
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] in ("Role", "ClusterRole"):
                for rule in doc["rules"]:
                    for group in rule["apiGroups"]:
                        for resource in rule["resources"]:
                            found |= {(group, resource, verb) for verb in rule["verbs"]}
    return found


def used(requests: list[Any]) -> set[tuple[str, str, str]]:
    """The RBAC (group, resource, verb) of each request the operator made, as the API server derives it."""
    verbs = {"LIST": "list", "WATCH": "watch", "FETCH": "get", "CREATE": "create", "UPDATE": "patch"}
    found = set()
    for request in requests:
        if request.resource is None or request.resource.plural is None or request.action is None:
            continue  # discovery (/api, /apis/...): allowed to every authenticated user
        verb = {"PATCH": "patch", "PUT": "update", "DELETE": "delete"}.get(
            request.method.value, verbs.get(request.action.name, request.action.name.lower())
        )
        resource = request.resource.plural + (f"/{request.subresource}" if request.subresource else "")
        found.add((request.resource.group or "", resource, verb))
    return found


async def test_the_rbac_grants_exactly_the_calls_the_operator_makes(
    start_operator: Starter, kmock: VersionedEmulator, nats_floor: BackgroundFloor, tmp_path: Path
) -> None:
    # As deployed: watching only its own namespace.
    api = await start_operator(namespaces=[NS])
    for body in (station("pt-1", "inspection", "penetrant"), station("sr-1", "shipping", "shipping")):
        await api.call("POST", STATIONS, body)
    await api.call("POST", CONTRACTS, copy.deepcopy(CONTRACT))
    # A second contract sharing the gatekeeper: deleting the first rewrites that DaemonSet's owners.
    await api.call(
        "POST",
        CONTRACTS,
        contract("inspection", {"matchLabels": {"smart.aero/role": "inspection"}}, ["gatekeeper"]),
    )
    await eventually(lambda: distributed(api, "floor-basics", 1, 2))
    await eventually(lambda: distributed(api, "inspection", 1, 1))
    edited = copy.deepcopy(CONTRACT["spec"])
    edited["rules"][1]["limits"] = {"min": 1200}
    edited["modules"] = ["gatekeeper", "qa"]  # logistics dropped: a DaemonSet deleted
    await approvals.edit_and_approve(api, tmp_path / "keys", "floor-basics", edited, 2)
    await eventually(lambda: distributed(api, "floor-basics", 2, 2))

    async def no_logistics() -> bool:
        return "smart-logistics" not in {d["metadata"]["name"] for d in await api.items(DAEMONSETS)}

    await eventually(no_logistics)
    await api.call("DELETE", f"{STATIONS}/sr-1")
    await eventually(lambda: distributed(api, "floor-basics", 2, 1))
    await api.call("DELETE", f"{CONTRACTS}/floor-basics")

    async def gone() -> bool:
        return await api.get(f"{CONTRACTS}/floor-basics") is None

    await eventually(gone)

    async def one_owner() -> bool:
        gatekeeper = next(
            d for d in await api.items(DAEMONSETS) if d["metadata"]["name"] == "smart-gatekeeper"
        )
        return [o["name"] for o in gatekeeper["metadata"]["ownerReferences"]] == ["inspection"]

    await eventually(one_owner)
    await api.stop()
    # The operator's own calls: everything but the test's (aiohttp's default client, no kopf agent).
    calls = [
        r
        for r in kmock
        if "kopf" in r.headers.get("User-Agent", "") or "OpenAPI" in r.headers.get("User-Agent", "")
    ]
    assert calls
    assert used(calls) | ADMISSION_ONLY == granted(), (sorted(used(calls)), sorted(granted()))
