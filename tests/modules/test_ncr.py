"""NCRs: opened from a real measurement refusal, dispositioned per DOMAIN rule 32, blocking release."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smart.contracts import engine
from smart.contracts import facts as f
from smart.modules.qa import module, ncr

AT = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)

UV_A = {
    "kind": "measurement",
    "id": "uv-a-daily",
    "quantity": "uv-a-intensity",
    "unit": "µW/cm²",
    "limits": {"min": 1000},
    "appliesTo": ["measure"],
}
RELEASE = {"kind": "recordComplete", "id": "release"}


def judge(rule: dict[str, Any], event: f.Event, facts: f.Facts | None = None) -> engine.Decision:
    bundle = {
        "contract": "pt",
        "station": "pt-1",
        "stationLabels": {},
        "enforcement": "enforce",
        "window": {},
        "timezone": "UTC",
        "rules": [rule],
    }
    return engine.evaluator(bundle, "rev-1").evaluate(event, facts or f.Facts())


def reject() -> tuple[engine.Reason, f.Event]:
    event = f.Event(
        action="measure",
        at=AT,
        station="pt-1",
        person="op-7",
        job="J-1001",
        readings={"uv-a-intensity": f.Reading(940.0, "µW/cm²")},
        scan=f.Scan(po="PO-77", line="1", part="BRKT-220", serial="SN-0042"),
    )
    decision = judge(UV_A, event)
    assert decision.outcome == "deny"
    return decision.reasons[0], event


def opened() -> ncr.Nonconformance:
    reason, event = reject()
    return ncr.open_from_reason(reason, event, cites=("ASTM E1417 7.8.2",))


def test_a_uv_a_reject_opens_an_ncr_naming_value_limits_job_part_and_who() -> None:
    record = opened()
    assert record.id == "NCR-pt-1-20260310T090000-J-1001-uv-a-intensity"
    assert (record.job, record.part, record.serial) == ("J-1001", "BRKT-220", "SN-0042")
    assert (record.measured, record.unit) == (940.0, "µW/cm²")
    assert (record.limit_min, record.limit_max, record.limit_unit) == (1000.0, None, "µW/cm²")
    assert (record.opened_by, record.opened_at, record.rule) == ("op-7", AT, "uv-a-daily")
    assert record.cites == ("ASTM E1417 7.8.2",)
    assert "940" in record.message and record.open


def test_part_and_serial_come_from_event_attributes_without_a_scan() -> None:
    reason, _ = reject()
    bare = f.Event(
        action="measure", at=AT, station="pt-1", attributes={"part": "P-9", "serial": "S-1"}, job="J-2"
    )
    record = ncr.open_from_reason(reason, bare)
    assert (record.part, record.serial, record.job) == ("P-9", "S-1", "J-2")


@pytest.mark.parametrize("disposition", ["use-as-is", "repair"])
def test_accepting_a_nonconforming_part_is_refused_without_design_authority(disposition: str) -> None:
    with pytest.raises(ncr.NcrRefused) as refused:
        ncr.dispose(opened(), disposition=disposition, by="mrb-1", at=AT + HOUR)
    assert refused.value.reason.rule == "ncr.design-authority"
    assert "design authority's approval" in str(refused.value)
    assert refused.value.reason.values["disposition"] == disposition
    with pytest.raises(ncr.NcrRefused):
        ncr.dispose(opened(), disposition=disposition, by="mrb-1", at=AT, design_authority_approval="  ")


def test_use_as_is_with_design_authority_approval_closes_the_ncr() -> None:
    done = ncr.dispose(
        opened(), disposition="use-as-is", by="mrb-1", at=AT + HOUR, design_authority_approval="DA-2026-014"
    )
    assert not done.open and done.closed_at == AT + HOUR
    assert done.design_authority_approval == "DA-2026-014"
    assert ncr.to_fact(done) == f.Ncr(done.id, False, "use-as-is", "DA-2026-014")


def test_repair_with_approval_stays_open_until_reinspected() -> None:
    repaired = ncr.dispose(
        opened(), disposition="repair", by="mrb-1", at=AT + HOUR, design_authority_approval="DA-9"
    )
    assert repaired.open
    with pytest.raises(ncr.NcrRefused, match="re-inspection after repair"):
        ncr.close(repaired, by="qa-2", at=AT + 2 * HOUR, evidence=" ")
    closed = ncr.close(repaired, by="qa-2", at=AT + 2 * HOUR, evidence="re-inspected: no indications")
    assert not closed.open and closed.closing_evidence == "re-inspected: no indications"


def test_rework_needs_no_design_authority_but_closes_on_reinspection() -> None:
    reworked = ncr.dispose(opened(), disposition="rework", by="mrb-1", at=AT + HOUR)
    assert reworked.open and reworked.design_authority_approval is None


def test_scrap_is_controlled_until_made_unusable() -> None:
    scrapped = ncr.dispose(opened(), disposition="scrap", by="mrb-1", at=AT + HOUR)
    assert scrapped.open
    with pytest.raises(ncr.NcrRefused, match="made unusable"):
        ncr.close(scrapped, by="qa-2", at=AT + 2 * HOUR, evidence="")
    done = ncr.close(scrapped, by="qa-2", at=AT + 2 * HOUR, evidence="cut in two, quarantine bin 3")
    assert not done.open


def test_dispositions_are_refused_when_unknown_repeated_or_closed() -> None:
    with pytest.raises(ncr.NcrRefused, match="not a disposition"):
        ncr.dispose(opened(), disposition="ship-it", by="mrb-1", at=AT)
    reworked = ncr.dispose(opened(), disposition="rework", by="mrb-1", at=AT)
    with pytest.raises(ncr.NcrRefused, match="already dispositioned rework by mrb-1"):
        ncr.dispose(reworked, disposition="scrap", by="mrb-2", at=AT)
    with pytest.raises(ncr.NcrRefused, match="no disposition yet"):
        ncr.close(opened(), by="qa-2", at=AT, evidence="looked fine")
    closed = ncr.close(reworked, by="qa-2", at=AT, evidence="re-inspected")
    with pytest.raises(ncr.NcrRefused, match="closed"):
        ncr.dispose(closed, disposition="scrap", by="mrb-1", at=AT)


def test_an_open_ncr_blocks_release_and_a_closed_one_does_not() -> None:
    record = opened()
    release = f.Event(action="release", at=AT + 3 * HOUR, station="pt-1", job="J-1001")

    def job_with(*records: ncr.Nonconformance) -> f.Facts:
        return f.Facts(jobs={"J-1001": f.Job("J-1001", ncrs=ncr.job_facts(records, "J-1001"))})

    blocked = judge(RELEASE, release, job_with(record))
    assert blocked.outcome == "deny"
    assert blocked.reasons[0].values["ncr"] == record.id
    closed = ncr.close(
        ncr.dispose(record, disposition="rework", by="mrb-1", at=AT + HOUR),
        by="qa-2",
        at=AT + 2 * HOUR,
        evidence="re-inspected",
    )
    assert judge(RELEASE, release, job_with(closed)).outcome == "allow"


def test_job_facts_keep_only_the_jobs_ncrs_oldest_first() -> None:
    first = opened()
    later = ncr.Nonconformance(
        "NCR-2", "pt-1", "dwell", AT + HOUR, "op-7", "dwell", "short dwell", job="J-1001"
    )
    other = ncr.Nonconformance("NCR-3", "pt-1", "dwell", AT, "op-7", "dwell", "short", job="J-9")
    assert [n.id for n in ncr.job_facts([later, other, first], "J-1001")] == [first.id, "NCR-2"]


def test_an_ncr_round_trips_through_json() -> None:
    record = ncr.dispose(opened(), disposition="repair", by="mrb-1", at=AT, design_authority_approval="DA-1")
    text = json.dumps(record.to_json())
    assert ncr.Nonconformance.from_json(json.loads(text)) == record
    assert json.loads(text)["open"] is True


def test_qa_opens_one_ncr_per_measurement_reject_and_keeps_the_deny() -> None:
    reason, event = reject()
    result = module.assess("deny", (reason,), event, {}, cites={"uv-a-daily": ("ASTM E1417 7.8.2",)})
    assert result.outcome == "deny"
    assert [n.id for n in result.opened] == [opened().id]
    assert result.opened[0].cites == ("ASTM E1417 7.8.2",)
    assert "uv-a-intensity" in result.charts


def test_a_missing_reading_or_an_audit_warning_opens_no_ncr() -> None:
    event = f.Event(action="measure", at=AT, station="pt-1", job="J-1001")
    missing = judge(UV_A, event)
    assert missing.outcome == "deny"
    assert module.assess("deny", missing.reasons, event, {}).opened == ()
    reason, rejected = reject()
    audited = engine.Reason(reason.rule, reason.message, reason.values, "warn", True)
    assert module.assess("warn", (audited,), rejected, {}).opened == ()


def test_a_reject_with_no_job_in_hand_is_the_equipments_and_opens_no_ncr() -> None:
    reason, event = reject()
    at_the_gate = dataclasses.replace(event, job=None, action="operate")
    result = module.assess("deny", (reason,), at_the_gate, {})
    assert result.outcome == "deny" and result.opened == ()


def test_an_ncr_id_from_a_job_with_spaces_slashes_and_accents_is_a_key_station_records_can_hold() -> None:
    """The hub's disposition travels under ``<station>.ncr-decision.<id>``: the id must be a NATS key."""
    made = ncr.ncr_id(station="pt-1", at=AT, characteristic="UV-A intensité", job="TR 2026/001")
    assert made == "NCR-pt-1-20260310T090000-TR_2026_001-UV-A_intensit_"
    assert re.fullmatch(r"[-/_=.a-zA-Z0-9]+", f"pt-1.ncr-decision.{made}")
    plain = ncr.ncr_id(station="pt-1", at=AT, characteristic="uv-a-intensity", job="J1")
    assert plain == "NCR-pt-1-20260310T090000-J1-uv-a-intensity"  # readable ids stay as they were
