"""A search by instrument reads its own rows, and a hub indexed before they existed gets them on migrate."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from smart.hub.compliance import index
from smart.ledger import hub_store
from smart.testing.plugin import FreshDatabase

AT = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


def _decision(
    conn: psycopg.Connection[tuple[object, ...]], idx: int, station: str, equipment: list[str]
) -> None:
    conn.execute(
        "INSERT INTO compliance_decisions (ledger_idx, reason_no, station, node_seq, at, kind, outcome,"
        " severity, rule, equipment) VALUES (%s, 0, %s, %s, %s, 'gate.decision', 'deny', 'deny',"
        " 'calibration-current', %s)",
        (idx, station, idx, AT.replace(minute=idx), equipment),
    )


def test_a_hub_indexed_before_the_equipment_rows_finds_its_instruments_after_migrating(
    database: FreshDatabase,
) -> None:
    hub_store.migrate(database.url)
    index.migrate(database.url)
    with psycopg.connect(database.url, autocommit=True) as conn:
        # rows as an older hub wrote them: the array only, no compliance_equipment rows
        _decision(conn, 1, "ut-1", ["FLAW-2", "BLOCK-IIW-1"])
        _decision(conn, 2, "pt-1", ["UV-METER-B"])
        _decision(conn, 3, "ut-1", ["FLAW-2"])
        assert index.search(conn, index.query(conn, equipment="FLAW-2")) == []
    index.migrate(database.url)
    with psycopg.connect(database.url, autocommit=True) as conn:
        found = index.search(conn, index.query(conn, equipment="FLAW-2"))
        assert [r.ledger_idx for r in found] == [3, 1]  # newest first
        assert index.search(conn, index.query(conn, equipment="FLAW-2", station="pt-1")) == []
        one = index.search(
            conn, index.query(conn, equipment="FLAW-2", until=AT.replace(minute=2).isoformat())
        )
        assert [(r.ledger_idx, r.equipment) for r in one] == [(1, ("FLAW-2", "BLOCK-IIW-1"))]
