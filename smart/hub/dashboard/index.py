"""Indexes of the hub log the dashboard reads: station checks (with their readings) and jobs' states.

Stations record each daily check as ``record.check`` (the check, when, passed, its
readings) and each move of a job as ``job.transition`` (verb, from, to, allowed).
Following :mod:`smart.hub.log_index`, each index reads the log from where its
table stops; rows are re-derivable from the log and the app role may only
SELECT and INSERT them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import psycopg
import structlog
from psycopg import sql

from smart.contracts import history
from smart.hub import log_index
from smart.ledger import hub_store
from smart.ledger.entry import Entry

log = structlog.get_logger("smart.hub.dashboard")

CHECKS, READINGS, JOB_STATES = "dashboard_checks", "dashboard_readings", "dashboard_job_states"
#: Current-state tables the database keeps from the index rows (the app role may only read them).
JOBS_NOW, CHARACTERISTICS = "dashboard_jobs_now", "dashboard_characteristics"

#: A job is at a station, in these states, from its scan until it is handed off.
IN_PROGRESS = ("traveler-scanned", "gated", "in-process", "released")

_CHECKS_SCHEMA = """
CREATE TABLE IF NOT EXISTS dashboard_checks (
    ledger_idx bigint PRIMARY KEY,
    station text NOT NULL,
    check_name text NOT NULL,
    at timestamptz NOT NULL,
    passed boolean NOT NULL,
    equipment text
);
CREATE INDEX IF NOT EXISTS dashboard_checks_at ON dashboard_checks (at, station, check_name);
"""

_READINGS_SCHEMA = """
CREATE TABLE IF NOT EXISTS dashboard_readings (
    ledger_idx bigint NOT NULL,
    characteristic text NOT NULL,
    station text NOT NULL,
    value double precision NOT NULL,
    unit text,
    at timestamptz NOT NULL,
    PRIMARY KEY (ledger_idx, characteristic)
);
DROP INDEX IF EXISTS dashboard_readings_chart;
CREATE INDEX IF NOT EXISTS dashboard_readings_points
    ON dashboard_readings (station, characteristic, at DESC, ledger_idx DESC);
"""

_JOBS_SCHEMA = """
CREATE TABLE IF NOT EXISTS dashboard_job_states (
    ledger_idx bigint PRIMARY KEY,
    station text NOT NULL,
    job text NOT NULL,
    verb text NOT NULL,
    state text NOT NULL,
    allowed boolean NOT NULL,
    at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS dashboard_job_states_job
    ON dashboard_job_states (station, job, ledger_idx DESC);
"""


#: Each job's latest allowed move at a station: what the jobs panel counts, one row per job instead
#: of a ``DISTINCT ON`` over every move in the log. A trigger on the moves keeps it (as the owner),
#: so the app role, which may only append moves, cannot write a job's state, and it is never out of
#: step with the moves: the row and the move it comes from are written in one transaction.
_JOBS_NOW_SCHEMA = """
CREATE TABLE IF NOT EXISTS dashboard_jobs_now (
    station text NOT NULL,
    job text NOT NULL,
    verb text NOT NULL,
    state text NOT NULL,
    at timestamptz NOT NULL,
    ledger_idx bigint NOT NULL,
    PRIMARY KEY (station, job)
);
CREATE INDEX IF NOT EXISTS dashboard_jobs_now_open ON dashboard_jobs_now (station, state)
    WHERE state <> 'handed-off';
CREATE OR REPLACE FUNCTION dashboard_job_moved() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO dashboard_jobs_now (station, job, verb, state, at, ledger_idx)
        VALUES (NEW.station, NEW.job, NEW.verb, NEW.state, NEW.at, NEW.ledger_idx)
    ON CONFLICT (station, job) DO UPDATE
        SET verb = EXCLUDED.verb, state = EXCLUDED.state, at = EXCLUDED.at, ledger_idx = EXCLUDED.ledger_idx
        WHERE dashboard_jobs_now.ledger_idx < EXCLUDED.ledger_idx;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER dashboard_job_moved AFTER INSERT ON dashboard_job_states
    FOR EACH ROW EXECUTE FUNCTION dashboard_job_moved();
"""

#: Each (station, characteristic) with how many readings it has: the SPC panel's choice of charts
#: without counting every reading per page; kept by a trigger on the readings, as above.
_CHARACTERISTICS_SCHEMA = """
CREATE TABLE IF NOT EXISTS dashboard_characteristics (
    station text NOT NULL,
    characteristic text NOT NULL,
    readings bigint NOT NULL,
    last_idx bigint NOT NULL,
    PRIMARY KEY (station, characteristic)
);
CREATE INDEX IF NOT EXISTS dashboard_characteristics_most
    ON dashboard_characteristics (readings DESC, station, characteristic);
CREATE OR REPLACE FUNCTION dashboard_reading_taken() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO dashboard_characteristics (station, characteristic, readings, last_idx)
        VALUES (NEW.station, NEW.characteristic, 1, NEW.ledger_idx)
    ON CONFLICT (station, characteristic) DO UPDATE
        SET readings = dashboard_characteristics.readings + 1,
            last_idx = greatest(dashboard_characteristics.last_idx, EXCLUDED.last_idx);
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER dashboard_reading_taken AFTER INSERT ON dashboard_readings
    FOR EACH ROW EXECUTE FUNCTION dashboard_reading_taken();
"""

#: A database indexed before the current-state tables: filled once from the rows already there,
#: with the source locked against the index's inserts meanwhile (then the triggers keep them).
_BACKFILL = {
    JOBS_NOW: (
        JOB_STATES,
        "INSERT INTO dashboard_jobs_now (station, job, verb, state, at, ledger_idx)"
        " SELECT DISTINCT ON (station, job) station, job, verb, state, at, ledger_idx"
        " FROM dashboard_job_states ORDER BY station, job, ledger_idx DESC",
    ),
    CHARACTERISTICS: (
        READINGS,
        "INSERT INTO dashboard_characteristics (station, characteristic, readings, last_idx)"
        " SELECT station, characteristic, count(*), max(ledger_idx) FROM dashboard_readings"
        " GROUP BY station, characteristic",
    ),
}


def _current_state(owner_url: str, table: str, schema: str, app_role: str) -> None:
    """A current-state table, its trigger and (once) its backfill; the app role may only SELECT it."""
    source, backfill = _BACKFILL[table]
    with psycopg.connect(owner_url) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"smart.hub.dashboard.{table}",))
        conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(sql.Identifier(source)))
        created = conn.execute("SELECT to_regclass(%s) IS NULL", (table,)).fetchone()
        conn.execute(schema.encode())
        if created and created[0]:
            conn.execute(backfill.encode())
        name, role = sql.Identifier(table), sql.Identifier(app_role)
        conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM PUBLIC").format(name))
        conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(name, role))
        conn.execute(sql.SQL("GRANT SELECT ON TABLE {} TO {}").format(name, role))
    log.info("dashboard.current_state_migrated", table=table, app_role=app_role)


def migrate(owner_url: str, *, app_role: str = hub_store.APP_ROLE) -> None:
    """The dashboard's index tables and the current-state tables kept from them, as the owner (safe to run
    again)."""
    log_index.migrate_table(owner_url, schema=_CHECKS_SCHEMA, table=CHECKS, app_role=app_role)
    log_index.migrate_table(owner_url, schema=_READINGS_SCHEMA, table=READINGS, app_role=app_role)
    log_index.migrate_table(owner_url, schema=_JOBS_SCHEMA, table=JOB_STATES, app_role=app_role)
    _current_state(owner_url, JOBS_NOW, _JOBS_NOW_SCHEMA, app_role)
    _current_state(owner_url, CHARACTERISTICS, _CHARACTERISTICS_SCHEMA, app_role)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class CheckIndex(log_index.LogIndex):
    """One row per station check in the hub log, and one per reading it took (the SPC charts' points)."""

    kinds: ClassVar[tuple[str, ...]] = ("record.check",)
    table: ClassVar[str] = CHECKS

    def take(self, idx: int, entry: Entry) -> int:
        value = entry.data.get("value")
        if entry.data.get("kind") != "check" or not isinstance(value, dict) or not value.get("check"):
            return 0
        at = history.parse_time(str(value.get("at") or entry.ts))
        with self.conn.transaction():
            row = self.conn.execute(
                "INSERT INTO dashboard_checks (ledger_idx, station, check_name, at, passed, equipment)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
                (idx, entry.node, str(value["check"]), at, bool(value.get("passed")), value.get("equipment")),
            ).fetchone()
            readings = value.get("readings") if isinstance(value.get("readings"), dict) else {}
            assert isinstance(readings, dict)
            for characteristic, reading in sorted(readings.items()):
                number = _number(reading.get("value")) if isinstance(reading, dict) else _number(reading)
                if number is None:
                    continue
                unit = reading.get("unit") if isinstance(reading, dict) else None
                self.conn.execute(
                    "INSERT INTO dashboard_readings (ledger_idx, characteristic, station, value, unit, at)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (idx, str(characteristic), entry.node, number, unit, at),
                )
        return 1 if row else 0


class JobStateIndex(log_index.LogIndex):
    """One row per allowed move of a job at a station (``job.transition`` with a job in hand)."""

    kinds: ClassVar[tuple[str, ...]] = ("job.transition",)
    table: ClassVar[str] = JOB_STATES

    def take(self, idx: int, entry: Entry) -> int:
        data = entry.data
        state = str(data.get("to") or "")
        job = data.get("job") or entry.subject
        if state not in (*IN_PROGRESS, "handed-off") or not job or not data.get("allowed"):
            return 0
        row = self.conn.execute(
            "INSERT INTO dashboard_job_states (ledger_idx, station, job, verb, state, allowed, at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
            (
                idx,
                entry.node,
                str(job),
                str(data.get("verb") or ""),
                state,
                True,
                history.parse_time(str(data.get("at") or entry.ts)),
            ),
        ).fetchone()
        return 1 if row else 0


def index_all(conn: psycopg.Connection[Any]) -> int:
    """Both indexes brought up to the log once, on ``conn`` (the bench and tests; the hub runs them)."""
    return CheckIndex(conn).index_once() + JobStateIndex(conn).index_once()
