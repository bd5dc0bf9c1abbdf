"""SMART-ID's signed badges verified at pt-1, offline: keys, revocations and badges mirrored from the hub.

The hub side is what SMART-ID's publisher writes (``smart.access.distribution``):
its issuer key, the revocation list, and pt-1's badges with their tokens.
The station mirrors them through its leaf and the Gatekeeper checks each
badge's access credential at badge-in, and keeps doing so from its store
after a restart with the hub gone.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from smart.access import distribution, tokens
from smart.access.credential import Credential, Kind, Reason, Revocation
from smart.contracts import facts as f
from smart.keys import KeyStore, SigningKey
from smart.modules import framework
from smart.node.badges import RULE
from smart.node.station import StationRuntime
from smart.runtime.background import BackgroundFloor
from tests.node.conftest import Hub, agent_for, eventually
from tests.node.test_job_walkthrough import AT, PENETRANT_SHOP, Bench, bench, entries

ISSUER = SigningKey.generate("smart-id")
FORGER = SigningKey.generate("smart-id")  # not SMART-ID's: the station does not hold it


def access(badge: str, station: str, *, key: SigningKey = ISSUER) -> tuple[Credential, str]:
    credential = Credential(
        credential_id=str(uuid.uuid4()),
        subject=badge,
        kind=Kind.ACCESS,
        scope={"station": station},
        issued_at=AT - timedelta(days=30),
        not_before=AT - timedelta(days=30),
        expires_at=AT + timedelta(days=300),
        issuer_key_id=key.key_id,
    )
    return credential, tokens.sign(credential, key)


async def publish(hub: Hub, badges: dict[str, list[str]]) -> None:
    js = hub.connection.jetstream()
    await distribution.publish_keys(
        await distribution.bucket(js, distribution.KEYS_BUCKET), [ISSUER.verifying]
    )
    station_kv = await distribution.bucket(js, distribution.station_bucket("pt-1"))
    await distribution.publish_badges(
        station_kv, [distribution.BadgeCredentials(b, tuple(t)) for b, t in badges.items()]
    )


async def badge(pt: Bench, person: str, **more: str) -> dict[str, object]:
    return await pt.job("badge", person=person, at=AT.isoformat(), **more)


def signed_badge_refusals(reply: dict[str, object]) -> list[str]:
    reasons = reply["reasons"]
    assert isinstance(reasons, list)
    return [str(r["message"]) for r in reasons if r["rule"] == RULE]


async def test_station_verifies_signed_badges_offline_and_keeps_refusing_a_revoked_one_with_the_hub_down(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    op7, op7_token = access("op-7", "pt-1")
    _, l3_token = access("l3-1", "mt-1")  # SMART-ID lets l3-1 in at mt-1 only
    _, forged = access("tr-1", "pt-1", key=FORGER)
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt:
        # No SMART-ID on this floor yet: people are judged by their records alone.
        assert (await badge(pt, "tr-1", supervisor="op-7"))["allowed"] is True
        assert pt.runtime.badges is not None and not pt.runtime.badges.required

        await publish(hub, {"op-7": [op7_token], "l3-1": [l3_token], "tr-1": [forged]})
        await eventually(lambda: len(entries(pt.runtime, "access.received")) >= 4, what="SMART-ID mirrored")

        allowed = await badge(pt, "op-7")
        assert allowed["allowed"] is True, allowed["reasons"]
        wrong_station = await badge(pt, "l3-1")
        assert wrong_station["allowed"] is False
        assert "wrong_station" in signed_badge_refusals(wrong_station)[0]
        forged_reply = await badge(pt, "tr-1", supervisor="op-7")
        assert forged_reply["allowed"] is False
        assert "unknown_key" in signed_badge_refusals(forged_reply)[0]
        nobody = await badge(pt, "op-9")
        assert "holds no SMART-ID access credential for pt-1" in signed_badge_refusals(nobody)[0]

        # SMART-ID revokes op-7's credential: the station refuses op-7 from then on.
        js = hub.connection.jetstream()
        revocations = await distribution.bucket(js, distribution.REVOCATIONS_BUCKET)
        revoked = Revocation(op7.credential_id, Reason.REVOKED, AT - timedelta(hours=1))
        await distribution.publish_revocation(revocations, revoked)
        await eventually(
            lambda: op7.credential_id in pt.runtime.badges.revocations,
            what="revocation mirrored",
        )
        refused = await badge(pt, "op-7")
        assert refused["allowed"] is False and "revoked" in signed_badge_refusals(refused)[0]
        data_dir = pt.runtime.agent.config.data_dir

    # The hub goes away; the station restarts from its own store and still knows all of it.
    nats_floor.run(nats_floor.floor.supervisor.stop_child("hub"))
    runtime = StationRuntime(agent_for(nats_floor, "pt-1", keys, data_dir.parent))
    await runtime.start()
    try:
        assert runtime.badges is not None and runtime.badges.required
        assert op7.credential_id in runtime.badges.revocations
        await eventually(lambda: "gatekeeper" in runtime.modules, what="gatekeeper from the store")
        decision, _ = await runtime.handle(
            "gatekeeper", framework.ModuleEvent("badge", f.Event("operate", AT, "pt-1", person="op-7"), {})
        )
        assert decision.outcome == "deny"
        assert any(r.rule == RULE and "revoked" in r.message for r in decision.reasons)
        allowed_still, _ = await runtime.handle(
            "gatekeeper", framework.ModuleEvent("badge", f.Event("operate", AT, "pt-1", person="l3-1"), {})
        )
        assert allowed_still.outcome == "deny"  # wrong station, still, without the hub
    finally:
        await runtime.stop()


async def test_signed_badges_stay_required_when_smart_id_keys_disappear(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    _, op7_token = access("op-7", "pt-1")
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt:
        await publish(hub, {"op-7": [op7_token]})
        await eventually(lambda: len(entries(pt.runtime, "access.received")) >= 2, what="SMART-ID mirrored")
        assert (await badge(pt, "op-7"))["allowed"] is True

        keys_kv = await distribution.bucket(hub.connection.jetstream(), distribution.KEYS_BUCKET)
        await keys_kv.delete(ISSUER.key_id)
        assert pt.runtime.badges is not None
        await eventually(lambda: not pt.runtime.badges.keys, what="key deletion mirrored")

        refused = await badge(pt, "op-7")  # fail closed: not back to records only
        assert refused["allowed"] is False
        assert "unknown_key" in signed_badge_refusals(refused)[0]
