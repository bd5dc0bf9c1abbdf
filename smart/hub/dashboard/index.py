"""Indexes of the hub log the dashboard reads: station checks (with their readings) and jobs' states.

Stations record each daily check as ``record.check`` (the check, when, passed, its
readings) and each move of a job as ``job.transition`` (verb, from, to, allowed).
Following :mod:`smart.hub.log_index`, each index reads the log from where its
table stops; rows are re-derivable from the log and the app role may only
SELECT and INSERT them.
"""

from __future__ import annotations

import asyncio
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
#: First-pass yield: what the handoff and NCR indexes added (appended), each job's standing, the tally.
YIELD_EVENTS, YIELD_JOBS, YIELD = "dashboard_yield_events", "dashboard_yield_jobs", "dashboard_yield"

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

#: First-pass yield kept as it happens instead of judged per page over every job handed off.
#: :class:`YieldFollower` appends each handoff (``handoff_jobs``) and NCR event (``qa.ncr_events``)
#: once; the trigger (as the owner) keeps each (station, job)'s standing (its part and PO from the
#: handoff, or from the NCR for a job with an NCR and no handoff; whether it had an NCR) and moves
#: its count in the tally of its station and of its part (each by PO): what the yield panel reads.
_YIELD_SCHEMA = """
CREATE TABLE IF NOT EXISTS dashboard_yield_events (
    source_idx bigint PRIMARY KEY,
    source text NOT NULL CHECK (source IN ('handoff', 'ncr')),
    station text NOT NULL,
    job text NOT NULL,
    part text,
    po text
);
CREATE INDEX IF NOT EXISTS dashboard_yield_events_source ON dashboard_yield_events (source, source_idx);
CREATE TABLE IF NOT EXISTS dashboard_yield_jobs (
    station text NOT NULL,
    job text NOT NULL,
    part text,
    po text,
    handed_off boolean NOT NULL,
    ncr boolean NOT NULL,
    PRIMARY KEY (station, job)
);
CREATE TABLE IF NOT EXISTS dashboard_yield (
    grouped_by text NOT NULL CHECK (grouped_by IN ('station', 'part')),
    key text NOT NULL,
    po text NOT NULL,
    jobs bigint NOT NULL,
    first_pass bigint NOT NULL,
    PRIMARY KEY (grouped_by, key, po)
);
CREATE OR REPLACE FUNCTION dashboard_yield_count(
    v_station text, v_part text, v_po text, v_ncr boolean, v_sign integer
) RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    INSERT INTO dashboard_yield AS y (grouped_by, key, po, jobs, first_pass)
        VALUES ('station', v_station, coalesce(v_po, ''), v_sign, CASE WHEN v_ncr THEN 0 ELSE v_sign END),
               ('part', coalesce(v_part, 'unknown'), coalesce(v_po, ''), v_sign,
                CASE WHEN v_ncr THEN 0 ELSE v_sign END)
    ON CONFLICT (grouped_by, key, po) DO UPDATE
        SET jobs = y.jobs + EXCLUDED.jobs, first_pass = y.first_pass + EXCLUDED.first_pass;
$$;
CREATE OR REPLACE FUNCTION dashboard_yield_event() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    was dashboard_yield_jobs%ROWTYPE;
    v_part text;
    v_po text;
    v_handed boolean;
    v_ncr boolean;
BEGIN
    SELECT * INTO was FROM dashboard_yield_jobs j
        WHERE j.station = NEW.station AND j.job = NEW.job FOR UPDATE;
    IF FOUND THEN
        PERFORM dashboard_yield_count(was.station, was.part, was.po, was.ncr, -1);
        IF NEW.source = 'handoff' THEN
            v_part := NEW.part; v_po := NEW.po; v_handed := true; v_ncr := was.ncr;
        ELSE
            v_part := CASE WHEN was.handed_off THEN was.part ELSE coalesce(was.part, NEW.part) END;
            v_po := was.po; v_handed := was.handed_off; v_ncr := true;
        END IF;
        UPDATE dashboard_yield_jobs j SET part = v_part, po = v_po, handed_off = v_handed, ncr = v_ncr
            WHERE j.station = NEW.station AND j.job = NEW.job;
    ELSE
        v_handed := NEW.source = 'handoff'; v_ncr := NOT v_handed; v_part := NEW.part;
        v_po := CASE WHEN v_handed THEN NEW.po END;
        INSERT INTO dashboard_yield_jobs (station, job, part, po, handed_off, ncr)
            VALUES (NEW.station, NEW.job, v_part, v_po, v_handed, v_ncr);
    END IF;
    PERFORM dashboard_yield_count(NEW.station, v_part, v_po, v_ncr, 1);
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER dashboard_yield_event AFTER INSERT ON dashboard_yield_events
    FOR EACH ROW EXECUTE FUNCTION dashboard_yield_event();
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


def refill(conn: psycopg.Connection[Any]) -> None:
    """The jobs' and characteristics' current state worked out again from the index rows, as the owner
    (the bench, after writing index rows by COPY with the triggers off, as a rebuilt index would)."""
    with conn.transaction():
        for table, (_source, backfill) in _BACKFILL.items():
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table)))
            conn.execute(backfill.encode())


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
    with psycopg.connect(owner_url) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('smart.hub.dashboard.yield'))")
        conn.execute(_YIELD_SCHEMA.encode())
        role = sql.Identifier(app_role)
        for table, grant in ((YIELD_EVENTS, "SELECT, INSERT"), (YIELD_JOBS, "SELECT"), (YIELD, "SELECT")):
            name = sql.Identifier(table)
            conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM PUBLIC").format(name))
            conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(name, role))
            conn.execute(sql.SQL("GRANT " + grant + " ON TABLE {} TO {}").format(name, role))
        conn.execute("REVOKE ALL ON FUNCTION dashboard_yield_count FROM PUBLIC")


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


class YieldFollower:
    """Appends what the handoff and NCR indexes added since its last pass to ``dashboard_yield_events``.

    Each source is followed by its own cursor (one past the highest ``ledger_idx`` taken from it),
    since the two indexes reach the same place in the log at different times. The hub's QA tables
    may be elsewhere (a Floor hub without the Vault's): then there is nothing to follow there.
    """

    #: Each source: its name, its table, and what to take from it from a ``ledger_idx`` on.
    SOURCES: ClassVar[tuple[tuple[str, str, str], ...]] = (
        (
            "handoff",
            "public.handoff_jobs",
            "SELECT ledger_idx, station, job, part, po FROM public.handoff_jobs WHERE ledger_idx >= %s",
        ),
        (
            "ncr",
            "qa.ncr_events",
            "SELECT ledger_idx, station, job, part, NULL FROM qa.ncr_events"
            " WHERE job IS NOT NULL AND ledger_idx >= %s",
        ),
    )

    def __init__(self, conn: psycopg.Connection[Any], *, url: str | None = None) -> None:
        conn.autocommit = True
        self.conn = conn
        self.url = url

    @classmethod
    def connect(cls, url: str) -> YieldFollower:
        return cls(psycopg.connect(url, autocommit=True), url=url)

    def index_once(self) -> int:
        added = 0
        for source, table, select in self.SOURCES:
            if self.conn.execute("SELECT to_regclass(%s)", (table,)).fetchone() == (None,):
                continue
            query = (select + " ORDER BY ledger_idx LIMIT %s").encode()
            with self.conn.transaction():
                row = self.conn.execute(
                    "SELECT coalesce(max(source_idx) + 1, 0) FROM dashboard_yield_events WHERE source = %s",
                    (source,),
                ).fetchone()
                start = int(row[0]) if row else 0
                taken = self.conn.execute(query, (start, log_index.SLICE)).fetchall()
                if taken:
                    with self.conn.cursor() as cur:
                        cur.executemany(
                            "INSERT INTO dashboard_yield_events (source_idx, source, station, job, part, po)"
                            " VALUES (%s, %s, %s, %s, %s, %s)",
                            [(idx, source, station, job, part, po) for idx, station, job, part, po in taken],
                        )
            added += len(taken)
        return added

    def close(self) -> None:
        self.conn.close()

    async def run(self, every_s: float = 2.0) -> None:
        """Follow until cancelled; a database hiccup is logged and the next pass retries."""
        while True:
            try:
                while await asyncio.to_thread(self.index_once) >= log_index.SLICE:
                    pass
            except psycopg.Error as err:
                log.warning("dashboard.yield_pass_failed", error=type(err).__name__)
                if (self.conn.closed or self.conn.broken) and self.url is not None:
                    try:
                        self.conn = await asyncio.to_thread(psycopg.connect, self.url, autocommit=True)
                    except psycopg.Error as again:
                        log.warning("dashboard.yield_reconnect_failed", error=type(again).__name__)
            await asyncio.sleep(every_s)


def index_all(conn: psycopg.Connection[Any]) -> int:
    """Every index brought up to the log once, on ``conn`` (the bench and tests; the hub runs them)."""
    added = CheckIndex(conn).index_once() + JobStateIndex(conn).index_once()
    follower = YieldFollower(conn)
    while (taken := follower.index_once()) > 0:
        added += taken
    return added
