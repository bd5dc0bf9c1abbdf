"""The kopf operator against kmock's Kubernetes emulator, a real NATS floor and the real ledger."""

from __future__ import annotations

import asyncio
import copy
import functools
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import kmock
import nats
import pytest
from typer.testing import CliRunner

from smart import ledger
from smart.bus.mirror import mirror_bucket
from smart.cli import app
from smart.contracts import approval, bundle, catalog, distribution
from smart.contracts.models import AUTHOR_ANNOTATION, SmartContract, Station
from smart.embedded import driver
from smart.hub.streams import ensure_hub_streams
from smart.keys import KeyStore, SigningKey
from smart.node.agent import AgentConfig, NodeAgent
from smart.runtime.background import BackgroundFloor
from smart.testing.plugin import FloorFactory, make_settings
from tests.operator import approvals
from tests.operator.conftest import (
    CONTRACTS,
    DAEMONSETS,
    NODES,
    NS,
    STATIONS,
    Api,
    Starter,
    eventually,
)

__all__ = ["CONTRACTS", "DAEMONSETS", "NODES", "NS", "STATIONS", "Api", "Starter", "eventually"]


def station(sid: str, role: str, process: str) -> dict[str, Any]:
    return {
        "apiVersion": "smart.aero/v1alpha1",
        "kind": "Station",
        "metadata": {
            "name": sid,
            "namespace": NS,
            "resourceVersion": "1",
            "generation": 1,
            "labels": {"smart.aero/station": sid, "smart.aero/role": role, "smart.aero/process": process},
        },
        "spec": {"stationId": sid, "process": process, "nodeSelector": {"smart.aero/station": sid}},
    }


CONTRACT: dict[str, Any] = {
    "apiVersion": "smart.aero/v1alpha1",
    "kind": "SmartContract",
    "metadata": {
        "name": "floor-basics",
        "namespace": NS,
        "resourceVersion": "1",
        "generation": 1,
        "uid": "u-1",
    },
    "spec": {
        "stationSelector": {
            "matchExpressions": [
                {"key": "smart.aero/role", "operator": "In", "values": ["inspection", "shipping"]}
            ]
        },
        "modules": ["gatekeeper", "qa", "logistics"],
        "standards": [{"id": "e1417", "title": "ASTM E1417", "revision": "21"}],
        "rules": [
            {"kind": "credential", "id": "operator-certified", "method": "PT", "minLevel": "level-2"},
            {
                "kind": "measurement",
                "id": "uva",
                "quantity": "uv-a-intensity",
                "unit": "µW/cm²",
                "limits": {"min": 1000},
                "cites": [{"standard": "e1417"}],
            },
        ],
    },
}


async def distributed(api: Api, name: str, generation: int, stations: int) -> dict[str, Any] | None:
    """The contract once its bundles at ``generation`` are in KV for ``stations`` stations."""
    obj = await api.get(f"{CONTRACTS}/{name}")
    status = (obj or {}).get("status", {})
    done = [c for c in status.get("conditions", []) if c["type"] == "Distributed" and c["status"] == "True"]
    settled = status.get("observedGeneration") == generation and len(status.get("revisions", {})) == stations
    return obj if settled and done else None


async def nodes_labelled(api: Api, module: str) -> list[str]:
    """The nodes carrying the module's placement label, by name."""
    return sorted(
        n["metadata"]["name"]
        for n in await api.items(NODES)
        if n["metadata"].get("labels", {}).get(f"smart.aero/module.{module}") == "true"
    )


async def _equal(value: Awaitable[Any], expected: Any) -> bool:
    return bool(await value == expected)


async def kv_value(url: str, key: str) -> bytes | None:
    connection = await nats.connect(url)
    try:
        kv = await distribution.bucket(connection.jetstream())
        return await distribution.KvBundleStore(kv).get(*key.split(".", 1))
    finally:
        await connection.close()


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in obj.get("status", {}).get("conditions", []) if c["type"] == kind)


STATIONS_ON_FLOOR = [
    station("pt-1", "inspection", "penetrant"),
    station("mt-1", "inspection", "magnetic-particle"),
    station("ut-1", "inspection", "ultrasonic"),
    station("sr-1", "shipping", "shipping-receiving"),
]


async def test_contract_lifecycle_deploys_edits_degrades_and_retires(
    operator: Api, kmock: kmock.KubernetesEmulator, nats_floor: BackgroundFloor, tmp_path: Path
) -> None:
    emulator = kmock
    api = operator
    hub = nats_floor.hub_url
    for body in STATIONS_ON_FLOOR:
        await api.call("POST", STATIONS, body)
    await api.call("POST", CONTRACTS, copy.deepcopy(CONTRACT))

    async def ready_gen(generation: int) -> dict[str, Any] | None:
        """Distributed at ``generation`` to all four stations (a station created late converges to it)."""
        return await distributed(api, "floor-basics", generation, 4)

    created = await eventually(lambda: ready_gen(1))
    # No station heartbeats in this test: in KV is not in force, so not Ready, and 0/4 active.
    assert condition(created, "Ready")["status"] == "False"
    assert condition(created, "Ready")["reason"] == "Activating"
    assert condition(created, "Ready")["observedGeneration"] == 1
    assert created["status"]["stations"] == "0/4"
    assert condition(created, "NoStations")["status"] == "False"
    # Logistics runs only on a shipping station: the contract says where it was kept off.
    placed = condition(created, "ModulesPlaced")
    assert placed["status"] == "False" and placed["reason"] == "ModuleNotPlaced"
    assert "module logistics not placed on mt-1, pt-1, ut-1" in placed["message"]

    async def deployed_event() -> bool:  # kopf posts events from a queue of its own, after the status
        # Read what was posted, not what was stored: kmock keeps only the first object without a name,
        # and kopf's events have generateName.
        posted = emulator[f"post /api/v1/namespaces/{NS}/events"]
        return any(request.data.get("reason") == "Deployed" for request in posted)

    assert await eventually(deployed_event)
    posted = emulator[f"post /api/v1/namespaces/{NS}/events"]
    assert any(r.data.get("reason") == "ModuleNotPlaced" and r.data.get("type") == "Warning" for r in posted)

    # One DaemonSet per module, pinned to the nodes of the stations that may run it: the contract's
    # modules, and the station-wide ones (contract store, handoff, alerts, board, vision, questions).
    daemonsets = {d["metadata"]["name"]: d for d in await api.items(DAEMONSETS)}
    station_wide_modules = sorted(m.name for m in catalog.MODULES.values() if m.every_station)
    station_wide = [f"smart-{m}" for m in station_wide_modules]

    async def labelled(module: str) -> list[str]:
        return await nodes_labelled(api, module)

    assert len(station_wide) == 6
    assert sorted(daemonsets) == sorted(["smart-gatekeeper", "smart-logistics", "smart-qa", *station_wide])

    # Each DaemonSet places its pods by one node label the operator keeps on the stations' nodes.
    for name, ds in daemonsets.items():
        module = name.removeprefix("smart-")
        assert ds["spec"]["template"]["spec"]["nodeSelector"] == {f"smart.aero/module.{module}": "true"}
    assert await labelled("gatekeeper") == ["pi-mt-1", "pi-pt-1", "pi-sr-1", "pi-ut-1"]
    assert await labelled("logistics") == ["pi-sr-1"]
    for module in station_wide_modules:
        assert await labelled(module) == ["pi-mt-1", "pi-pt-1", "pi-sr-1", "pi-ut-1"]
    assert daemonsets["smart-qa"]["metadata"]["ownerReferences"][0]["name"] == "floor-basics"

    # A signed bundle per selected station, verifiable with the hub key, readable from a station's mirror.
    hub_key = KeyStore(tmp_path / "keys").verifying_key("hub")
    first: dict[str, str] = {}
    for sid in ("pt-1", "mt-1", "ut-1", "sr-1"):
        envelope = await kv_value(hub, f"{sid}.floor-basics")
        assert envelope is not None
        checked = bundle.verify(envelope, hub_key)
        assert checked.station == sid and checked.revision == created["status"]["revisions"][sid]
        first[sid] = checked.revision
    leaf = await nats.connect(nats_floor.floor.leaves["pt-1"].url)
    try:
        mirror = await mirror_bucket(leaf.jetstream(), distribution.BUCKET)
        mirrored = await eventually(lambda: _get(mirror, "pt-1.floor-basics"))
        assert bundle.verify(mirrored, hub_key).revision == first["pt-1"]
    finally:
        await leaf.close()

    # Edit a limit: new revisions in KV, DaemonSets untouched.
    versions_before = {n: d["metadata"].get("annotations") for n, d in daemonsets.items()}
    writes_before = {n: len(emulator.objects["apps/v1/daemonsets", NS, n].history) for n in daemonsets}
    edited = copy.deepcopy(CONTRACT["spec"])
    edited["rules"][1]["limits"] = {"min": 1200}
    # Two people before a rule changes: compiled and valid, but held; the stations keep what they hold.
    keys = tmp_path / "keys"
    approved_revision = await approvals.edit(api, keys, "floor-basics", edited, 2, author="B-AUTHOR")
    held = await eventually(lambda: approvals.pending(api, "floor-basics", approved_revision))
    assert held["status"]["revisions"] == created["status"]["revisions"]
    assert held["status"]["approver"] == "a Level 3 in PT or the quality manager"
    assert condition(held, "Approved")["reason"] == "PendingApproval"
    assert condition(held, "Ready")["reason"] == "PendingApproval"
    for sid, held_revision in first.items():
        envelope = await kv_value(hub, f"{sid}.floor-basics")
        assert envelope is not None and bundle.verify(envelope, hub_key).revision == held_revision
    by_author = await approvals.approve(
        api, keys, "floor-basics", approved_revision, "B-AUTHOR", authority="level-3", methods=("PT",)
    )
    assert by_author["status"]["accepted"] == "False"
    assert "a second person must approve it" in by_author["status"]["message"]
    forged = await approvals.approve(
        api,
        keys,
        "floor-basics",
        approved_revision,
        "B-QM2",
        token=approvals.signature(
            SigningKey.generate("smart-id"),
            badge="B-QM2",
            act="approval",
            contract="floor-basics",
            revision=approved_revision,
            authority="quality-manager",
        ),
    )
    assert forged["status"]["accepted"] == "False" and "unknown_key" in forged["status"]["message"]
    assert await approvals.pending(api, "floor-basics", approved_revision)
    assert await kv_value(hub, "pt-1.floor-basics") is not None
    assert bundle.verify(await kv_value(hub, "pt-1.floor-basics") or b"", hub_key).revision == first["pt-1"]
    # The quality manager approves from the CLI: a ContractApproval the operator verifies.
    token = tmp_path / "qm.token"
    token.write_text(
        approvals.signature(
            approvals.smart_id(keys),
            badge="B-QM",
            act="approval",
            contract="floor-basics",
            revision=approved_revision,
            authority="quality-manager",
        )
    )
    command = ["contract", "approve", "floor-basics", "--revision", approved_revision[:12]]
    ran = await asyncio.to_thread(CliRunner().invoke, app, [*command, "--credential", str(token), "-n", NS])
    assert ran.exit_code == 0, ran.output
    assert f"accepted: revision {approved_revision[:12]} of floor-basics approved" in ran.output
    (accepted,) = [a for a in await api.items(approvals.APPROVALS) if a["status"].get("approver") == "B-QM"]
    assert accepted["status"]["authority"] == "quality-manager"
    after_edit = await eventually(lambda: ready_gen(2))
    assert after_edit["status"]["approval"] == "Approved"
    for sid, revision in first.items():
        assert after_edit["status"]["revisions"][sid] != revision
        envelope = await kv_value(hub, f"{sid}.floor-basics")
        assert (
            envelope is not None
            and bundle.verify(envelope, hub_key).revision == after_edit["status"]["revisions"][sid]
        )
    assert {
        d["metadata"]["name"]: d["metadata"].get("annotations") for d in await api.items(DAEMONSETS)
    } == versions_before
    assert {
        n: len(emulator.objects["apps/v1/daemonsets", NS, n].history) for n in daemonsets
    } == writes_before
    edited_revisions = dict(after_edit["status"]["revisions"])

    # An invalid contract (a rule whose module the contract does not run): Degraded, nothing distributed.
    broken = copy.deepcopy(edited)
    broken["rules"].append({"kind": "furnaceClass", "id": "furnace", "uniformity": {"1": 3}})
    await api.call("PATCH", f"{CONTRACTS}/floor-basics", {"spec": broken, "metadata": {"generation": 3}})

    async def degraded() -> dict[str, Any] | None:
        obj = await api.get(f"{CONTRACTS}/floor-basics")
        status = (obj or {}).get("status", {})
        return obj if status.get("observedGeneration") == 3 and status.get("ready") == "False" else None

    invalid = await eventually(degraded)
    assert condition(invalid, "Degraded")["status"] == "True"
    assert "spec.rules[2]" in condition(invalid, "Degraded")["message"]
    assert "standards" in condition(invalid, "Degraded")["message"]
    assert invalid["status"]["revisions"] == edited_revisions
    for sid, revision in edited_revisions.items():
        envelope = await kv_value(hub, f"{sid}.floor-basics")
        assert envelope is not None and bundle.verify(envelope, hub_key).revision == revision

    # The contract fixed again: Ready at generation 4, the same revisions as before the broken edit.
    await api.call("PATCH", f"{CONTRACTS}/floor-basics", {"spec": edited, "metadata": {"generation": 4}})
    await eventually(lambda: ready_gen(4))

    # A station relabelled out of the selector: its bundle is retired, status and workloads follow.
    station_revision = await eventually(lambda: _distributed_to(api, "pt-1", edited_revisions["pt-1"]))
    assert station_revision == edited_revisions["pt-1"]
    await api.call("PATCH", f"{STATIONS}/ut-1", {"metadata": {"labels": {"smart.aero/role": "maintenance"}}})

    async def relabelled() -> dict[str, Any] | None:
        obj = await api.get(f"{CONTRACTS}/floor-basics")
        status = (obj or {}).get("status", {})
        return obj if status.get("stations") == "0/3" and len(status.get("revisions", {})) == 3 else None

    after_relabel = await eventually(relabelled)
    assert "ut-1" not in {k for k, v in after_relabel["status"]["revisions"].items() if v}
    await eventually(lambda: distributed(api, "floor-basics", 4, 3))  # status first, then the bucket
    assert await kv_value(hub, "ut-1.floor-basics") is None
    assert (await api.get(f"{STATIONS}/ut-1"))["status"]["revisions"].get("floor-basics") is None
    assert await eventually(lambda: _equal(labelled("gatekeeper"), ["pi-mt-1", "pi-pt-1", "pi-sr-1"]))

    # Delete: the finalizer retires the contract from KV and the ledger; the DaemonSets go.
    await api.call("DELETE", f"{CONTRACTS}/floor-basics")

    async def gone() -> bool:
        return await api.get(f"{CONTRACTS}/floor-basics") is None and not await api.items(DAEMONSETS)

    await eventually(gone)
    for sid in edited_revisions:
        assert await kv_value(hub, f"{sid}.floor-basics") is None

    await api.stop()
    with ledger.NodeLog.open(
        tmp_path / "operator" / "ledger", node="smart-operator", keys=KeyStore(tmp_path / "keys")
    ) as log:
        entries = log.entries(0)
    approved = [(e.data["revision"], e.data["approver"]) for e in entries if e.kind == "contract.approved"]
    assert approved == [(approved_revision, "B-QM")]
    submitted = [e for e in entries if e.kind == "contract.submitted"]
    assert [(e.data["revision"], e.data["author"]) for e in submitted] == [(approved_revision, "B-AUTHOR")]
    entries = [e for e in entries if e.kind in ("contract.deployed", "contract.retired")]
    kinds = [(e.kind, e.data["station"], e.data["revision"]) for e in entries]
    for sid in ("pt-1", "mt-1", "ut-1", "sr-1"):
        assert ("contract.deployed", sid, first[sid]) in kinds
        assert ("contract.deployed", sid, edited_revisions[sid]) in kinds
        assert ("contract.retired", sid, edited_revisions[sid]) in kinds


async def _get(kv: Any, key: str) -> bytes | None:
    try:
        return bytes((await kv.get(key)).value)
    except Exception:
        return None


async def _distributed_to(api: Api, station: str, revision: str) -> str | None:
    obj = await api.get(f"{STATIONS}/{station}")
    value = (obj or {}).get("status", {}).get("revisions", {}).get("floor-basics")
    return str(value) if value == revision else None


async def test_operator_and_embedded_driver_put_byte_identical_bundles(
    operator: Api, nats_floor: BackgroundFloor, tmp_path: Path, floor_factory: FloorFactory
) -> None:
    for body in STATIONS_ON_FLOOR:
        await operator.call("POST", STATIONS, body)
    await operator.call("POST", CONTRACTS, copy.deepcopy(CONTRACT))

    await eventually(lambda: distributed(operator, "floor-basics", 1, 4))
    other_floor = floor_factory(stations=1)  # a second hub: the embedded driver's own bucket
    settings = make_settings(
        tmp_path / "embedded", stations=1, nats_url=other_floor.hub_url, keys_dir=tmp_path / "keys"
    )
    await driver.apply(
        [Station.model_validate(s) for s in STATIONS_ON_FLOOR] + [SmartContract.model_validate(CONTRACT)],
        settings,
        bootstrap=approval.Bootstrap(by="test", user="test", source="CONTRACT"),
    )
    for sid in ("pt-1", "mt-1", "ut-1", "sr-1"):
        by_operator = await kv_value(nats_floor.hub_url, f"{sid}.floor-basics")
        by_embedded = await kv_value(other_floor.hub_url, f"{sid}.floor-basics")
        assert by_operator is not None and by_operator == by_embedded


@pytest.mark.parametrize("operator_env", [{"SMART_STATION_OFFLINE_AFTER_S": "1.5"}])
async def test_station_status_shows_heartbeats_and_goes_offline_when_the_station_falls_silent(
    operator: Api, kmock: kmock.KubernetesEmulator, nats_floor: BackgroundFloor, tmp_path: Path
) -> None:
    api = operator
    assert nats_floor.floor.hub is not None
    hub = await nats.connect(nats_floor.hub_url, **nats_floor.settings.hub_nats_signin())
    await ensure_hub_streams(hub.jetstream())  # the stations ship their ledgers somewhere
    await hub.close()
    for body in STATIONS_ON_FLOOR[:2]:  # pt-1 and mt-1, whose leaves the floor runs
        await api.call("POST", STATIONS, body)
    await api.call("POST", CONTRACTS, copy.deepcopy(CONTRACT))
    keys = KeyStore(tmp_path / "keys")  # the operator's: the hub key the stations trust
    agents = {
        sid: NodeAgent(
            AgentConfig(
                station=sid,
                leaf_url=nats_floor.floor.leaves[sid].url,
                data_dir=tmp_path / "stations" / sid,
                keys=keys,
                heartbeat_s=0.2,
            )
        )
        for sid in ("pt-1", "mt-1")
    }
    for agent in agents.values():
        await agent.start()
    try:

        async def in_force(sid: str) -> dict[str, Any] | None:
            """The station online, holding the revision the hub distributed to it."""
            status = ((await api.get(f"{STATIONS}/{sid}")) or {}).get("status", {})
            distributed = (status.get("revisions") or {}).get("floor-basics")
            held = (status.get("activeRevisions") or {}).get("floor-basics")
            return status if status.get("online") is True and distributed and held == distributed else None

        for sid in agents:
            status = await eventually(functools.partial(in_force, sid))
            assert status["activeRevision"] == status["revisions"]["floor-basics"][:12]
            assert status["mirrorLag"] == 0
            assert status["lastHeartbeat"].endswith("Z")
            assert isinstance(status["ledgerLag"], int)

        # Steady heartbeats (every 0.2 s) do not mean steady writes: nothing changed, nothing written.
        def status_writes() -> int:
            return len(kmock[f"patch {STATIONS}/mt-1/status"])

        before = status_writes()
        assert before >= 1  # the heartbeat fields were written through the status subresource
        await asyncio.sleep(3)
        assert status_writes() - before <= 1, "a write per heartbeat: the status is not throttled"

        # pt-1 falls silent: offline after the setting (1.5 s, not the default 10 s); mt-1 stays online.
        await agents.pop("pt-1").stop()
        stopped = asyncio.get_running_loop().time()

        async def offline() -> dict[str, Any] | None:
            status = ((await api.get(f"{STATIONS}/pt-1")) or {}).get("status", {})
            return status if status.get("online") is False else None

        silent = await eventually(offline)
        assert asyncio.get_running_loop().time() - stopped >= 1.5 - 0.2 - 0.1  # its last heartbeat, a poll
        assert silent["activeRevisions"]["floor-basics"] == silent["revisions"]["floor-basics"]
        assert (await api.get(f"{STATIONS}/mt-1"))["status"]["online"] is True
    finally:
        for agent in agents.values():
            await agent.stop()


@pytest.mark.parametrize("operator_env", [{"SMART_CONTRACT_BOOTSTRAP": "false"}])
async def test_a_new_contract_waits_for_its_contract_approval_without_the_bootstrap(
    operator: Api, nats_floor: BackgroundFloor, tmp_path: Path
) -> None:
    """The operator's default: a SmartContract's first revision is held like any change, then approved."""
    api = operator
    for body in STATIONS_ON_FLOOR:
        await api.call("POST", STATIONS, body)
    keys = tmp_path / "keys"
    revision = approvals.revision_of("floor-basics", CONTRACT["spec"])
    author = approvals.signature(
        approvals.smart_id(keys),
        badge="B-AUTHOR",
        act="authorship",
        contract="floor-basics",
        revision=revision,
    )
    body = copy.deepcopy(CONTRACT)
    body["metadata"]["annotations"] = {AUTHOR_ANNOTATION: author}
    await api.call("POST", CONTRACTS, body)
    held = await eventually(lambda: approvals.pending(api, "floor-basics", revision))
    assert held["status"]["revisions"] == {}
    assert condition(held, "Approved")["reason"] == "PendingApproval"
    for sid in ("pt-1", "mt-1", "ut-1", "sr-1"):
        assert await kv_value(nats_floor.hub_url, f"{sid}.floor-basics") is None

    accepted = await approvals.approve(api, keys, "floor-basics", revision, "B-QM")
    assert accepted["status"]["accepted"] == "True", accepted["status"]
    done = await eventually(lambda: distributed(api, "floor-basics", 1, 4))
    assert condition(done, "Approved")["status"] == "True"
    await api.stop()  # the operator's ledger is read once it has let go of it
    with ledger.NodeLog.open(
        tmp_path / "operator" / "ledger", node="smart-operator", keys=KeyStore(keys)
    ) as log:
        kinds = [e.kind for e in log.entries(0)]
    assert "contract.bootstrapped" not in kinds
    assert kinds.index("contract.approved") < kinds.index("contract.deployed")
