"""SMART-ID on the Vault hub: people in PostgreSQL, credentials issued from records, all on the ledger."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, time, timedelta

import nats
import pytest

from smart import ledger
from smart.access import Kind, Reason, Refusal, distribution
from smart.bus import buckets
from smart.bus.mirror import mirror_bucket, stream_name
from smart.hub.vault import publish
from smart.hub.vault.smartid import SmartId, VaultError
from smart.intervals import add_months
from smart.runtime.background import BackgroundFloor
from tests.access.conftest import NOW
from tests.access.test_certification import certified, eyes, performed

TODAY = NOW.date()


def add_inspector(smartid: SmartId, *, near_vision_months_ago: int = 4) -> None:
    smartid.add_person(
        employee_id="E-1001", name="Dana Inspector", badge_id="B-0042", roles=["operator"], actor="qm"
    )
    records = [
        *certified("PT", "2", add_months(TODAY, -36)),
        *eyes(add_months(TODAY, -near_vision_months_ago)),
        performed("PT", TODAY - timedelta(days=7)),
    ]
    for record in records:
        smartid.add_record("E-1001", record, actor="level3-pt")


def entries(node_log: ledger.NodeLog) -> list[ledger.Entry]:
    return node_log.entries(0)


def test_issued_and_revoked_credentials_are_on_the_ledger_with_the_actor(
    smartid: SmartId, smart_id_log: ledger.NodeLog
) -> None:
    add_inspector(smartid)
    issued = smartid.issue("E-1001", kind=Kind.CERTIFIED, scope={"method": "PT"}, actor="qm-alice")
    assert dict(issued.credential.scope) == {"method": "PT", "level": "2", "scheme": "NAS410"}
    smartid.revoke(issued.credential_id, reason="left the company", actor="qm-bob")
    recorded = [(e.kind, e.actor, e.data.get("credential_id")) for e in entries(smart_id_log)]
    assert ("credential.issued", "qm-alice", issued.credential_id) in recorded
    assert ("credential.revoked", "qm-bob", issued.credential_id) in recorded
    assert smartid.credential(issued.credential_id).status == "revoked"
    assert [r.credential_id for r in smartid.revocations()] == [issued.credential_id]


def test_suspension_renewal_and_reinstatement_are_each_on_the_ledger(
    smartid: SmartId, smart_id_log: ledger.NodeLog
) -> None:
    add_inspector(smartid)
    access = smartid.issue("E-1001", kind=Kind.ACCESS, scope={"station": "pt-1"}, actor="admin")
    renewed = smartid.renew(access.credential_id, actor="admin", valid_for=timedelta(days=30))
    smartid.suspend(renewed.credential_id, reason="investigation NCR-17", actor="qm-alice")
    assert smartid.revocations()[0].status is Reason.SUSPENDED
    smartid.reinstate(renewed.credential_id, reason="NCR-17 closed", actor="qm-alice")
    assert smartid.revocations() == []
    kinds = [(e.kind, e.actor) for e in entries(smart_id_log) if e.kind.startswith("credential.")]
    assert kinds == [
        ("credential.issued", "admin"),
        ("credential.renewed", "admin"),
        ("credential.suspended", "qm-alice"),
        ("credential.reinstated", "qm-alice"),
    ]


def test_hub_will_not_issue_a_pt_certified_credential_over_a_13_month_old_near_vision_exam(
    smartid: SmartId,
) -> None:
    add_inspector(smartid, near_vision_months_ago=13)
    with pytest.raises(VaultError, match="near-vision exam"):
        smartid.issue("E-1001", kind=Kind.CERTIFIED, scope={"method": "PT"}, actor="qm")


def test_certified_credential_expires_when_its_near_vision_exam_falls_due(smartid: SmartId) -> None:
    add_inspector(smartid, near_vision_months_ago=4)
    (issued,) = smartid.issue_current("E-1001", actor="qm")
    exam_due = add_months(add_months(TODAY, -4), 12)  # current through its due day, gone the day after
    assert issued.credential.expires_at == datetime.combine(exam_due + timedelta(days=1), time(0), tzinfo=UTC)
    assert smartid.issue_current("E-1001", actor="qm") == []  # already covered


def test_hub_refuses_a_badge_id_a_station_could_not_look_up(smartid: SmartId) -> None:
    with pytest.raises(VaultError, match="badge id"):
        smartid.add_person(employee_id="E-9", name="X", badge_id="B 0042/..", actor="admin")


def test_station_bucket_lists_only_badges_with_access_to_that_station_and_no_names(smartid: SmartId) -> None:
    add_inspector(smartid)
    smartid.add_person(employee_id="E-2002", name="Sam Heat", badge_id="B-0077", actor="admin")
    smartid.issue("E-1001", kind=Kind.ACCESS, scope={"station": "pt-1"}, actor="admin")
    smartid.issue_current("E-1001", actor="qm")
    smartid.issue("E-2002", kind=Kind.ACCESS, scope={"station": "ht-1"}, actor="admin")
    (pt1,) = smartid.station_badges("pt-1")
    assert pt1.badge == "B-0042" and len(pt1.credentials) == 2
    assert [b.badge for b in smartid.station_badges("ht-1")] == ["B-0077"]
    assert smartid.station_badges("mt-1") == []
    payload = pt1.to_bytes().decode()
    assert "Dana" not in payload and "E-1001" not in payload


async def _mirrored(station_url: str, bucket: str, count: int) -> dict[str, bytes]:
    """The station's mirror of ``bucket`` once it holds ``count`` keys (bounded wait, not a timing check)."""
    client = await nats.connect(station_url)
    try:
        js = client.jetstream()
        kv = await mirror_bucket(js, bucket)
        for _ in range(400):
            info = await js.stream_info(stream_name(bucket))
            if info.state.messages >= count:
                break
            await asyncio.sleep(0.025)
        return await buckets.live_entries(kv)
    finally:
        await client.close()


async def _publish(smartid: SmartId, floor: BackgroundFloor) -> publish.Published:
    assert floor.floor.hub is not None
    hub = await nats.connect(floor.floor.hub.url, **floor.settings.hub_nats_signin())
    try:
        return await publish.publish(smartid, hub.jetstream(), ["pt-1", "mt-1"])
    finally:
        await hub.close()


async def test_station_mirrors_keys_revocations_and_its_badges_and_verifies_offline(
    smartid: SmartId, nats_floor: BackgroundFloor
) -> None:
    add_inspector(smartid)
    access = smartid.issue("E-1001", kind=Kind.ACCESS, scope={"station": "pt-1"}, actor="admin")
    (certified_pt,) = smartid.issue_current("E-1001", actor="qm")
    assert (await _publish(smartid, nats_floor)).badges == {"pt-1": 1, "mt-1": 0}
    leaf = nats_floor.floor.leaves["pt-1"].url
    keys = await _mirrored(leaf, distribution.KEYS_BUCKET, 1)
    badges = await _mirrored(leaf, distribution.station_bucket("pt-1"), 1)
    held = distribution.BadgeCredentials.from_bytes(badges["B-0042"]).credentials
    assert set(held) == {access.token, certified_pt.token}

    smartid.revoke(certified_pt.credential_id, reason="falsified exam", actor="qm")
    await _publish(smartid, nats_floor)
    await _mirrored(leaf, distribution.REVOCATIONS_BUCKET, 1)
    assert set(keys) == {k.key_id for k in smartid.issuer_keys()}
    client = await nats.connect(leaf)
    try:
        station = await distribution.station_verifier(client.jetstream())
    finally:
        await client.close()
    assert station.verify(access.token, now=NOW, station="pt-1") == access.credential
    refusal = station.verify(certified_pt.token, now=NOW, station="pt-1")
    assert isinstance(refusal, Refusal) and refusal.reason is Reason.REVOKED
    assert "falsified exam" not in refusal.detail  # the reason stays on the hub


def test_personnel_records_are_on_the_ledger_with_who_recorded_them(
    smartid: SmartId, smart_id_log: ledger.NodeLog
) -> None:
    add_inspector(smartid)
    recorded = [e for e in entries(smart_id_log) if e.kind == "personnel.recorded"]
    near = [e for e in recorded if e.data.get("test") == "near_vision"]
    assert len(recorded) == 7 and all(e.actor == "level3-pt" for e in recorded)
    assert near[0].data["test_type"] == "jaeger-1-at-12in"
    assert all("Dana" not in json.dumps(e.data) for e in entries(smart_id_log))
