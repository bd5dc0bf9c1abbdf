"""The dashboard's current-state tables: kept by the database from the index rows, read-only for the app.

The jobs panel counts each job's latest move from ``dashboard_jobs_now`` and the SPC panel picks its
charts from ``dashboard_characteristics``; both must say what a scan of the moves and readings says,
whatever order the index wrote them in, and a hub indexed before them gets them filled on migration.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from smart.hub import means
from smart.hub.dashboard import index, panels
from tests.hub.conftest import HubDatabase

AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = panels.Day(AT.date(), AT - timedelta(hours=12), AT + timedelta(hours=12))

#: (ledger_idx, station, job, state), written out of order: J-2's "gated" after its "in-process".
MOVES = (
    (10, "pt-1", "J-1", "traveler-scanned"),
    (11, "pt-1", "J-1", "gated"),
    (12, "pt-1", "J-1", "in-process"),
    (20, "pt-1", "J-2", "traveler-scanned"),
    (22, "pt-1", "J-2", "in-process"),
    (21, "pt-1", "J-2", "gated"),
    (30, "mt-1", "J-1", "in-process"),
    (31, "mt-1", "J-1", "released"),
    (32, "mt-1", "J-1", "handed-off"),
    (40, "mt-1", "J-3", "gated"),
)


def _move(conn: psycopg.Connection[Any], idx: int, station: str, job: str, state: str) -> None:
    conn.execute(
        "INSERT INTO dashboard_job_states (ledger_idx, station, job, verb, state, allowed, at)"
        " VALUES (%s, %s, %s, 'move', %s, true, %s)",
        (idx, station, job, state, AT + timedelta(minutes=idx)),
    )


def _read(conn: psycopg.Connection[Any], idx: int, station: str, characteristic: str, value: float) -> None:
    conn.execute(
        "INSERT INTO dashboard_readings (ledger_idx, characteristic, station, value, unit, at)"
        " VALUES (%s, %s, %s, %s, 'u', %s)",
        (idx, characteristic, station, value, AT + timedelta(minutes=idx)),
    )


def _scanned(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """What the jobs panel said before the current-state table: the latest move of every job, counted."""
    return conn.execute(
        "SELECT station, state, count(*) FROM (SELECT DISTINCT ON (station, job) station, job, state"
        " FROM dashboard_job_states ORDER BY station, job, ledger_idx DESC) latest"
        " WHERE state = ANY(%s) GROUP BY station, state ORDER BY station, state",
        (list(index.IN_PROGRESS),),
    ).fetchall()


def _shown(panel: panels.Panel) -> list[tuple[str, ...]]:
    return [tuple(cell.text for cell in row) for row in panel.rows]


@pytest.fixture
def migrated(hub_db: HubDatabase) -> HubDatabase:
    index.migrate(hub_db.owner_url)
    return hub_db


def test_the_jobs_and_spc_panels_read_current_state_kept_by_the_database_as_the_index_writes(
    migrated: HubDatabase,
) -> None:
    with psycopg.connect(migrated.app_url, autocommit=True) as app:
        for move in MOVES:
            _move(app, *move)
        for n in range(12):
            _read(app, 100 + n, "pt-1", "uv-a-intensity", 1180 + n % 3)
        for n in range(4):
            _read(app, 200 + n, "mt-1", "field-strength", 30 + n)
        _read(app, 300, "ut-1", "gain", 1)  # two readings: too few for a chart
        _read(app, 301, "ut-1", "gain", 2)

        now = app.execute("SELECT station, job, state, ledger_idx FROM dashboard_jobs_now ORDER BY 1, 2")
        assert now.fetchall() == [
            ("mt-1", "J-1", "handed-off", 32),
            ("mt-1", "J-3", "gated", 40),
            ("pt-1", "J-1", "in-process", 12),
            ("pt-1", "J-2", "in-process", 22),  # not the "gated" written after it
        ]
        jobs = panels.jobs_in_progress(app, DAY)
        assert _shown(jobs) == [(s, state, str(n)) for s, state, n in _scanned(app)]
        assert _shown(jobs) == [("mt-1", "gated", "1"), ("pt-1", "in-process", "2")]
        assert jobs.rows[1][2].href == "/dashboard/jobs?station=pt-1&state=in-process"

        counted = app.execute(
            "SELECT station, characteristic, readings, last_idx FROM dashboard_characteristics ORDER BY 1, 2"
        ).fetchall()
        assert counted == [
            ("mt-1", "field-strength", 4, 203),
            ("pt-1", "uv-a-intensity", 12, 111),
            ("ut-1", "gain", 2, 301),
        ]
        spc = panels.spc_charts(app, DAY)
        assert [row[0].text for row in spc.rows] == ["uv-a-intensity at pt-1", "field-strength at mt-1"]
        assert [row[1].text for row in spc.rows] == ["12", "4"]
        assert spc.charts[0]["values"] == [1180 + n % 3 for n in range(12)]  # oldest first
        assert spc.charts[1]["values"] == [30, 31, 32, 33]

        # The app role appends moves and readings; what a job's state or a chart's count is, it cannot write.
        for statement in (
            "UPDATE dashboard_jobs_now SET state = 'gated'",
            "INSERT INTO dashboard_jobs_now VALUES ('pt-1', 'J-9', 'move', 'gated', now(), 99)",
            "DELETE FROM dashboard_characteristics",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(statement)


def test_a_hub_indexed_before_the_current_state_tables_gets_them_filled_when_it_migrates(
    migrated: HubDatabase,
) -> None:
    with psycopg.connect(migrated.app_url, autocommit=True) as app:
        for move in MOVES:
            _move(app, *move)
        for n in range(5):
            _read(app, 100 + n, "pt-1", "uv-a-intensity", 1180 + n)
        kept = app.execute("SELECT * FROM dashboard_jobs_now ORDER BY 1, 2").fetchall()
    with psycopg.connect(migrated.owner_url, autocommit=True) as owner:
        owner.execute("DROP TABLE dashboard_jobs_now, dashboard_characteristics")  # as before them
        owner.execute("DROP FUNCTION dashboard_job_moved, dashboard_reading_taken CASCADE")
    index.migrate(migrated.owner_url)
    index.migrate(migrated.owner_url)  # again: nothing doubled
    with psycopg.connect(migrated.app_url, autocommit=True) as app:
        assert app.execute("SELECT * FROM dashboard_jobs_now ORDER BY 1, 2").fetchall() == kept
        counted = app.execute("SELECT readings, last_idx FROM dashboard_characteristics").fetchall()
        assert counted == [(5, 104)]
        _move(app, 41, "mt-1", "J-3", "in-process")  # and the trigger keeps them from there
        _read(app, 105, "pt-1", "uv-a-intensity", 1185)
        assert _shown(panels.jobs_in_progress(app, DAY)) == [(s, st, str(n)) for s, st, n in _scanned(app)]
        assert app.execute("SELECT readings FROM dashboard_characteristics").fetchall() == [(6,)]


#: What the yield panel judged per page before the tally (kept here as the reference it must agree with).
JUDGED_PER_PAGE = (
    "WITH jobs AS (SELECT station, job, part, po FROM handoff_jobs"
    " UNION SELECT DISTINCT n.station, n.job, n.part, NULL FROM qa.ncr_events n WHERE n.job IS NOT NULL"
    "  AND NOT EXISTS (SELECT 1 FROM handoff_jobs h WHERE h.station = n.station AND h.job = n.job)),"
    " judged AS (SELECT j.*, EXISTS (SELECT 1 FROM qa.ncr_events n WHERE n.station = j.station"
    "  AND n.job = j.job) AS ncr FROM jobs j)"
    " SELECT 'station', station, po, count(*), count(*) FILTER (WHERE NOT ncr) FROM judged"
    "  GROUP BY station, po"
    " UNION ALL SELECT 'part', coalesce(part, 'unknown'), po, count(*), count(*) FILTER (WHERE NOT ncr)"
    "  FROM judged GROUP BY part, po"
)


def _handoff(conn: psycopg.Connection[Any], idx: int, station: str, job: str, part: str, po: str) -> None:
    conn.execute(
        "INSERT INTO handoff_jobs (station, job, po, line, part, handed_off_at, ledger_idx, node_seq,"
        " entry_hash) VALUES (%s, %s, %s, '1', %s, %s, %s, %s, '\\x00')",
        (station, job, po, part, AT, idx, idx),
    )


def _ncr(conn: psycopg.Connection[Any], idx: int, station: str, job: str, part: str, kind: str) -> None:
    conn.execute(
        "INSERT INTO qa.ncr_events (ledger_idx, station, ncr, kind, job, part, record, at, node_seq,"
        " entry_hash) VALUES (%s, %s, %s, %s, %s, %s, '{}', %s, %s, '\\x00')",
        (idx, station, f"NCR-{job}", kind, job, part, AT, idx),
    )


def test_the_yield_tally_moves_as_jobs_are_handed_off_and_ncrs_opened_and_agrees_with_judging_them_all(
    migrated: HubDatabase,
) -> None:
    with psycopg.connect(migrated.app_url, autocommit=True) as app:  # no NCRs here: no yield, not 100 %
        unknown = panels.run(app, ("yield", "First-pass yield", panels.first_pass_yield), DAY)
        assert unknown.unavailable and "ncr_events" in unknown.unavailable and not unknown.rows
    means.migrate(migrated.owner_url)
    with psycopg.connect(migrated.owner_url, autocommit=True) as owner:
        follower = index.YieldFollower(owner)

        def tallied() -> set[tuple[Any, ...]]:
            assert follower.index_once() >= 0
            with psycopg.connect(migrated.app_url, autocommit=True) as app:
                panel = panels.first_pass_yield(app, DAY)
                kept = app.execute(
                    "SELECT grouped_by, key, nullif(po, ''), jobs, first_pass FROM dashboard_yield"
                    " WHERE jobs > 0"
                ).fetchall()
            judged = set(owner.execute(JUDGED_PER_PAGE).fetchall())
            assert set(kept) == judged
            return {tuple(cell.text for cell in row) for row in panel.rows}

        _handoff(owner, 10, "pt-1", "J-1", "BRK-1", "PO-1")
        _handoff(owner, 11, "pt-1", "J-2", "BRK-1", "PO-1")
        _ncr(owner, 12, "mt-1", "J-3", "BRK-2", "opened")  # an NCR before its job is handed off
        assert ("station", "pt-1", "2/2", "100.0 %") in tallied()
        _ncr(owner, 13, "pt-1", "J-2", "BRK-1", "opened")  # after the handoff: J-2 no longer first pass
        _ncr(owner, 14, "pt-1", "J-2", "BRK-1", "closed")
        _handoff(owner, 15, "mt-1", "J-3", "BRK-2", "PO-2")
        _ncr(owner, 16, "ut-1", "J-4", "BRK-3", "opened")  # an NCR on a job never handed off
        shown = tallied()
        assert ("station", "pt-1", "1/2", "50.0 %") in shown
        assert ("station", "mt-1", "0/1", "0.0 %") in shown
        assert ("part", "BRK-3", "0/1", "0.0 %") in shown
        assert follower.index_once() == 0  # nothing new: nothing counted twice
        assert tallied() == shown
