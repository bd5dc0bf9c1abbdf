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

from smart.contracts import history
from smart.hub import log_index
from smart.ledger import hub_store
from smart.ledger.entry import Entry

CHECKS, READINGS, JOB_STATES = "dashboard_checks", "dashboard_readings", "dashboard_job_states"

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
CREATE INDEX IF NOT EXISTS dashboard_readings_chart
    ON dashboard_readings (station, characteristic, at DESC);
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


def migrate(owner_url: str, *, app_role: str = hub_store.APP_ROLE) -> None:
    """The dashboard's index tables, as the owner (safe to run again)."""
    log_index.migrate_table(owner_url, schema=_CHECKS_SCHEMA, table=CHECKS, app_role=app_role)
    log_index.migrate_table(owner_url, schema=_READINGS_SCHEMA, table=READINGS, app_role=app_role)
    log_index.migrate_table(owner_url, schema=_JOBS_SCHEMA, table=JOB_STATES, app_role=app_role)


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
