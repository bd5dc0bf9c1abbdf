"""QACentral's store: the stations' NCRs from the hub log, dispositions signed at the hub, CAPA, yield.

Stations open NCRs (their QA records ``qa.ncr.opened`` on the station's
ledger); :class:`NcrIndex` follows the hub log and keeps each station's
``qa.ncr.*`` entries, so the hub's list of NCRs is exactly what the
stations signed. A disposition made here is signed (:mod:`smart.hub.standards.esign`):
a Level 3 in the station's method whose certified credential verifies, or
a signed-in quality manager whose SMART-ID credentials verify. It is one
``ncr.decided`` entry on the ``qa-central`` node, written before the
station is told, and then an ``ncr-decision`` record in the station's
``station-records``: the station's QA applies it by the same rules as its
own kiosk (use-as-is and repair only with the design authority's approval),
records it on the station's ledger and, once the NCR is closed, the job may
be released. CAPAs (root cause, action, owner, due date, verification of
effectiveness) hang on NCRs. First-pass yield is computed from the hub log's
indexes: jobs handed off or with an NCR, and of those the ones with none.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import structlog
from nats.js import JetStreamContext
from psycopg.conninfo import make_conninfo
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb
from starlette.concurrency import run_in_threadpool

from smart.contracts import facts as f
from smart.hub import log_index, migrations
from smart.hub.clients.store import Refused
from smart.hub.qa import yields
from smart.hub.qa.models import CapaIn, CapaView, DispositionIn, EvidenceIn, NcrView, VerificationIn, Yield
from smart.hub.service_log import ServiceLedger
from smart.hub.service_store import ServiceStore, utc_now
from smart.hub.standards.esign import Signature
from smart.ledger import hub_store
from smart.ledger.entry import Entry
from smart.node import records

log = structlog.get_logger("smart.hub.qa")

NODE = "qa-central"
SCHEMA = "qa"
MIGRATIONS = Path(__file__).with_name("migrations")
GRANTS = {
    "ncr_events": "SELECT, INSERT",
    "evidence": "SELECT, INSERT",
    "decisions": "SELECT, INSERT, UPDATE",
    "capas": "SELECT, INSERT, UPDATE",
}
_KINDS = {"qa.ncr.opened": "opened", "qa.ncr.dispositioned": "dispositioned", "qa.ncr.closed": "closed"}


def migrate(owner_url: str, *, app_role: str = hub_store.APP_ROLE) -> list[int]:
    return migrations.apply(owner_url, schema=SCHEMA, directory=MIGRATIONS, grants=GRANTS, app_role=app_role)


def schema_url(url: str) -> str:
    return make_conninfo(url, options=f"-c search_path={SCHEMA},public")


class NcrIndex(log_index.LogIndex):
    """Indexes the stations' ``qa.ncr.*`` entries (the NCR as the station recorded it each time)."""

    kinds = tuple(_KINDS)
    table = "ncr_events"

    @classmethod
    def connect(cls, url: str) -> NcrIndex:
        scoped = schema_url(url)
        return cls(psycopg.connect(scoped, autocommit=True), url=scoped)

    def take(self, idx: int, entry: Entry) -> int:
        data = entry.data
        ncr_id = data.get("id")
        if not isinstance(ncr_id, str):
            return 0
        at = data.get("closedAt") or data.get("dispositionedAt") or data.get("openedAt") or entry.ts
        inserted = self.conn.execute(
            "INSERT INTO ncr_events (ledger_idx, station, ncr, kind, job, part, serial, record, at, "
            "node_seq, "
            "entry_hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (
                idx,
                entry.node,  # the station is the node that signed the entry
                ncr_id,
                _KINDS[entry.kind],
                data.get("job"),
                data.get("part"),
                data.get("serial"),
                Jsonb(data),
                at,
                entry.node_seq,
                entry.hash,
            ),
        ).rowcount
        if inserted:
            log.info("qa_central.ncr_event", station=entry.node, ncr=ncr_id, kind=entry.kind, index=idx)
        return 1 if inserted else 0


class QaCentral(ServiceStore):
    """NCRs, hub dispositions and CAPAs on app-role connections, recording on the ``qa-central`` node."""

    log_name = "qa_central"

    def __init__(
        self,
        url: str,
        *,
        ledger: ServiceLedger,
        stations: Collection[str],
        clock: Callable[[], datetime] = utc_now,
        pool_size: int = 2,
    ) -> None:
        super().__init__(schema_url(url), ledger=ledger, clock=clock, pool_size=pool_size)
        self.stations = frozenset(stations)

    # -- NCRs ---------------------------------------------------------------------------------

    def ncrs(self, *, open_only: bool = False, station: str | None = None) -> list[NcrView]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT DISTINCT ON (ncr) ncr, station, job, part, serial, record, at FROM ncr_events "
                "WHERE (%(station)s::text IS NULL OR station = %(station)s) ORDER BY ncr, ledger_idx DESC",
                {"station": station},
            ).fetchall()
            opened = {
                r["ncr"]: r["at"]
                for r in conn.execute("SELECT ncr, min(at) AS at FROM ncr_events GROUP BY ncr").fetchall()
            }
        found = [self._view(row, opened[row["ncr"]]) for row in rows]
        if open_only:
            found = [n for n in found if n.open]
        return sorted(found, key=lambda n: (n.opened_at, n.id))

    @staticmethod
    def _view(row: DictRow, opened_at: datetime) -> NcrView:
        record = dict(row["record"])
        return NcrView(
            id=row["ncr"],
            station=row["station"],
            job=row["job"],
            part=row["part"],
            serial=row["serial"],
            open=bool(record.get("open", True)),
            disposition=record.get("disposition"),
            record=record,
            opened_at=opened_at,
        )

    def ncr(self, ncr_id: str) -> NcrView | None:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT ledger_idx, station, ncr, kind, job, part, serial, record, at, node_seq, entry_hash "
                "FROM ncr_events WHERE ncr = %s ORDER BY ledger_idx",
                (ncr_id,),
            ).fetchall()
            if not rows:
                return None
            evidence = conn.execute(
                "SELECT note, sha256, added_by, added_at FROM evidence WHERE ncr = %s ORDER BY id", (ncr_id,)
            ).fetchall()
            decisions = conn.execute(
                "SELECT disposition, design_authority_approval, close, evidence, marking, signed_by, "
                "signature, entry, kv_revision, at FROM decisions WHERE ncr = %s ORDER BY id",
                (ncr_id,),
            ).fetchall()
        view = self._view(rows[-1], rows[0]["at"])
        return view.model_copy(
            update={
                "events": [
                    {
                        "kind": r["kind"],
                        "at": r["at"].isoformat(),
                        "ledger": {
                            "index": r["ledger_idx"],
                            "nodeSeq": r["node_seq"],
                            "entryHash": bytes(r["entry_hash"]).hex(),
                        },
                        "by": r["record"].get("dispositionedBy")
                        or r["record"].get("closedBy")
                        or r["record"].get("openedBy"),
                    }
                    for r in rows
                ],
                "evidence": [{**r, "added_at": r["added_at"].isoformat()} for r in evidence],
                "decisions": [{**r, "at": r["at"].isoformat()} for r in decisions],
            }
        )

    def add_evidence(self, ncr_id: str, evidence: EvidenceIn, *, actor: str) -> NcrView:
        if self.ncr(ncr_id) is None:
            raise Refused("ncr", f"no NCR {ncr_id} has reached the hub")
        with self._changing() as conn:
            conn.execute(
                "INSERT INTO evidence (ncr, note, sha256, added_by, added_at) VALUES (%s, %s, %s, %s, %s)",
                (ncr_id, evidence.note, evidence.sha256, actor, self.clock()),
            )
            self._record("ncr.evidence.added", ncr_id, actor, note=evidence.note, sha256=evidence.sha256)
        found = self.ncr(ncr_id)
        assert found is not None
        return found

    def decide(
        self, ncr_id: str, body: DispositionIn, signature: Signature, *, actor: str
    ) -> tuple[NcrView, f.NcrDecision]:
        """Record a signed disposition; the station's record to publish comes back with it."""
        held = self.ncr(ncr_id)
        if held is None:
            raise Refused("ncr", f"no NCR {ncr_id} has reached the hub")
        if not held.open:
            raise Refused("ncr", f"NCR {ncr_id} is closed at {held.station}")
        if held.disposition is not None and held.disposition != body.disposition:
            raise Refused(
                "disposition", f"NCR {ncr_id} is already dispositioned {held.disposition} at {held.station}"
            )
        at = self.clock()
        decision = f.NcrDecision(
            id=ncr_id,
            decided_by=signature.badge,
            decided_at=at,
            disposition=body.disposition,
            design_authority_approval=body.design_authority_approval
            if body.disposition in ("use-as-is", "repair")
            else None,
            close=body.close,
            evidence=body.evidence
            or (f"scrap marked: {body.marking}" if body.close and body.marking else None),
        )
        with self._changing() as conn:
            if conn.execute("SELECT 1 FROM decisions WHERE ncr = %s AND close", (ncr_id,)).fetchone():
                raise Refused("ncr", f"NCR {ncr_id} was closed at the hub already")
            entry = self.ledger.append(
                kind="ncr.decided",
                subject=ncr_id,
                data={
                    "ncr": ncr_id,
                    "station": held.station,
                    "job": held.job,
                    "part": held.part,
                    "serial": held.serial,
                    "disposition": body.disposition,
                    "designAuthorityApproval": decision.design_authority_approval,
                    "marking": body.marking,
                    "close": body.close,
                    "evidence": decision.evidence,
                    "signature": signature.to_json(),
                },
                actor=signature.badge,
            )
            conn.execute(
                "INSERT INTO decisions (ncr, station, disposition, design_authority_approval, close, "
                "evidence, marking, signed_by, signature, entry, at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    ncr_id,
                    held.station,
                    body.disposition,
                    decision.design_authority_approval,
                    body.close,
                    decision.evidence,
                    body.marking,
                    signature.badge,
                    Jsonb(signature.to_json()),
                    entry.node_seq,
                    at,
                ),
            )
        log.info(
            "qa_central.decided",
            ncr=ncr_id,
            station=held.station,
            badge=signature.badge,
            by=actor,
            entry=entry.node_seq,
        )
        found = self.ncr(ncr_id)
        assert found is not None
        return found, decision

    def sent(self, ncr_id: str, kv_revision: int) -> None:
        with self._changing() as conn:
            conn.execute(
                "UPDATE decisions SET kv_revision = %s "
                "WHERE id = (SELECT max(id) FROM decisions WHERE ncr = %s)",
                (kv_revision, ncr_id),
            )

    def unsent(self) -> list[tuple[str, f.NcrDecision]]:
        """Each NCR whose latest hub decision never reached its station's records: (station, decision)."""
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT DISTINCT ON (ncr) * FROM decisions ORDER BY ncr, id DESC").fetchall()
        return [
            (
                row["station"],
                f.NcrDecision(
                    id=row["ncr"],
                    decided_by=row["signed_by"],
                    decided_at=row["at"],
                    disposition=row["disposition"],
                    design_authority_approval=row["design_authority_approval"],
                    close=row["close"],
                    evidence=row["evidence"],
                ),
            )
            for row in rows
            if row["kv_revision"] is None
        ]

    # -- CAPA ---------------------------------------------------------------------------------

    def open_capa(self, capa: CapaIn, *, actor: str) -> CapaView:
        known = {n.id for n in self.ncrs()}
        missing = [n for n in capa.ncrs if n not in known]
        if missing:
            raise Refused("ncrs", f"no NCR {', '.join(missing)} has reached the hub")
        at = self.clock()
        if capa.due_on < at.date():
            raise Refused("due_on", f"the due date {capa.due_on} is before today ({at.date()})")
        with self._changing() as conn:
            if conn.execute("SELECT 1 FROM capas WHERE id = %s", (capa.id,)).fetchone():
                raise Refused("id", f"CAPA {capa.id} exists already")
            conn.execute(
                "INSERT INTO capas (id, ncrs, root_cause, action, owner, due_on, status, opened_by, "
                "opened_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, 'open', %s, %s)",
                (capa.id, list(capa.ncrs), capa.root_cause, capa.action, capa.owner, capa.due_on, actor, at),
            )
            self._record("capa.opened", capa.id, actor, after=capa.model_dump(mode="json"))
        return self._capa(capa.id)

    def verify_capa(self, capa_id: str, body: VerificationIn, *, actor: str) -> CapaView:
        """Verification of effectiveness: effective closes it, not effective keeps it as a finding."""
        with self._changing() as conn:
            row = conn.execute("SELECT status FROM capas WHERE id = %s FOR UPDATE", (capa_id,)).fetchone()
            if row is None:
                raise Refused("capa", f"no CAPA {capa_id}")
            if row["status"] == "verified":
                raise Refused("capa", f"CAPA {capa_id} is verified effective already")
            status = "verified" if body.effective else "not-effective"
            conn.execute(
                "UPDATE capas SET status = %s, verification = %s, verified_by = %s, verified_at = %s "
                "WHERE id = %s",
                (status, body.verification, actor, self.clock(), capa_id),
            )
            self._record("capa.verified", capa_id, actor, status=status, verification=body.verification)
        return self._capa(capa_id)

    def _capa(self, capa_id: str) -> CapaView:
        return next(c for c in self.capas() if c.id == capa_id)

    def capas(self) -> list[CapaView]:
        today = self.clock().date()
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT * FROM capas ORDER BY due_on, id").fetchall()
        return [
            CapaView.model_validate({**r, "overdue": r["status"] != "verified" and r["due_on"] < today})
            for r in rows
        ]

    # -- first-pass yield ---------------------------------------------------------------------

    def first_pass_yield(self) -> list[Yield]:
        """Per station, part and customer: jobs (handed off or with an NCR) and those with no NCR.

        The one definition (:mod:`smart.hub.qa.yields`) the dashboard's panel reads too.
        """
        with self.pool.connection() as conn:
            return yields.first_pass_yield(conn)


class NcrDecisions:
    """Sends a hub decision to the NCR's station (``station-records``), after it is on the ledger."""

    def __init__(self, qa: QaCentral, js: JetStreamContext) -> None:
        self.qa = qa
        self.js = js

    async def decide(self, ncr_id: str, body: DispositionIn, signature: Signature, *, actor: str) -> NcrView:
        view, decision = await run_in_threadpool(self.qa.decide, ncr_id, body, signature, actor=actor)
        kv = await records.publish_record(self.js, view.station, "ncr-decision", ncr_id, decision)
        await run_in_threadpool(self.qa.sent, ncr_id, kv)
        return view

    async def resend(self) -> list[str]:
        """Put again every latest decision whose put never arrived (NATS was down); the NCRs sent."""
        sent = []
        for station, decision in await run_in_threadpool(self.qa.unsent):
            kv = await records.publish_record(self.js, station, "ncr-decision", decision.id, decision)
            await run_in_threadpool(self.qa.sent, decision.id, kv)
            sent.append(decision.id)
        return sent

    async def run(self, every_s: float = 60.0) -> None:
        import asyncio

        while True:
            try:
                await self.resend()
            except Exception as err:  # NATS still down: the next pass retries
                log.warning("qa_central.resend_failed", error=f"{type(err).__name__}: {err}")
            await asyncio.sleep(every_s)


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)
