"""A station's agent: it activates what the hub signed, refuses what it did not, and fails closed."""

from __future__ import annotations

import json
from pathlib import Path

import nats
from nats.aio.msg import Msg

from smart.bus import subjects
from smart.contracts import facts as f
from smart.keys import KeyStore
from smart.node.enforcement import NO_VALID_CONTRACT
from smart.runtime.background import BackgroundFloor
from tests.node.conftest import Hub, agent_for, eventually, now, signed_envelope, tampered


def _badge_in(station: str) -> f.Event:
    return f.Event(action="operate", at=now(), station=station, person="B-1042", job="J-1")


async def test_station_with_no_valid_contract_refuses_every_operation(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    agent = agent_for(nats_floor, "pt-1", keys, tmp_path)
    await agent.start()
    try:
        decision = agent.decide(_badge_in("pt-1"), f.Facts())
        assert decision.outcome == "deny"
        assert NO_VALID_CONTRACT in decision.reasons[0].message
        assert agent.ledger is not None
        entry = agent.ledger.entries(0)[-1]
        assert entry.kind == "gate.decision" and entry.data["outcome"] == "deny"
    finally:
        await agent.stop()


async def test_contract_signed_by_the_hub_becomes_active_and_is_recorded_with_both_revisions(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    agent = agent_for(nats_floor, "pt-1", keys, tmp_path)
    await agent.start()
    try:
        first = signed_envelope("penetrant", "pt-1", keys)
        await hub.put_contract("pt-1", "penetrant", first)
        await eventually(lambda: "penetrant" in agent.enforcer.revisions, what="first revision active")
        first_revision = agent.enforcer.revisions["penetrant"]
        decision = agent.decide(_badge_in("pt-1"), f.Facts())
        assert decision.revisions == {"penetrant": first_revision}
        assert NO_VALID_CONTRACT not in " ".join(r.message for r in decision.reasons)

        await hub.put_contract("pt-1", "penetrant", signed_envelope("penetrant", "pt-1", keys, limit=1100))
        await eventually(
            lambda: agent.enforcer.revisions.get("penetrant") not in (None, first_revision),
            what="second revision active",
        )
        assert agent.ledger is not None
        activations = [e for e in agent.ledger.entries(0) if e.kind == "contract.activated"]
        assert [e.data["previous"] for e in activations] == [None, first_revision]
        assert activations[-1].data["revision"] == agent.enforcer.revisions["penetrant"]
        assert agent.store is not None
        assert [a.revision for a in agent.store.history("penetrant")] == [
            first_revision,
            agent.enforcer.revisions["penetrant"],
        ]
    finally:
        await agent.stop()


async def test_tampered_bundle_is_refused_with_an_alert_and_the_previous_revision_stays_active(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    agent = agent_for(nats_floor, "pt-1", keys, tmp_path)
    await agent.start()
    alerts = await nats.connect(nats_floor.floor.leaves["pt-1"].url)
    received: list[dict[str, str]] = []

    async def on_alert(msg: Msg) -> None:
        received.append(json.loads(msg.data))

    await alerts.subscribe(subjects.alert("pt-1"), cb=on_alert)
    try:
        good = signed_envelope("penetrant", "pt-1", keys)
        await hub.put_contract("pt-1", "penetrant", good)
        await eventually(lambda: "penetrant" in agent.enforcer.revisions, what="good revision active")
        good_revision = agent.enforcer.revisions["penetrant"]

        await hub.put_contract("pt-1", "penetrant", tampered(good))
        assert agent.ledger is not None
        await eventually(
            lambda: any(e.kind == "contract.refused" for e in agent.ledger.entries(0)),
            what="refusal on the ledger",
        )
        refusal = next(e for e in agent.ledger.entries(0) if e.kind == "contract.refused")
        assert "signature does not verify" in refusal.data["reason"]
        assert agent.enforcer.revisions["penetrant"] == good_revision
        await eventually(lambda: bool(received), what="alert published")
        assert received[0]["kind"] == "contract.refused"
    finally:
        await alerts.close()
        await agent.stop()


async def test_bundle_for_another_station_is_refused(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    agent = agent_for(nats_floor, "mt-1", keys, tmp_path)
    await agent.start()
    try:
        # A correctly signed bundle, but compiled for pt-1, put under mt-1's key.
        await hub.put_contract("mt-1", "penetrant", signed_envelope("penetrant", "pt-1", keys))
        assert agent.ledger is not None
        await eventually(
            lambda: any(e.kind == "contract.refused" for e in agent.ledger.entries(0)),
            what="refusal",
        )
        assert agent.enforcer.revisions == {}
        assert agent.decide(_badge_in("mt-1"), f.Facts()).outcome == "deny"
    finally:
        await agent.stop()


async def test_retired_contract_leaves_the_station_failing_closed(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    agent = agent_for(nats_floor, "pt-1", keys, tmp_path)
    await agent.start()
    try:
        await hub.put_contract("pt-1", "penetrant", signed_envelope("penetrant", "pt-1", keys))
        await eventually(lambda: "penetrant" in agent.enforcer.revisions, what="active")
        await hub.retire_contract("pt-1", "penetrant")
        await eventually(lambda: agent.enforcer.revisions == {}, what="retired")
        decision = agent.decide(_badge_in("pt-1"), f.Facts())
        assert NO_VALID_CONTRACT in decision.reasons[0].message
    finally:
        await agent.stop()


async def test_agent_restarted_with_the_hub_down_enforces_the_same_revision_from_its_store(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    agent = agent_for(nats_floor, "pt-1", keys, tmp_path)
    await agent.start()
    await hub.put_contract("pt-1", "penetrant", signed_envelope("penetrant", "pt-1", keys))
    await eventually(lambda: "penetrant" in agent.enforcer.revisions, what="active")
    revision = agent.enforcer.revisions["penetrant"]
    await agent.stop()

    nats_floor.run(nats_floor.floor.supervisor.stop_child("hub"))
    restarted = agent_for(nats_floor, "pt-1", keys, tmp_path)
    await restarted.start()
    try:
        # Before any connection is made, the station already enforces its stored revision.
        assert restarted.enforcer.revisions == {"penetrant": revision}
        decision = restarted.decide(_badge_in("pt-1"), f.Facts())
        assert decision.revisions == {"penetrant": revision}
    finally:
        await restarted.stop()
        nats_floor.run(nats_floor.floor.supervisor.start_child("hub"))


async def test_heartbeat_says_how_far_the_stations_mirrors_are_behind_the_hub(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    agent = agent_for(nats_floor, "pt-1", keys, tmp_path)
    heard: list[dict[str, object]] = []

    async def on_heartbeat(message: Msg) -> None:
        heard.append(json.loads(message.data))

    await hub.connection.subscribe(subjects.heartbeat("pt-1"), cb=on_heartbeat)
    await agent.start()
    try:
        await hub.put_contract("pt-1", "penetrant", signed_envelope("penetrant", "pt-1", keys))
        await eventually(lambda: "penetrant" in agent.enforcer.revisions, what="revision active")
        count = len(heard)
        await eventually(lambda: len(heard) > count, what="a heartbeat after the mirror caught up")
        assert heard[-1]["mirror_lag"] == 0
        # The figure is the leaf's own: every mirror stream's lag behind its hub stream.
        leaf = await nats.connect(nats_floor.floor.leaves["pt-1"].url)
        try:
            mirrors = [i for i in await leaf.jetstream().streams_info() if i.mirror is not None]
        finally:
            await leaf.close()
        assert mirrors and sum(i.mirror.lag or 0 for i in mirrors if i.mirror) == heard[-1]["mirror_lag"]
    finally:
        await agent.stop()
