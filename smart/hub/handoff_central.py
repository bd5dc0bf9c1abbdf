"""HandoffCentral: the hub's index of the job records stations handed off, and the pages that read it.

A station's HandoffNode puts each released job's whole record on its ledger
as one ``job.handoff`` entry, and the node agent ships it into the hub's log
exactly once (:mod:`smart.hub.intake`). The log is the record; this service
only makes it findable: it reads the hub log from where it stopped, takes
each new ``job.handoff`` entry and keeps one row per station and job in
``handoff_jobs`` (PO, line, part, serials, who signed, when released, and
where the entry is in the log: its global index, the station's ``node_seq``
and the entry's SHA-256, so any row can be proven against a checkpoint).

A job is handed off once per station: the first entry is the one indexed,
a repeat (a station that asked again, a replay) is ignored, and reading the
same entries again adds nothing, so the index can always be re-derived from
the log. Where to read from next is the index itself (one past its highest
index), so a restart costs at most a re-read of repeats.

The table belongs to the hub database; :func:`migrate` creates it as the
owner and gives the app role only SELECT and INSERT, like the ledger's own
tables. The web routes need ``records.read`` (quality, level 3, auditors,
admins), as other personal data pages do: a job record names people.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
import structlog
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from psycopg import sql
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission
from smart.hub import log_index
from smart.hub.vault.logins import Login
from smart.hub.web.auth import TEMPLATES, Guard
from smart.ledger import hub_store
from smart.ledger.entry import Entry

log = structlog.get_logger("smart.hub.handoff_central")

#: The ledger entry kind a station's HandoffNode records (``smart.modules.handoff``).
HANDOFF_KIND = "job.handoff"
TABLE = "handoff_jobs"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS handoff_jobs (
    station text NOT NULL,
    job text NOT NULL,
    po text,
    line text,
    part text,
    serials text[] NOT NULL DEFAULT '{}',
    signed_by text,
    released_at timestamptz,
    handed_off_at timestamptz NOT NULL,
    ledger_idx bigint NOT NULL UNIQUE,
    node_seq bigint NOT NULL,
    entry_hash bytea NOT NULL,
    record jsonb,
    PRIMARY KEY (station, job)
);
CREATE INDEX IF NOT EXISTS handoff_jobs_job ON handoff_jobs (job);
CREATE INDEX IF NOT EXISTS handoff_jobs_po ON handoff_jobs (po, line);
"""


def migrate(owner_url: str, *, app_role: str = hub_store.APP_ROLE) -> None:
    """Create the index table as the owner (safe to run again); the app role may only SELECT and INSERT."""
    log_index.migrate_table(owner_url, schema=_SCHEMA, table=TABLE, app_role=app_role)


@dataclass(frozen=True, slots=True)
class HandedOff:
    """One job handed off at one station, and where its entry is in the hub log."""

    station: str
    job: str
    po: str | None
    line: str | None
    part: str | None
    serials: tuple[str, ...]
    signed_by: str | None
    released_at: datetime | None
    handed_off_at: datetime
    ledger_idx: int
    node_seq: int
    entry_hash: str
    record: Any = None

    def to_json(self, *, record: bool = False) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "station": self.station,
            "job": self.job,
            "po": self.po,
            "line": self.line,
            "part": self.part,
            "serials": list(self.serials),
            "signedBy": self.signed_by,
            "releasedAt": self.released_at.isoformat() if self.released_at else None,
            "handedOffAt": self.handed_off_at.isoformat(),
            "ledger": {"index": self.ledger_idx, "nodeSeq": self.node_seq, "entryHash": self.entry_hash},
        }
        if record:
            shown["record"] = self.record
        return shown


_COLUMNS = (
    "station, job, po, line, part, serials, signed_by, released_at, handed_off_at, "
    "ledger_idx, node_seq, entry_hash, record"
)


def _row(row: Sequence[Any]) -> HandedOff:
    return HandedOff(
        station=row[0],
        job=row[1],
        po=row[2],
        line=row[3],
        part=row[4],
        serials=tuple(row[5] or ()),
        signed_by=row[6],
        released_at=row[7],
        handed_off_at=row[8],
        ledger_idx=int(row[9]),
        node_seq=int(row[10]),
        entry_hash=bytes(row[11]).hex(),
        record=row[12],
    )


def jobs(
    conn: psycopg.Connection[Any],
    *,
    station: str | None = None,
    po: str | None = None,
    part: str | None = None,
    serial: str | None = None,
    limit: int = 100,
) -> list[HandedOff]:
    """Handed-off jobs, newest first, narrowed by any of station, PO, part and serial."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    where: list[sql.Composable] = []
    values: list[Any] = []
    for column, value in (("station", station), ("po", po), ("part", part)):
        if value is not None:
            where.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            values.append(value)
    if serial is not None:
        where.append(sql.SQL("%s = ANY(serials)"))
        values.append(serial)
    query = sql.SQL("SELECT {} FROM handoff_jobs {} ORDER BY ledger_idx DESC LIMIT %s").format(
        sql.SQL(_COLUMNS),
        sql.SQL("WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL(""),
    )
    return [_row(r) for r in conn.execute(query, (*values, limit)).fetchall()]


def for_line(conn: psycopg.Connection[Any], po: str, line: str) -> list[HandedOff]:
    """Every station's hand-off of a job of one PO line, in the order the hub took them (the job view)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM handoff_jobs WHERE po = %s AND line = %s ORDER BY ledger_idx", (po, line)
    ).fetchall()
    return [_row(r) for r in rows]


def job(conn: psycopg.Connection[Any], job_id: str) -> list[HandedOff]:
    """Every station's hand-off of ``job_id``, in the order the hub took them."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM handoff_jobs WHERE job = %s ORDER BY ledger_idx", (job_id,)
    ).fetchall()
    return [_row(r) for r in rows]


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


class HandoffCentral(log_index.LogIndex):
    """The index on its own connection (app role): :meth:`index_once` takes what the log added since."""

    kinds = (HANDOFF_KIND,)
    table = TABLE

    def __init__(self, conn: psycopg.Connection[Any], *, url: str | None = None) -> None:
        super().__init__(conn, url=url)
        self.indexed = 0
        self.repeats = 0

    def take(self, idx: int, entry: Entry) -> int:
        data = entry.data
        job_id = data.get("job") or entry.subject
        if not isinstance(job_id, str) or not job_id:
            log.error(
                "handoff_central.entry_without_job", station=entry.node, index=idx, entry=entry.node_seq
            )
            return 0
        if data.get("station") not in (None, entry.node):
            log.warning(
                "handoff_central.station_mismatch",
                station=entry.node,
                claimed=data.get("station"),
                job=job_id,
                entry=entry.node_seq,
            )
        raw_record, raw_released = data.get("record"), data.get("released")
        record: dict[str, Any] = raw_record if isinstance(raw_record, dict) else {}
        released: dict[str, Any] = raw_released if isinstance(raw_released, dict) else {}
        handed_at = _time(entry.ts)
        assert handed_at is not None  # an entry's ts is checked when it is read
        inserted = self.conn.execute(
            f"INSERT INTO handoff_jobs ({_COLUMNS}) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (
                entry.node,  # the station is the node that signed the entry, never what it claims
                job_id,
                record.get("po"),
                record.get("line"),
                record.get("part"),
                _strings(record.get("serials")),
                record.get("signed_by"),
                _time(released.get("releasedAt")) or _time(released.get("at")),
                handed_at,
                idx,
                entry.node_seq,
                entry.hash,
                json.dumps(data.get("record")),
            ),
        ).rowcount
        if inserted:
            self.indexed += 1
            log.info(
                "handoff_central.indexed",
                station=entry.node,
                job=job_id,
                index=idx,
                entry=entry.node_seq,
                contract=entry.contract,
            )
            return 1
        self.repeats += 1
        log.info(
            "handoff_central.repeat_ignored", station=entry.node, job=job_id, index=idx, entry=entry.node_seq
        )
        return 0


def router(url: str, guard: Guard) -> APIRouter:
    """``/api/jobs`` (list, narrowed by station, PO, part, serial) and ``/api/jobs/{job}`` (the records).

    Reads on a connection of their own (``url``, the app role), behind ``records.read``.
    """
    routes = APIRouter()
    read = Depends(guard.requires(Permission.RECORDS_READ))

    def _list(**narrow: Any) -> list[dict[str, Any]]:
        with psycopg.connect(url, autocommit=True) as conn:
            return [found.to_json() for found in jobs(conn, **narrow)]

    def _one(job_id: str) -> list[dict[str, Any]]:
        with psycopg.connect(url, autocommit=True) as conn:
            return [found.to_json(record=True) for found in job(conn, job_id)]

    read_login = guard.requires(Permission.RECORDS_READ)

    @routes.get("/jobs", response_class=HTMLResponse, include_in_schema=False)
    async def jobs_page(
        request: Request,
        login: Login = Depends(read_login),
        station: str | None = None,
        po: str | None = None,
        part: str | None = None,
        serial: str | None = None,
    ) -> HTMLResponse:
        """The jobs handed off to the hub, newest first, for quality and auditors; narrowed like the API."""
        narrow = {
            "station": station or None,
            "po": po or None,
            "part": part or None,
            "serial": serial or None,
        }
        found = await run_in_threadpool(_list, **narrow, limit=500)
        return TEMPLATES.TemplateResponse(
            request,
            "access/jobs.html",
            {"page": "Jobs handed off", "login": login, "jobs": found, "narrow": narrow},
        )

    @routes.get("/jobs/{job_id}", response_class=HTMLResponse, include_in_schema=False)
    async def job_page(request: Request, job_id: str, login: Login = Depends(read_login)) -> HTMLResponse:
        """One job's record as each station handed it off, with where it sits in the ledger."""
        found = await run_in_threadpool(_one, job_id)
        return TEMPLATES.TemplateResponse(
            request,
            "access/job.html",
            {"page": f"Job {job_id}", "login": login, "job": job_id, "handoffs": found},
            status_code=200 if found else 404,
        )

    @routes.get("/api/jobs", dependencies=[read])
    async def list_jobs(
        station: str | None = None,
        po: str | None = None,
        part: str | None = None,
        serial: str | None = None,
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[dict[str, Any]]:
        """Jobs handed off to the hub, newest first."""
        return await run_in_threadpool(_list, station=station, po=po, part=part, serial=serial, limit=limit)

    @routes.get("/api/jobs/{job_id}", dependencies=[read])
    async def show_job(job_id: str) -> dict[str, Any]:
        """One job: each station's hand-off with its whole record and its place in the ledger."""
        found = await run_in_threadpool(_one, job_id)
        if not found:
            raise HTTPException(status_code=404, detail=f"no job {job_id} has been handed off to the hub")
        return {"job": job_id, "handoffs": found}

    return routes
