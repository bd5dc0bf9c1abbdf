"""AuditCentral's index of the hub log: which entries name which job, person, gauge, lot or procedure.

An auditor asks about one job, or about everything one gauge or one person
touched; reading a million-entry log for each question is what the binders
did. This index follows the log (:class:`smart.hub.log_index.LogIndex`) and
keeps, for each entry, one row per thing it names (``refs``): a station's
decision names its job, the person (and a trainee's supervisor), the
equipment, the lots, the procedure and revision, the PO line and the serial;
a record a station received names that record; a hub service's change names
its PO, PO line or procedure. The log stays the record: every packet and
every reverse search cites the entries themselves, with their proofs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from smart.hub import log_index, migrations
from smart.ledger import hub_store
from smart.ledger.entry import Entry

SCHEMA = "audit"
MIGRATIONS = Path(__file__).with_name("migrations")
GRANTS = {"refs": "SELECT, INSERT", "certificates": "SELECT, INSERT"}
#: The kinds the index reads: stations' decisions, transitions and records; hub services' changes.
KINDS = (
    "module.decision",
    "job.transition",
    "job.handoff",
    "record.job",
    "record.check",
    "record.received",
    "contract.activated",
    "po.added",
    "po.line.updated",
    "po.line.reviewed",
    "po.line.released",
    "procedure.approved",
    "traveler.created",
    "traveler.revised",
    "traveler.released",
)


def migrate(owner_url: str, *, app_role: str = hub_store.APP_ROLE) -> list[int]:
    """Bring the ``audit`` schema up to date as the owner; the app role may only SELECT and INSERT."""
    return migrations.apply(owner_url, schema=SCHEMA, directory=MIGRATIONS, grants=GRANTS, app_role=app_role)


def schema_url(url: str) -> str:
    """``url`` with ``audit`` first on the search path (then ``public``, where the hub log is)."""
    return make_conninfo(url, options=f"-c search_path={SCHEMA},public")


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def refs_of(entry: Entry) -> Iterator[tuple[str, str | None, datetime, str | None]]:
    """What ``entry`` names: (ref, job, when, procedure id@revision for a method lookup)."""
    data = _mapping(entry.data)
    ts = _time(entry.ts)
    assert ts is not None
    kind = entry.kind
    if kind == "module.decision":
        event = _mapping(data.get("event"))
        at = _time(event.get("at")) or ts
        job = event.get("job") if isinstance(event.get("job"), str) else None
        if data.get("outcome") == "deny":
            yield f"block/{entry.node}", job, at, None
        if job is None:
            return
        if (
            data.get("verb") == "ship"
            and data.get("module") == "logistics"
            and data.get("outcome") == "allow"
        ):
            yield f"shipment/{entry.node}", job, at, None  # the C of C is printed from it
        procedure = event.get("procedure")
        revision = event.get("procedure_revision")
        run = f"{procedure}@{revision}" if isinstance(procedure, str) else None
        yield f"job/{job}", job, at, run
        for key in ("person", "supervisor"):
            if isinstance(event.get(key), str):
                yield f"person/{event[key]}", job, at, run
        for equipment in _strings(event.get("equipment")):
            yield f"equipment/{equipment}", job, at, run
        for lot in _strings(event.get("lots")):
            yield f"lot/{lot}", job, at, run
        if run is not None:
            yield f"procedure/{run}", job, at, run
        scan = _mapping(event.get("scan"))
        if isinstance(scan.get("po"), str) and isinstance(scan.get("line"), str):
            yield f"po-line/{scan['po']}/{scan['line']}", job, at, run
        if isinstance(scan.get("serial"), str):
            yield f"serial/{scan['serial']}", job, at, run
        if isinstance(scan.get("part"), str):
            yield f"part/{scan['part']}", job, at, run
    elif kind == "job.transition":
        at = _time(data.get("at")) or ts
        if data.get("outcome") == "deny":
            yield f"block/{entry.node}", None, at, None
        if data.get("verb") != "badge":  # a badge-in's subject is the person, not yet a job
            yield f"job/{entry.subject}", entry.subject, at, None
    elif kind in ("job.handoff", "record.job"):
        yield f"job/{entry.subject}", entry.subject, ts, None
    elif kind == "record.check":
        value = _mapping(data.get("value"))
        yield f"record/check/{entry.subject}", None, _time(value.get("at")) or ts, None
        if isinstance(value.get("equipment"), str):
            yield f"check/{value['equipment']}", None, _time(value.get("at")) or ts, None
    elif kind == "record.received":
        yield f"record/{entry.subject}", None, ts, None
    elif kind == "contract.activated":
        yield f"contract/{entry.subject}", None, ts, None
    elif kind.startswith(("po.", "procedure.", "traveler.")):
        subject = entry.subject
        yield (f"po-line/{subject}" if "/" in subject else f"{kind.split('.')[0]}/{subject}"), None, ts, None
        if "/" in subject:
            yield f"po/{subject.split('/')[0]}", None, ts, None


class AuditIndex(log_index.LogIndex):
    """Keeps ``audit.refs`` up to date with the hub log (see the module docstring)."""

    kinds = KINDS
    table = "refs"

    def __init__(self, conn: psycopg.Connection[Any], *, url: str | None = None) -> None:
        super().__init__(conn, url=url)
        self._methods: dict[tuple[str, str], str | None] = {}

    @classmethod
    def connect(cls, url: str) -> AuditIndex:
        scoped = schema_url(url)
        return cls(psycopg.connect(scoped, autocommit=True), url=scoped)

    def _method(self, node: str, run: str | None) -> str | None:
        """The method of procedure ``run`` (``id@revision``) as ``node`` last received its record."""
        if run is None:
            return None
        key = (node, run)
        if key not in self._methods:
            row = self.conn.execute(
                "SELECT method FROM refs WHERE ref = %s AND node = %s AND method IS NOT NULL"
                " ORDER BY ledger_idx DESC LIMIT 1",
                (f"record/procedure/{run.split('@')[0]}", node),
            ).fetchone()
            self._methods[key] = row[0] if row else None
        return self._methods[key]

    def take(self, idx: int, entry: Entry) -> int:
        rows = []
        seen: set[str] = set()
        for ref, job, at, run in refs_of(entry):
            if ref in seen:
                continue
            seen.add(ref)
            method = self._method(entry.node, run)
            if ref.startswith("record/procedure/"):
                value = _mapping(_mapping(entry.data).get("value"))
                method = value.get("method") if isinstance(value.get("method"), str) else None
                for known in [k for k in self._methods if k[0] == entry.node]:
                    del self._methods[known]  # a new revision of a procedure: look again
            rows.append((idx, entry.node, entry.node_seq, entry.kind, ref, job, at, method))
        if not rows:
            return 0
        # one statement: all of an entry's rows or none (the cursor is one past the highest entry)
        values = sql.SQL(", ").join(sql.SQL("(%s, %s, %s, %s, %s, %s, %s, %s)") for _ in rows)
        self.conn.execute(
            sql.SQL(
                "INSERT INTO refs (ledger_idx, node, node_seq, kind, ref, job, at, method)"
                " VALUES {} ON CONFLICT DO NOTHING"
            ).format(values),
            [v for row in rows for v in row],
        )
        return len(rows)
