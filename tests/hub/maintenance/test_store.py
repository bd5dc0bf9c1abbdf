"""MaintenanceHub on a real PostgreSQL: the register, due dates from the contracts, recall, bad input."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from smart import intervals
from smart.access.credential import Kind
from smart.hub.clients.store import Refused
from smart.hub.maintenance import importing
from smart.hub.maintenance.models import (
    CalibrationIn,
    DispositionIn,
    EquipmentIn,
    OrderIn,
    SignedIn,
    SurveyIn,
)
from smart.keys import KeyStore
from tests.hub.conftest import HubDatabase
from tests.hub.maintenance.shop import Maintenance, certificate, furnace, meter, served

JUNE = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def _field(err: ValidationError) -> set[str]:
    return {".".join(str(p) for p in e["loc"]) or "body" for e in err.errors()}


def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(shop: Maintenance) -> None:
    with pytest.raises(ValidationError) as seven:
        furnace(furnace_class="7")
    assert _field(seven.value) == {"furnace_class"} and "outside 1–6" in str(seven.value)
    with pytest.raises(ValidationError) as no_number:
        certificate(JUNE, certificate_number="")
    assert _field(no_number.value) == {"certificate_number"}
    with pytest.raises(ValidationError) as no_trace:
        CalibrationIn.model_validate(
            {"calibrated_at": JUNE, "lab": "L", "certificate_number": "C-1", "in_tolerance": True}
        )
    assert _field(no_trace.value) == {"traceability"}
    with pytest.raises(ValidationError) as early:
        certificate(JUNE, next_due=date(2026, 5, 1))
    assert "next_due 2026-05-01 is not after the calibration date 2026-06-01" in str(early.value)
    with pytest.raises(ValidationError) as unit:
        furnace(qualified_ranges=[{"min": 400, "max": 1100, "unit": "bar"}])
    assert _field(unit.value) == {"qualified_ranges.0.unit"}
    with pytest.raises(Refused) as station:
        shop.hub.register(meter(station="xx-9"), actor="qm-anna")
    assert station.value.field == "station"
    with pytest.raises(Refused) as unknown:
        shop.hub.record_calibration("NOPE", certificate(JUNE), actor="qm-anna")
    assert unknown.value.field == "asset_id"
    shop.hub.register(EquipmentIn(asset_id="SCALE-1", kind="scale", station="sr-1", serial="S-1"), actor="qm")
    with pytest.raises(Refused) as no_interval:  # no contract calibrates scales: the certificate must say
        shop.hub.record_calibration("SCALE-1", certificate(JUNE), actor="qm-anna")
    assert no_interval.value.field == "next_due"
    assert shop.hub.calibrations("SCALE-1") == []
    assert [e.kind for e in shop.ledger.entries()] == ["equipment.registered"]


def test_due_dates_come_from_the_contracts_and_reach_the_station_record(shop: Maintenance) -> None:
    hub = shop.hub
    hub.register(meter(), actor="qm-anna")
    calibration, recall = hub.record_calibration("UV-METER-1", certificate(JUNE), actor="qm-anna")
    assert recall is None
    assert calibration.next_due == date(2026, 12, 1)  # penetrant's light meters: 6 months, same day
    sooner, _ = hub.record_calibration(
        "UV-METER-1", certificate(JUNE + timedelta(days=30), next_due=date(2026, 10, 1)), actor="qm-anna"
    )
    assert sooner.next_due == date(2026, 10, 1)  # the certificate's own, sooner, due date
    _, record = hub.station_record("UV-METER-1")
    assert record.calibration is not None and record.calibration.in_tolerance
    assert record.calibration.due == intervals.end_of_day(date(2026, 10, 1), UTC)
    assert [c.at for c in record.calibrations] == [JUNE]

    hub.register(furnace(), actor="qm-anna")
    tus = hub.record_survey("FURNACE-2", SurveyIn(survey="TUS", surveyed_at=JUNE, passed=True), actor="qm")
    sat = hub.record_survey("FURNACE-2", SurveyIn(survey="SAT", surveyed_at=JUNE, passed=True), actor="qm")
    assert (tus.next_due, sat.next_due) == (date(2026, 7, 1), date(2026, 9, 1))  # class 2 type B
    _, oven = hub.station_record("FURNACE-2")
    assert oven.attributes["class"] == "2" and oven.attributes["instrumentation"] == "B"
    assert [(s.survey, s.at) for s in oven.survey_records] == [("TUS", JUNE), ("SAT", JUNE)]
    assert oven.ranges()[0].max.value == 1100
    with pytest.raises(Refused) as not_furnace:
        hub.record_survey("UV-METER-1", SurveyIn(survey="TUS", surveyed_at=JUNE, passed=True), actor="qm")
    assert not_furnace.value.field == "asset_id"

    tc = EquipmentIn(
        asset_id="TC-BASE-1",
        kind="thermocouple",
        station="ht-1",
        serial="T1",
        thermocouple_metal="base",
        grade="special-limits",
    )
    hub.register(tc, actor="qm-anna")
    assert hub.equipment("TC-BASE-1").kind == "thermocouple-base-metal"  # type: ignore[union-attr]
    (tc_cal, _) = hub.record_calibration("TC-BASE-1", certificate(JUNE), actor="qm-anna")
    assert tc_cal.next_due == date(2026, 9, 1)  # base metal: 3 months

    june_20 = date(2026, 6, 20)
    in_30 = [(d.asset_id, d.what) for d in hub.due(30, today=june_20)[0]]
    assert in_30 == [("FURNACE-2", "TUS")]
    in_90 = [(d.asset_id, d.what, d.overdue) for d in hub.due(90, today=june_20)[0]]
    assert in_90 == [
        ("FURNACE-2", "TUS", False),
        ("FURNACE-2", "SAT", False),
        ("TC-BASE-1", "calibration", False),
    ]
    late, late_count = hub.due(30, today=date(2026, 10, 5), limit=2)
    assert [(d.asset_id, d.what, d.overdue) for d in late][:2] == [
        ("FURNACE-2", "TUS", True),
        ("FURNACE-2", "SAT", True),
    ]
    rest, _ = hub.due(30, today=date(2026, 10, 5), limit=2, offset=2)
    assert late_count == 4 and [d.asset_id for d in rest] == ["TC-BASE-1", "UV-METER-1"]
    (at_pt,), one = hub.due(90, today=date(2026, 10, 5), station="pt-1")
    assert (at_pt.asset_id, one) == ("UV-METER-1", 1)
    kinds = [e.kind for e in shop.ledger.entries()]
    assert kinds.count("calibration.recorded") == 3 and kinds.count("survey.recorded") == 2


def test_an_out_of_tolerance_calibration_lists_the_jobs_since_the_last_good_one_for_a_signed_disposition(
    shop: Maintenance, hub_db: HubDatabase, tmp_path: Path
) -> None:
    hub = shop.hub
    hub.register(meter(), actor="qm-anna")
    hub.record_calibration("UV-METER-1", certificate(JUNE), actor="qm-anna")
    served(
        shop,
        hub_db,
        tmp_path / "stations",
        [
            ("J-0", ["UV-METER-1"], JUNE - timedelta(days=3), "allow"),  # before the last good calibration
            ("J-1", ["UV-METER-1", "TAM-1"], JUNE + timedelta(days=2), "allow"),
            ("J-1", ["UV-METER-1"], JUNE + timedelta(days=2, hours=1), "allow"),
            ("J-2", ["UV-METER-1"], JUNE + timedelta(days=5), "deny"),  # refused: never served
            ("J-3", ["TAM-1"], JUNE + timedelta(days=6), "allow"),  # another instrument
            ("J-4", ["UV-METER-1"], JUNE + timedelta(days=9), "allow"),
        ],
    )

    found_at = JUNE + timedelta(days=10)
    calibration, recall = hub.record_calibration(
        "UV-METER-1",
        certificate(found_at, in_tolerance=False, as_found="1090 µW/cm² (+9 %)"),
        actor="qm-anna",
    )
    assert recall is not None and recall.since == JUNE and recall.found_at == found_at
    assert [(r.job, r.station) for r in recall.reviews] == [("J-1", "pt-1"), ("J-4", "pt-1")]
    assert hub.equipment("UV-METER-1").blocked  # type: ignore[union-attr]
    _, record = hub.station_record("UV-METER-1")
    assert record.calibration is not None and not record.calibration.in_tolerance
    (entry,) = [e for e in shop.ledger.entries() if e.kind == "maintenance.recall"]
    assert [j["job"] for j in entry.data["jobs"]] == ["J-1", "J-4"] and entry.data["blocked"] is True

    review = recall.reviews[0]
    level_2 = shop.credential("op-7", Kind.CERTIFIED, method="PT", level="2")
    with pytest.raises(Refused, match="does not give this right") as weak:
        _run(
            hub.dispose(
                review.id, DispositionIn(disposition="re-inspect", credential=level_2), actor="qm-anna"
            )
        )
    assert weak.value.field == "credential"
    forged = KeyStore(tmp_path / "elsewhere").signing_key("smart-id")
    other = Maintenance(hub, KeyStore(tmp_path / "elsewhere"), shop.ledger)
    assert forged.key_id != shop.keys.signing_key("smart-id").key_id
    with pytest.raises(Refused, match="does not verify"):
        token = other.credential("l3-1", Kind.CERTIFIED, method="PT", level="3")
        _run(
            hub.dispose(review.id, DispositionIn(disposition="no-impact", credential=token), actor="qm-anna")
        )
    level_3 = shop.credential("l3-1", Kind.CERTIFIED, method="PT", level="3")
    done = _run(
        hub.dispose(
            review.id,
            DispositionIn(disposition="re-inspect", notes="re-inspect SN-002", credential=level_3),
            actor="qm-anna",
        )
    )
    assert (done.disposition, done.by_badge) == ("re-inspect", "l3-1")
    with pytest.raises(Refused, match="dispositioned already"):
        _run(
            hub.dispose(
                review.id, DispositionIn(disposition="no-impact", credential=level_3), actor="qm-anna"
            )
        )
    assert [r.job for r in hub.reviews(open_only=True)] == ["J-4"]
    signed = [e for e in shop.ledger.entries() if e.kind == "maintenance.recall.dispositioned"]
    assert [(e.actor, e.data["enteredBy"], e.data["job"]) for e in signed] == [("l3-1", "qm-anna", "J-1")]

    # re-calibrated in tolerance: no longer blocked; the reviews stay until dispositioned
    hub.record_calibration("UV-METER-1", certificate(found_at + timedelta(days=1)), actor="qm-anna")
    assert not hub.equipment("UV-METER-1").blocked  # type: ignore[union-attr]
    assert calibration.id in {r.calibration_id for r in hub.reviews()}


def test_a_maintenance_order_is_done_only_by_a_credential_that_gives_maintenance(shop: Maintenance) -> None:
    hub = shop.hub
    lamp = EquipmentIn.model_validate(
        {
            "asset_id": "UVA-LAMP-1",
            "kind": "uv-a-lamp",
            "station": "pt-1",
            "serial": "L-1",
            "usage_limits": [{"task": "lamp-bulb", "unit": "hours", "every": 1500, "due_within": 100}],
        }
    )
    hub.register(lamp, actor="qm-anna")
    with pytest.raises(Refused) as task:
        hub.open_order("UVA-LAMP-1", OrderIn(task="door-seal"), actor="qm-anna")
    assert task.value.field == "task"
    order = hub.open_order("UVA-LAMP-1", OrderIn(task="lamp-bulb", reason="1450 h"), actor="qm-anna")
    typed = SignedIn(credential="tech-5 " * 5)
    with pytest.raises(Refused, match="does not verify"):
        _run(hub.complete_order(order.id, typed, actor="qm-anna"))
    operator = shop.credential("tech-5", Kind.ACCESS, station="pt-1")
    with pytest.raises(Refused, match="does not give this right"):
        _run(hub.complete_order(order.id, SignedIn(credential=operator), actor="qm-anna"))
    assert hub.orders(open_only=True) == [order]
    tech = shop.credential("tech-5", Kind.UTILITY, work="maintenance")
    done = _run(hub.complete_order(order.id, SignedIn(credential=tech), actor="qm-anna"))
    assert done.done_by == "tech-5" and done.credential_id and hub.orders(open_only=True) == []
    _, record = hub.station_record("UVA-LAMP-1")
    assert record.maintained_at == done.done_at and record.usage_limits[0].every == 1500


def test_the_import_lists_every_problem_by_row_and_column_and_writes_only_a_good_file(
    shop: Maintenance,
) -> None:
    header = (
        "asset_id,kind,station,serial,furnace_class,instrumentation,range_id,range_min,range_max,range_unit\n"
    )
    bad = (
        header
        + "FURNACE-7,furnace,ht-1,F7,2,B,low,400,800,°C\n"
        + "FURNACE-7,furnace,ht-1,F7,2,B,high,800,1100,bar\n"
        + "FURNACE-8,furnace,ht-1,F8,9,B,,400,900,°F\n"
        + "AMM-1,ammeter,zz-1,A1,,,,,,\n"
    ).encode()
    checked = importing.run(bad, fmt="csv", hub=shop.hub, actor="qm-anna", dry_run=False)
    assert not checked.ok
    assert [(p.row, p.column) for p in checked.problems] == [
        (3, "range_unit"),
        (4, "furnace_class"),
        (5, "station"),
    ]
    assert shop.hub.register_list() == [] and shop.ledger.entries() == []
    good = (
        header
        + "FURNACE-7,furnace,ht-1,F7,2,B,low,400,800,°C\nFURNACE-7,furnace,ht-1,F7,2,B,high,800,1100,°C\n"
    )
    dry = importing.run(good.encode(), fmt="csv", hub=shop.hub, actor="qm-anna")
    assert dry.ok and len(dry.equipment) == 1 and shop.hub.register_list() == []
    importing.run(good.encode(), fmt="csv", hub=shop.hub, actor="qm-anna", dry_run=False)
    (oven,) = shop.hub.register_list()
    assert [r.id for r in oven.qualified_ranges] == ["low", "high"]
    written = len(shop.ledger.entries())
    # a CSV saved under an .xlsx name (openpyxl's BadZipFile): one problem naming the file, nothing written
    misnamed = good.replace("FURNACE-7", "FURNACE-9").encode()
    refused = importing.run(misnamed, fmt="xlsx", hub=shop.hub, actor="qm", dry_run=False, file="reg.xlsx")
    assert [(p.field, p.row) for p in refused.problems] == [("file", None)]
    assert refused.problems[0].message.startswith("reg.xlsx is not an XLSX workbook: it is not a zip archive")
    assert [e.asset_id for e in shop.hub.register_list()] == ["FURNACE-7"]
    assert len(shop.ledger.entries()) == written


def _run(call: Any) -> Any:
    import asyncio

    return asyncio.run(call)
