"""The records a station decides from: kept across restarts, mirrored from the hub, refused when wrong."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from smart.contracts import facts as f
from smart.contracts.rules import Level
from smart.keys import KeyStore
from smart.node import records
from smart.node.station import StationRuntime
from smart.runtime.background import BackgroundFloor
from tests.node.conftest import Hub, agent_for, eventually, now
from tests.node.test_job_walkthrough import PENETRANT_SHOP, entries, person

AT = now()


def test_records_survive_a_restart_and_the_facts_snapshot_is_shared_until_a_write(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite3"
    kept = records.StationRecords(path)
    kept.put("person", person("op-7", "PT", Level.LEVEL_2))
    kept.put("check", f.CheckRecord("tam-panel", AT, True, readings={"x": f.Reading(1, "fc")}))
    kept.put("job", f.Job("J-1", steps=("wash",), measurements={"part-temperature": f.Reading(72, "°F")}))
    first = kept.facts()
    assert kept.facts() is first
    kept.performed("op-7", "PT", AT)
    second = kept.facts()
    assert second is not first and second.people["op-7"].last_performed["PT"] == AT
    kept.close()

    reopened = records.StationRecords(path)
    facts = reopened.facts()
    assert facts.people["op-7"].certifications[0].level is Level.LEVEL_2
    assert facts.people["op-7"].last_performed["PT"] == AT
    assert facts.checks["tam-panel"].readings["x"] == f.Reading(1, "fc")
    assert facts.jobs["J-1"].measurements["part-temperature"] == f.Reading(72, "°F")
    reopened.close()


def test_the_open_ncr_count_follows_jobs_written_replaced_and_deleted_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "records.sqlite3"
    kept = records.StationRecords(path)
    assert kept.ncrs_open == 0
    kept.put("job", f.Job("J-1", ncrs=(f.Ncr("NCR-1", open=True), f.Ncr("NCR-2", open=True))))
    kept.put("job", f.Job("J-2", ncrs=(f.Ncr("NCR-3", open=False),)))
    kept.put("lot", f.Lot("L-1", "penetrant", AT))  # not a job: counts nothing
    assert kept.ncrs_open == 2
    kept.put("job", f.Job("J-1", ncrs=(f.Ncr("NCR-1", open=False), f.Ncr("NCR-2", open=True))))
    assert kept.ncrs_open == 1  # NCR-1 closed
    kept.put("job", f.Job("J-2", ncrs=(f.Ncr("NCR-3", open=True),)))
    assert kept.ncrs_open == 2  # NCR-3 reopened
    kept.close()

    reopened = records.StationRecords(path)
    assert reopened.ncrs_open == 2
    assert reopened.ncrs_open == sum(n.open for j in reopened.facts().jobs.values() for n in j.ncrs)
    job = json.dumps(records.plain(f.Job("J-3", ncrs=(f.Ncr("NCR-4", open=True),)))).encode()
    assert reopened.apply_hub("pt-1", "pt-1.job.J-3", 1, job) == ("job", "J-3")
    assert reopened.ncrs_open == 3
    reopened.delete("job", "J-2")
    reopened.delete("job", "J-9")  # no such job: nothing moves
    assert reopened.ncrs_open == 2
    reopened.close()


def test_a_record_from_the_hub_applies_once_in_revision_order_and_a_delete_takes_it_away(
    tmp_path: Path,
) -> None:
    kept = records.StationRecords(tmp_path / "records.sqlite3")
    lot = f.Lot("PEN-2291", "penetrant", AT + timedelta(days=200))
    value = json.dumps(records.plain(lot)).encode()
    assert kept.apply_hub("pt-1", "pt-1.lot.PEN-2291", 5, value) == ("lot", "PEN-2291")
    assert kept.apply_hub("pt-1", "pt-1.lot.PEN-2291", 4, None) is None  # an older change replayed
    assert kept.facts().lots["PEN-2291"] == lot
    assert kept.apply_hub("pt-1", "mt-1.lot.PEN-2291", 6, None) is None  # another station's key
    assert kept.apply_hub("pt-1", "pt-1.lot.PEN-2291", 7, None) == ("lot", "PEN-2291")
    assert "PEN-2291" not in kept.facts().lots
    kept.close()


def test_a_record_that_is_not_what_its_key_says_is_refused_with_the_reason(tmp_path: Path) -> None:
    kept = records.StationRecords(tmp_path / "records.sqlite3")
    with pytest.raises(records.RecordError, match="unknown record kind 'badge'"):
        kept.apply_hub("pt-1", "pt-1.badge.B-1", 1, b"{}")
    with pytest.raises(records.RecordError, match="lot record"):
        kept.apply_hub("pt-1", "pt-1.lot.L-1", 1, b'{"id": "L-1"}')
    lot = json.dumps(records.plain(f.Lot("L-2", "penetrant", AT))).encode()
    with pytest.raises(records.RecordError, match="own id is 'L-2'"):
        kept.apply_hub("pt-1", "pt-1.lot.L-1", 1, lot)
    assert kept.facts().lots == {}
    kept.close()


async def test_hub_records_reach_the_station_through_its_mirror_and_each_change_is_on_its_ledger(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    js = hub.connection.jetstream()
    await records.ensure_records_bucket(js)
    runtime = StationRuntime(agent_for(nats_floor, "pt-1", keys, tmp_path))
    await runtime.start()
    try:
        for value in PENETRANT_SHOP["person"]:
            await records.publish_record(js, "pt-1", "person", value.id, value)
        await records.publish_record(js, "mt-1", "person", "op-7", PENETRANT_SHOP["person"][0])
        await eventually(lambda: len(runtime.facts().people) == 4, what="people mirrored")
        with pytest.raises(records.RecordError):
            await records.publish_record(js, "pt-1", "person", "op-8", PENETRANT_SHOP["person"][0])
        bucket = await js.key_value(records.RECORDS_BUCKET)
        await bucket.put("pt-1.lot.L-9", b'{"id": "L-9"}')  # a bad value that did not come through us
        await eventually(lambda: bool(entries(runtime, "record.refused")), what="bad record refused")
        assert "L-9" not in runtime.facts().lots
        await records.withdraw_record(js, "pt-1", "person", "tr-1")
        await eventually(lambda: "tr-1" not in runtime.facts().people, what="withdrawn")
        received = entries(runtime, "record.received")
        assert {e.subject for e in received} == {"person/op-7", "person/op-9", "person/tr-1", "person/l3-1"}
        assert received[-1].data["deleted"] is True
    finally:
        await runtime.stop()

    restarted = StationRuntime(agent_for(nats_floor, "pt-1", keys, tmp_path))
    await restarted.start()
    try:
        assert set(restarted.facts().people) == {"op-7", "op-9", "l3-1"}  # before any connection
    finally:
        await restarted.stop()
