"""SMART-ID to the station and back to a decision: people, credentials and records published, judged offline.

The Vault runs on a real PostgreSQL; SMART-ID's publisher writes the hub's
buckets; pt-1 mirrors them through its leaf. The person's certification,
eye exams and performance reach the station by badge id only, and the
Gatekeeper judges them by the penetrant contract together with the signed
access credential.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from smart import ledger
from smart.access.credential import Kind
from smart.access.records import Record, RecordKind
from smart.hub.vault import publish as vault_publish
from smart.hub.vault.smartid import SmartId
from smart.keys import KeyStore
from smart.node.badges import RULE
from smart.runtime.background import BackgroundFloor
from smart.testing.plugin import FreshDatabase
from tests.node.conftest import Hub, eventually
from tests.node.test_job_walkthrough import AT, PENETRANT_SHOP, Bench, bench, entries

TODAY = AT.date()


def inspector(near_vision_on: date) -> list[Record]:
    certified_on = TODAY - timedelta(days=3 * 365)
    exams_on = certified_on - timedelta(days=30)
    return [
        Record(RecordKind.EXAM, exams_on, method="PT", exam="general", score=84),
        Record(RecordKind.EXAM, exams_on, method="PT", exam="specific", score=80),
        Record(RecordKind.EXAM, exams_on, method="PT", exam="practical", score=91, samples=3),
        Record(RecordKind.CERTIFICATION, certified_on, method="PT", level="2", scheme="NAS410"),
        Record(RecordKind.EYE_EXAM, near_vision_on, test="near_vision", test_type="jaeger-1-at-12in"),
        Record(RecordKind.EYE_EXAM, TODAY - timedelta(days=400), test="colour_vision", test_type="ishihara"),
        Record(RecordKind.PERFORMANCE, TODAY - timedelta(days=7), method="PT"),
    ]


async def badge(pt: Bench, person: str) -> dict[str, object]:
    return await pt.job("badge", person=person, at=AT.isoformat())


def rules_of(reply: dict[str, object]) -> set[str]:
    reasons = reply["reasons"]
    assert isinstance(reasons, list)
    return {str(r["rule"]) for r in reasons}


async def test_people_and_credentials_from_smart_id_are_judged_at_the_station_by_badge_only(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path, database: FreshDatabase
) -> None:
    with ledger.NodeLog.open(tmp_path / "smart-id", node="smart-id", keys=keys) as smart_id_log:
        smartid = SmartId(
            database.url, key=keys.signing_key("smart-id"), ledger=smart_id_log, clock=lambda: AT
        )
        smartid.add_person(employee_id="E-1", name="Dana Inspector", badge_id="B-0042", actor="qm")
        smartid.add_person(employee_id="E-2", name="Lee Lapsed", badge_id="B-0043", actor="qm")
        for record in inspector(TODAY - timedelta(days=120)):
            smartid.add_record("E-1", record, actor="level3-pt")
        for record in inspector(TODAY - timedelta(days=395)):
            smartid.add_record("E-2", record, actor="level3-pt")
        dana = smartid.issue("E-1", kind=Kind.ACCESS, scope={"station": "pt-1"}, actor="qm")
        smartid.issue("E-2", kind=Kind.ACCESS, scope={"station": "pt-1"}, actor="qm")

        shop = {kind: values for kind, values in PENETRANT_SHOP.items() if kind != "person"}
        async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", shop) as pt:
            published = await vault_publish.publish(smartid, hub.connection.jetstream(), ["pt-1"])
            assert published.badges == {"pt-1": 2}
            await eventually(
                lambda: {"B-0042", "B-0043"} <= set(pt.runtime.facts().people),
                what="people mirrored",
            )
            await eventually(
                lambda: pt.runtime.badges is not None and len(pt.runtime.badges.badges) == 2,
                what="badges mirrored",
            )

            # At the station: a badge id, the judged facts, nothing personal.
            held = pt.runtime.facts().people["B-0042"]
            assert [(c.method, c.level.value) for c in held.certifications] == [("PT", "level-2")]
            assert {e.exam: e.test for e in held.exams}["near-vision"] == "jaeger-1-12in"
            stored = [
                e.data["value"] for e in entries(pt.runtime, "record.received") if e.data["kind"] == "person"
            ]
            assert stored and not any("Dana" in json.dumps(v) or "E-1" in json.dumps(v) for v in stored)

            allowed = await badge(pt, "B-0042")
            assert allowed["allowed"] is True, allowed["reasons"]
            lapsed = await badge(pt, "B-0043")
            assert lapsed["allowed"] is False and "pt-near-vision" in rules_of(lapsed)

            # SMART-ID revokes Dana's access: the station drops the badge and refuses it.
            smartid.revoke(dana.credential_id, reason="left the company", actor="qm")
            await vault_publish.publish(smartid, hub.connection.jetstream(), ["pt-1"])
            await eventually(lambda: "B-0042" not in pt.runtime.facts().people, what="person withdrawn")
            refused = await badge(pt, "B-0042")
            assert refused["allowed"] is False
            assert RULE in rules_of(refused)
