"""ClientManager on real PostgreSQL: POs with flowdowns, contract review re-opened by a change, the ledger."""

from __future__ import annotations

import psycopg
import pytest
from pydantic import ValidationError

from smart.hub import migrations
from smart.hub.clients import store
from smart.hub.clients.models import Outcome, ReviewIn
from smart.hub.service_log import CLIENT_MANAGER
from tests.hub.conftest import HubDatabase
from tests.hub.shop import QM, Work, client, line, order


def test_a_po_line_without_flowdowns_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as refused:
        line(flowdowns=())
    assert "flowdowns" in str(refused.value)


def test_a_quantity_that_does_not_reconcile_with_the_serials_is_refused() -> None:
    with pytest.raises(ValidationError) as refused:
        line(quantity=3)
    assert "quantity: 3 does not reconcile with 2 serials" in str(refused.value)


def test_a_po_for_an_unknown_client_writes_nothing(work: Work) -> None:
    with pytest.raises(store.Refused) as refused:
        work.clients.add_po(order(), actor=QM)
    assert refused.value.field == "client"
    assert work.clients.po("PO-4411") is None
    assert work.node(CLIENT_MANAGER).entries() == []


def test_a_change_after_review_reopens_it_and_every_change_is_on_the_ledger(work: Work) -> None:
    work.clients.add_client(client(), actor=QM)
    work.clients.add_po(order(), actor=QM)
    reviewed = work.clients.review("PO-4411", "1", ReviewIn(outcome=Outcome.ACCEPTED, notes="ok"), actor=QM)
    assert reviewed.reviewed and reviewed.reviews[0].reviewer == QM
    changed = work.clients.change_line(
        "PO-4411", line(due_date=reviewed.due_date.replace(day=20)), actor="planner"
    )
    assert changed.version == 2 and not changed.reviewed
    entries = work.node(CLIENT_MANAGER).entries()
    assert [e.kind for e in entries] == ["client.added", "po.added", "po.line.reviewed", "po.line.changed"]
    last = entries[-1]
    assert last.actor == "planner" and last.data["reviewReopened"] is True
    assert last.data["before"]["due_date"] == "2026-12-18" and last.data["after"]["due_date"] == "2026-12-20"
    again = work.clients.review("PO-4411", "1", ReviewIn(outcome=Outcome.ACCEPTED), actor=QM)
    assert again.reviewed and [r.line_version for r in again.reviews] == [1, 2]


def test_a_client_requiring_nadcap_refuses_a_flowdown_without_it_and_keeps_nothing(work: Work) -> None:
    from tests.hub.shop import flowdown

    work.clients.add_client(client(), actor=QM)
    with pytest.raises(store.Refused) as refused:
        work.clients.add_po(order("PO-1", line(flowdowns=(flowdown(nadcap_required=False),))), actor=QM)
    assert refused.value.field == "flowdowns[0].nadcap_required"
    assert work.clients.po("PO-1") is None


def test_the_app_role_cannot_rewrite_a_review(work: Work, hub_db: HubDatabase) -> None:
    work.clients.add_client(client(), actor=QM)
    work.clients.add_po(order(), actor=QM)
    work.clients.review("PO-4411", "1", ReviewIn(outcome=Outcome.ACCEPTED), actor=QM)
    with (
        psycopg.connect(hub_db.app_url, autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("UPDATE clients.contract_reviews SET reviewer = 'someone-else'")


def test_migrations_run_once_and_an_applied_file_edited_in_place_is_refused(
    hub_db: HubDatabase, tmp_path: object
) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_first.sql").write_text("CREATE TABLE things (id int);")
    assert migrations.apply(
        hub_db.owner_url, schema="scratch", directory=folder, grants={"things": "SELECT"}
    ) == [1]
    assert (
        migrations.apply(hub_db.owner_url, schema="scratch", directory=folder, grants={"things": "SELECT"})
        == []
    )
    (folder / "0002_second.sql").write_text("ALTER TABLE things ADD COLUMN name text;")
    assert migrations.apply(hub_db.owner_url, schema="scratch", directory=folder, grants={}) == [2]
    (folder / "0001_first.sql").write_text("CREATE TABLE things (id bigint);")
    with pytest.raises(migrations.MigrationError, match=r"0001_first\.sql: edited after it was applied"):
        migrations.apply(hub_db.owner_url, schema="scratch", directory=folder, grants={})
    assert migrations.versions(hub_db.owner_url, "scratch") == [1, 2]
