"""The calibration import on a real PostgreSQL: every problem by file, row, column and field; a bad file
changes nothing (no calibration, no ledger entry, no due day); a good one records all in one go, and an
out-of-tolerance row opens its recall as a calibration entered by hand does."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from openpyxl import Workbook

from smart.hub.maintenance import calibration_import
from tests.hub.conftest import HubDatabase
from tests.hub.maintenance.shop import Maintenance, meter, served

HEADER = "asset_id,calibrated_at,lab,certificate_number,traceability,in_tolerance,as_found,as_left,next_due"


def _csv(*rows: str) -> bytes:
    return ("\n".join((HEADER, *rows)) + "\n").encode()


def test_a_bad_calibration_file_names_file_row_column_and_changes_nothing(shop: Maintenance) -> None:
    hub = shop.hub
    hub.register(meter(), actor="qm-anna")
    hub.register(meter("UV-METER-2"), actor="qm-anna")
    before = [e.kind for e in shop.ledger.entries()]
    due_before = hub.equipment("UV-METER-1")
    raw = _csv(
        "UV-METER-1,2026-06-01,Metrology Lab,CAL-1,NIST 685/1,yes,,,",  # good
        "UV-METER-2,2026-06-01,Metrology Lab,,NIST 685/2,yes,,,",  # no certificate number
        "UV-METER-2,2026-06-01,Metrology Lab,CAL-2,,yes,,,",  # no traceability
        "UV-METER-2,2026-06-01,Metrology Lab,CAL-3,NIST 685/3,maybe,,,",  # not yes/no
        "NOPE-1,2026-06-01,Metrology Lab,CAL-4,NIST 685/4,yes,,,",  # not in the register
        "UV-METER-2,2026-06-01,Metrology Lab,CAL-5,NIST 685/5,yes,,,2026-05-01",  # due before the date
        "UV-METER-2,June 1st,Metrology Lab,CAL-6,NIST 685/6,yes,,,",  # not a date
    )
    checked = calibration_import.run(raw, fmt="csv", hub=hub, actor="qm", dry_run=False, file="lab-june.csv")
    assert not checked.ok
    assert [(p.row, p.column) for p in checked.problems] == [
        (3, "certificate_number"),
        (4, "traceability"),
        (5, "in_tolerance"),
        (6, "asset_id"),
        (7, "next_due"),
        (8, "calibrated_at"),
    ]
    assert all(p.message.startswith(f"lab-june.csv row {p.row}: ") for p in checked.problems)
    assert "not after the calibration date 2026-06-01" in checked.problems[4].message
    assert "NOPE-1" in checked.problems[3].message
    # nothing changed: not even the good first row
    assert hub.calibrations("UV-METER-1") == [] and hub.calibrations("UV-METER-2") == []
    assert [e.kind for e in shop.ledger.entries()] == before
    assert hub.equipment("UV-METER-1") == due_before
    unknown = calibration_import.check(b"asset_id,when\nX,1\n", fmt="csv", hub=hub, file="x.csv")
    assert {(p.row, p.column) for p in unknown.problems} >= {(1, "when"), (1, "calibrated_at")}
    assert calibration_import.check(b"", fmt="csv", hub=hub).problems[0].field == "header"
    broken = calibration_import.check(b"not a workbook", fmt="xlsx", hub=hub, file="log.xlsx")
    assert broken.problems[0].field == "file" and "log.xlsx" in broken.problems[0].message


def test_a_good_xlsx_records_every_calibration_and_an_out_of_tolerance_one_opens_its_recall(
    shop: Maintenance, hub_db: HubDatabase, tmp_path: Path
) -> None:
    hub = shop.hub
    hub.register(meter(), actor="qm-anna")
    hub.register(meter("UV-METER-2"), actor="qm-anna")
    now = datetime.now(UTC)
    served(shop, hub_db, tmp_path / "stations", [("J-31", ["UV-METER-2"], now - timedelta(days=3), "allow")])
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER.split(","))
    good_day = (now - timedelta(days=40)).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    sheet.append(["UV-METER-1", good_day, "Metrology Lab", "CAL-11", "NIST 685/11", "yes", "ok", "ok", None])
    sheet.append(["UV-METER-2", good_day, "Metrology Lab", "CAL-12", "NIST 685/12", "yes", None, None, None])
    sheet.append(
        ["UV-METER-2", now.date(), "Metrology Lab", "CAL-13", "NIST 685/13", "no", "+9 %", None, None]
    )
    out = io.BytesIO()
    book.save(out)
    dry = calibration_import.run(out.getvalue(), fmt="xlsx", hub=hub, actor="qm", file="log.xlsx")
    assert dry.ok, dry.problems
    assert dry.to_json()["calibrations"] == 3 and dry.to_json()["out_of_tolerance"] == 1
    assert dry.to_json()["assets"] == ["UV-METER-1", "UV-METER-2"]
    assert hub.calibrations("UV-METER-1") == []  # a dry run writes nothing
    done = calibration_import.run(out.getvalue(), fmt="xlsx", hub=hub, actor="qm", dry_run=False)
    assert done.ok
    (first,) = hub.calibrations("UV-METER-1")
    assert first.certificate_number == "CAL-11" and first.calibrated_at.date() == good_day.date()
    assert first.calibrated_at.hour == 12  # a day is read as noon in the shop's zone (UTC here)
    held = hub.equipment("UV-METER-1")
    assert held is not None and held.calibration_due is not None and held.calibration_due > date.today()
    second = hub.equipment("UV-METER-2")
    assert second is not None and second.blocked  # the out-of-tolerance row: blocked, due now
    (review,) = hub.reviews(asset_id="UV-METER-2")
    assert review.job == "J-31"  # served since its last good calibration (the row before, same file)
    kinds = [e.kind for e in shop.ledger.entries()]
    assert kinds.count("calibration.recorded") == 3 and kinds.count("maintenance.recall") == 1
