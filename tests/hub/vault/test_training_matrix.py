"""The training matrix import into SMART-ID: every bad cell named by row and column, nothing half written."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import Workbook

from smart import ledger
from smart.access.credential import Kind
from smart.hub.clients.importing import Format
from smart.hub.vault import training_matrix
from smart.hub.vault.smartid import SmartId, VaultError
from smart.keys import KeyStore
from smart.testing.plugin import FreshDatabase

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
TODAY = NOW.date()
STATIONS = ("pt-1", "mt-1")
HEADER = (
    "employee_id,name,badge,roles,station,record,on,scheme,method,level,exam,score,samples,test,test_type"
)


def _day(days_ago: int) -> str:
    return (TODAY - timedelta(days=days_ago)).isoformat()


GOOD = [
    HEADER,
    f"E-100,Ann Inspector,b-100,operator,pt-1,exam,{_day(400)},NAS410,PT,,general,84,,,",
    f"E-100,Ann Inspector,b-100,operator,pt-1,exam,{_day(400)},NAS410,PT,,specific,80,,,",
    f"E-100,Ann Inspector,b-100,operator,pt-1,exam,{_day(400)},NAS410,PT,,practical,91,3,,",
    f"E-100,Ann Inspector,b-100,operator,pt-1,certification,{_day(380)},NAS410,PT,2,,,,,",
    f"E-100,Ann Inspector,b-100,operator,,eye_exam,{_day(90)},,,,,,,near_vision,jaeger-1-at-12in",
    f"E-100,Ann Inspector,b-100,operator,,eye_exam,{_day(300)},,,,,,,colour_vision,ishihara",
    f"E-100,Ann Inspector,b-100,operator,,performance,{_day(7)},,PT,,,,,,",
    f"E-200,Bo Level,b-200,level3,mt-1,performance,{_day(3)},,MT,,,,,,",
]


@pytest.fixture
def smartid(database: FreshDatabase, tmp_path: Path) -> SmartId:
    keys = KeyStore(tmp_path / "keys")
    log = ledger.NodeLog.open(tmp_path / "ledger", node="smart-id", keys=keys)
    return SmartId(database.url, key=keys.signing_key("smart-id"), ledger=log, clock=lambda: NOW)


def _csv(rows: list[str]) -> bytes:
    return ("\n".join(rows) + "\n").encode()


def test_a_matrix_with_bad_rows_names_each_row_and_column_and_writes_nothing(smartid: SmartId) -> None:
    rows = [
        *GOOD[:3],
        f"E-100,Ann Inspector,b-100,operator,pt-9,certification,{_day(380)},NAS410,PT,2,,,,,",  # no pt-9
        f"E-100,Ann Inspector,b-100,operator,,certification,{_day(380)},NAS410,XR,2,,,,,",  # unknown method
        f"E-100,Ann Inspector,b-100,operator,,certification,{_day(380)},NAS410,PT,4,,,,,",  # unknown level
        "E-100,Ann Inspector,b-100,operator,,performance,yesterday,,PT,,,,,,",  # not a date
        f"E-100,Ann Inspecter,b-101,operator,,performance,{_day(1)},,PT,,,,,,",  # another badge, same person
        f"E-300,Cy,b-300,foreman,,performance,{_day(1)},,PT,,,,,,",  # unknown role
    ]
    checked = training_matrix.check(_csv(rows), Format.CSV, smartid=smartid, stations=STATIONS)
    assert not checked.ok
    assert [(p.row, p.column) for p in checked.problems] == [
        (4, "station"),
        (5, "method"),
        (6, "level"),
        (7, "on"),
        (8, "badge"),
        (9, "roles"),
    ]
    assert "pt-9" in checked.problems[0].message and "XR" in checked.problems[1].message
    with pytest.raises(VaultError, match="nothing was written"):
        training_matrix.run(checked, smartid=smartid, actor="qm")
    assert smartid.people() == [] and smartid.credentials() == []
    missing = training_matrix.check(
        b"employee_id,name\nE-1,A\n", Format.CSV, smartid=smartid, stations=STATIONS
    )
    assert {(p.row, p.column) for p in missing.problems} == {(1, "badge"), (1, "record"), (1, "on")}


def test_a_good_matrix_from_xlsx_becomes_people_records_and_current_credentials(smartid: SmartId) -> None:
    dry = training_matrix.check(_csv(GOOD), Format.CSV, smartid=smartid, stations=STATIONS)
    assert dry.ok and dry.to_json()["people"] == 2 and dry.to_json()["records"] == 8
    assert smartid.people() == []  # a dry run writes nothing
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for line in GOOD:
        cells: list[object] = [c or None for c in line.split(",")]
        cells[6] = date.fromisoformat(str(cells[6])) if cells[6] != "on" else "on"  # a date cell
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    checked = training_matrix.check(out.getvalue(), Format.XLSX, smartid=smartid, stations=STATIONS)
    assert checked.ok, checked.problems
    counts = training_matrix.run(checked, smartid=smartid, actor="qm")
    assert counts["people"] == 2 and counts["records"] == 8
    held = {
        (c.employee_id, c.credential.kind, tuple(sorted(c.credential.scope.items())))
        for c in smartid.credentials()
    }
    assert ("E-100", Kind.ACCESS, (("station", "pt-1"),)) in held
    assert ("E-100", Kind.CERTIFIED, (("level", "2"), ("method", "PT"), ("scheme", "NAS410"))) in held
    assert ("E-200", Kind.ACCESS, (("station", "mt-1"),)) in held
    again = training_matrix.check(out.getvalue(), Format.XLSX, smartid=smartid, stations=STATIONS)
    assert again.ok and not any(p.new for p in again.people)  # known people: records only
