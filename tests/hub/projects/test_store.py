"""Projects' own schema: planned milestone dates on its ledger node, and Pay's invoices from the hub log."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest

from smart import ledger
from smart.hub import migrations, projects
from smart.hub.clients.store import Refused
from smart.hub.gathering import HubNodeGathering
from smart.hub.projects import store as projects_store
from smart.hub.service_log import PAY, PROJECTS
from smart.ledger import hub_store
from tests.hub.shop import QM, Work, entered


def test_planned_milestones_are_recorded_moved_with_a_reason_and_late_when_missed(work: Work) -> None:
    entered(work)
    assert migrations.versions(work.db.owner_url, "projects") == [1]
    plans = projects_store.Projects(work.db.app_url, ledger=work.node(PROJECTS))
    work.closing.append(plans.close)
    plans.plan("PO-4411", "shipped", date(2026, 12, 16), actor=QM)
    with pytest.raises(Refused) as unknown:
        plans.plan("PO-4411", "painted", date(2026, 12, 16), actor=QM)
    assert unknown.value.field == "milestone"
    with pytest.raises(Refused) as no_po:
        plans.plan("PO-9", "shipped", date(2026, 12, 16), actor=QM)
    assert no_po.value.field == "po"
    with pytest.raises(Refused) as no_reason:
        plans.plan("PO-4411", "shipped", date(2026, 12, 17), actor=QM)
    assert no_reason.value.field == "reason"
    assert plans.plans("PO-4411")["shipped"].due_on == date(2026, 12, 16)  # the refusals wrote nothing
    moved = plans.plan("PO-4411", "shipped", date(2026, 12, 17), actor=QM, reason="client moved pickup")
    assert moved.version == 2
    entries = work.node(PROJECTS).entries()
    assert [e.kind for e in entries] == ["project.milestone.planned"] * 2
    assert (
        entries[1].data["before"]["dueOn"] == "2026-12-16"
        and entries[1].data["after"]["dueOn"] == "2026-12-17"
    )
    assert entries[1].actor == QM

    with psycopg.connect(work.db.app_url, autocommit=True) as conn:
        on_time = projects.progress(conn, "PO-4411", today=date(2026, 12, 17))
        missed = projects.progress(conn, "PO-4411", today=date(2026, 12, 18))
        assert on_time is not None and not on_time.late
        assert missed is not None and missed.late_milestones == ("shipped",) and missed.late
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # the app role never deletes a plan
            conn.execute("DELETE FROM projects.milestone_plans")


def test_invoiced_comes_from_pays_entries_in_the_hub_log(work: Work) -> None:
    entered(work)
    pay_dir = work.ledger_dir.parent / "business"
    with ledger.NodeLog.open(pay_dir, node=PAY, keys=work.keys) as pay:
        pay.append(
            kind="invoice.issued",
            subject="INV-000001",
            data={
                "document": "INV-000001",
                "po": "PO-4411",
                "issuedAt": "2026-12-17T09:00:00+00:00",
                "lines": [{"line": "1", "quantity": 2, "amount": "85.00"}],
            },
            actor=QM,
        )
        pay.sign_head()
    with hub_store.HubLog.connect(work.db.app_url, key=work.keys.signing_key("hub")) as hub_log:
        HubNodeGathering(pay_dir, hub_log, work.keys).gather_once()
    index = projects_store.InvoiceIndex.connect(work.db.app_url)
    try:
        assert index.index_once() == 1
        assert index.index_once() == 0  # read again: nothing twice
    finally:
        index.close()
    with psycopg.connect(work.db.app_url, autocommit=True) as conn:
        board = projects.progress(conn, "PO-4411", today=date(2026, 12, 17))
        assert board is not None
        invoiced = {m.name: m.reached_at for m in board.milestones}["invoiced"]
        assert invoiced is not None and invoiced.isoformat() == "2026-12-17T09:00:00+00:00"
