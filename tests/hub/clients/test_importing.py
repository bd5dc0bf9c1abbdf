"""Importing clients, POs and lines from CSV and XLSX: a dry run lists every problem by row and column."""

from __future__ import annotations

import io

from openpyxl import Workbook

from smart.hub.clients import importing
from smart.hub.service_log import CLIENT_MANAGER
from tests.hub.shop import QM, Work, client

HEADER = (
    "po,client,received_on,line,part,part_revision,quantity,unit,serials,lot,unit_price,due_date,"
    "spec,spec_revision,class,acceptance_criteria,nadcap_required,retention\n"
)
GOOD = HEADER + (
    "PO-5001,AEROSPAR,2026-12-01,1,BRK-220,C,2,ea,SN-101;SN-102,,42.50,2026-12-20,"
    "ASTM E1417-21,21,Type-I,no linear indication over 1/16 in,yes,\n"
    "PO-5001,AEROSPAR,2026-12-01,1,,,,,,,,,AMS 2750,G,Class-2,per furnace survey,yes,\n"
    "PO-5001,AEROSPAR,2026-12-01,2,HNG-14,A,40,lot,,LOT-77,3.10,2027-01-05,"
    "ASTM E1417-21,21,Type-I,no linear indication over 1/16 in,yes,\n"
    "PO-5002,AEROSPAR,2026-12-02,1,BRK-220,C,1,ea,SN-201,,42.50,2026-12-22,"
    "ASTM E1417-21,21,Type-I,no linear indication over 1/16 in,yes,\n"
)
BAD = HEADER + (
    "PO-6001,AEROSPAR,2026-12-01,1,BRK-220,C,2,ea,SN-1;SN-2,,42.50,2026-13-45,"
    "ASTM E1417-21,21,Type-I,none over 1/16 in,yes,\n"
    "PO-6001,AEROSPAR,2026-12-01,2,BRK-220,C,2,kg,,LOT-1,42.50,2026-12-20,"
    "ASTM E1417-21,21,Type-I,none over 1/16 in,yes,\n"
    "PO-6002,AEROSPAR,2026-12-01,1,BRK-220,C,3,ea,SN-7;SN-8,,42.50,2026-12-20,,,,,,\n"
    "PO-6003,AEROSPAR,2026-12-01,1,BRK-220,C,1,ea,SN-9,,42.50,2026-12-20,"
    "ASTM E1417-21,21,Type-I,none over 1/16 in,yes,\n"
)


def test_a_dry_run_of_a_good_file_writes_nothing_and_the_import_enters_every_line_with_its_flowdowns(
    work: Work,
) -> None:
    work.clients.add_client(client(), actor=QM)
    dry = importing.run(
        GOOD.encode(),
        fmt=importing.Format.CSV,
        what=importing.What.LINES,
        clients=work.clients,
        actor=QM,
        source="pos.csv",
        dry_run=True,
    )
    assert dry.ok and len(dry.orders) == 2 and sum(len(o.lines) for o in dry.orders) == 3
    assert work.clients.po("PO-5001") is None
    importing.run(
        GOOD.encode(),
        fmt=importing.Format.CSV,
        what=importing.What.LINES,
        clients=work.clients,
        actor=QM,
        source="pos.csv",
        dry_run=False,
    )
    order = work.clients.po("PO-5001")
    assert order is not None
    first = order.lines[0]
    assert [f.spec for f in first.flowdowns] == ["ASTM E1417-21", "AMS 2750"]
    assert first.flowdowns[0].retention == "10 years after final payment"  # the client's rule
    assert order.lines[1].lot == "LOT-77" and order.lines[1].serials == ()
    kinds = [e.kind for e in work.node(CLIENT_MANAGER).entries()]
    assert kinds.count("po.imported") == 1  # both POs, whole, in one slice


def test_a_bad_file_is_refused_whole_with_every_problem_by_row_and_column(work: Work) -> None:
    work.clients.add_client(client(), actor=QM)
    checked = importing.run(
        BAD.encode(),
        fmt=importing.Format.CSV,
        what=importing.What.LINES,
        clients=work.clients,
        actor=QM,
        source="bad.csv",
        dry_run=False,
    )
    assert not checked.ok
    found = {(p.row, p.column) for p in checked.problems}
    assert (2, "due_date") in found  # 2026-13-45 is no date
    assert (3, "unit") in found  # kg is not a unit a line is counted in
    assert (4, "spec") in found  # no flowdown
    assert [p.column for p in checked.problems if p.row == 4] == ["spec"]  # said once, not per column
    by_place = {(p.row, p.column): p.message for p in checked.problems}
    assert "date" in by_place[(2, "due_date")]
    assert work.clients.po("PO-6003") is None  # the good row was not written either
    assert work.node(CLIENT_MANAGER).entries()[-1].kind == "client.added"


def test_an_xlsx_of_clients_is_read_like_a_csv_and_a_quantity_that_does_not_reconcile_is_named(
    work: Work,
) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["code", "name", "retention", "nadcap_required", "quality_clauses"])
    sheet.append(["AEROSPAR", "Aerospar Structures", "10 years after final payment", "yes", "QC-7; QC-12"])
    sheet.append(["TURBOFAB", "Turbofab", "7 years", "no", ""])
    buffer = io.BytesIO()
    book.save(buffer)
    checked = importing.run(
        buffer.getvalue(),
        fmt=importing.Format.XLSX,
        what=importing.What.CLIENTS,
        clients=work.clients,
        actor=QM,
        source="clients.xlsx",
        dry_run=False,
    )
    assert checked.ok, checked.problems
    aerospar = work.clients.client("AEROSPAR")
    assert aerospar is not None and aerospar.quality_clauses == ("QC-7", "QC-12")

    unreconciled = HEADER + (
        "PO-7001,AEROSPAR,2026-12-01,1,BRK-220,C,3,ea,SN-1;SN-2,,42.50,2026-12-20,"
        "ASTM E1417-21,21,Type-I,none over 1/16 in,yes,\n"
    )
    refused = importing.check(unreconciled.encode(), fmt=importing.Format.CSV, what=importing.What.LINES)
    (problem,) = refused.problems
    assert (problem.row, problem.column) == (2, "quantity")
    assert "does not reconcile with 2 serials" in problem.message


def test_a_damaged_workbook_or_a_csv_that_is_not_utf8_is_one_problem_naming_the_file_and_nothing_is_written(
    work: Work,
) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["code", "name", "retention", "nadcap_required", "quality_clauses"])
    sheet.append(["AEROSPAR", "Aerospar Structures", "10 years after final payment", "yes", ""])
    buffer = io.BytesIO()
    book.save(buffer)
    whole = buffer.getvalue()
    before = len(work.node(CLIENT_MANAGER).entries())
    damaged = {
        # cut short in an e-mail: a zip whose central directory is gone (openpyxl: BadZipFile)
        ("clients.xlsx", importing.Format.XLSX): whole[: len(whole) // 2],
        # a CSV renamed .xlsx
        ("renamed.xlsx", importing.Format.XLSX): b"code,name\nAEROSPAR,Aerospar\n",
        # saved in a legacy code page
        ("latin1.csv", importing.Format.CSV): "code,name\nAEROSPAR,Aérospar\n".encode("latin-1"),
    }
    for (name, fmt), raw in damaged.items():
        checked = importing.run(
            raw,
            fmt=fmt,
            what=importing.What.CLIENTS,
            clients=work.clients,
            actor=QM,
            source=name,
            dry_run=False,
        )
        (problem,) = checked.problems
        assert problem.field == "file" and problem.message.startswith(name), problem
    assert (
        "not an XLSX workbook"
        in importing.check(
            damaged[("renamed.xlsx", importing.Format.XLSX)],
            fmt=importing.Format.XLSX,
            what=importing.What.CLIENTS,
        )
        .problems[0]
        .message
    )
    assert work.clients.client("AEROSPAR") is None
    assert len(work.node(CLIENT_MANAGER).entries()) == before
