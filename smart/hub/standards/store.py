"""StandardsCentral's store: specs and procedure revisions, e-signed approvals, and what stations hold.

A procedure revision is drafted with the day it takes effect and the
revision it supersedes; it is approved only by a signature
(:mod:`.esign`) whose credentials verify and permit ``approve_procedure`` in
the procedure's method (a Level 3), and the approved row is frozen. The
revision *in force* on a day is the approved one with the latest effective
date on or before it. :class:`StandardsPublisher` gives every station the
procedure names exactly the revision in force, as the ``procedure`` record
the station's procedure rule reads (``approved_by`` is the signer's badge,
whose Level 3 certification the station checks at the time of each event);
a draft, or a revision approved for a later day, never reaches a station.
Every change is an entry on the ``standards-central`` ledger node, and a
publication is recorded before any station has it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import Any, Protocol

import psycopg
import structlog
from nats.js import JetStreamContext
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb
from starlette.concurrency import run_in_threadpool

from smart.contracts import facts as f
from smart.hub import migrations
from smart.hub.clients.store import Refused
from smart.hub.service_log import ServiceLedger
from smart.hub.service_store import ServiceStore, utc_now
from smart.hub.standards.esign import Signature
from smart.hub.standards.models import (
    ProcedureIn,
    ProcedureView,
    Publication,
    RevisionIn,
    RevisionView,
    SpecRevisionIn,
    SpecRevisionView,
)
from smart.ledger import hub_store
from smart.node import records

log = structlog.get_logger("smart.hub.standards")

NODE = "standards-central"
SCHEMA = "standards"
MIGRATIONS = Path(__file__).with_name("migrations")
GRANTS = {
    "spec_revisions": "SELECT, INSERT",
    "procedures": "SELECT, INSERT",
    "procedure_revisions": "SELECT, INSERT, UPDATE",
    "publications": "SELECT, INSERT",
}
APPROVE = "approve_procedure"


def migrate(owner_url: str, *, app_role: str = hub_store.APP_ROLE) -> list[int]:
    return migrations.apply(owner_url, schema=SCHEMA, directory=MIGRATIONS, grants=GRANTS, app_role=app_role)


class StandardsCentral(ServiceStore):
    """Specs and procedures on app-role connections, recording on the ``standards-central`` node."""

    log_name = "standards_central"

    def __init__(
        self,
        url: str,
        *,
        ledger: ServiceLedger,
        stations: Collection[str],
        clock: Callable[[], datetime] = utc_now,
        zone: tzinfo = UTC,
        pool_size: int = 2,
    ) -> None:
        super().__init__(url, ledger=ledger, clock=clock, pool_size=pool_size)
        self.stations = frozenset(stations)
        self.zone = zone

    def today(self) -> date:
        return self.clock().astimezone(self.zone).date()

    # -- specs --------------------------------------------------------------------------------

    def add_spec_revision(self, spec: SpecRevisionIn, *, actor: str) -> SpecRevisionView:
        at = self.clock()
        with self._changing() as conn:
            held = {
                r["revision"]: r
                for r in conn.execute(
                    "SELECT * FROM standards.spec_revisions WHERE spec = %s", (spec.spec,)
                ).fetchall()
            }
            if spec.revision in held:
                raise Refused("revision", f"{spec.spec} rev {spec.revision} is recorded already")
            if spec.supersedes is not None:
                old = held.get(spec.supersedes)
                if old is None:
                    raise Refused("supersedes", f"{spec.spec} has no rev {spec.supersedes} to supersede")
                if spec.effective_on < old["effective_on"]:
                    raise Refused(
                        "effective_on",
                        f"{spec.spec} rev {spec.revision} takes effect {spec.effective_on}, before the rev "
                        f"{spec.supersedes} it supersedes ({old['effective_on']})",
                    )
            conn.execute(
                "INSERT INTO standards.spec_revisions (spec, revision, title, effective_on, supersedes, "
                "added_by, added_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (spec.spec, spec.revision, spec.title, spec.effective_on, spec.supersedes, actor, at),
            )
            view = SpecRevisionView(**spec.model_dump(), added_by=actor, added_at=at)
            self._record(
                "spec.revision.added",
                f"{spec.spec}/{spec.revision}",
                actor,
                after=view.model_dump(mode="json"),
            )
        return view

    def specs(self) -> list[SpecRevisionView]:
        today = self.today()
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT * FROM standards.spec_revisions ORDER BY spec, effective_on"
            ).fetchall()
        current: dict[str, str] = {}
        for row in rows:
            if row["effective_on"] <= today:
                current[row["spec"]] = row["revision"]
        return [
            SpecRevisionView.model_validate({**row, "in_force": current.get(row["spec"]) == row["revision"]})
            for row in rows
        ]

    # -- procedures ---------------------------------------------------------------------------

    def add_procedure(self, procedure: ProcedureIn, *, actor: str) -> ProcedureView:
        unknown = sorted(set(procedure.stations) - self.stations)
        if unknown:
            raise Refused(
                "stations",
                f"unknown station {', '.join(unknown)}; the hub knows {', '.join(sorted(self.stations))}",
            )
        at = self.clock()
        with self._changing() as conn:
            if conn.execute("SELECT 1 FROM standards.procedures WHERE id = %s", (procedure.id,)).fetchone():
                raise Refused("id", f"procedure {procedure.id} exists already")
            conn.execute(
                "INSERT INTO standards.procedures (id, method, title, stations, added_by, added_at) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (procedure.id, procedure.method, procedure.title, list(procedure.stations), actor, at),
            )
            view = ProcedureView(**procedure.model_dump(), added_by=actor, added_at=at)
            self._record("procedure.added", procedure.id, actor, after=view.model_dump(mode="json"))
        return view

    def procedure(self, procedure_id: str) -> ProcedureView | None:
        with self.pool.connection() as conn:
            return self._procedure(conn, procedure_id)

    def procedures(self) -> list[ProcedureView]:
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT * FROM standards.procedures ORDER BY id").fetchall()
        return [ProcedureView.model_validate(row) for row in rows]

    @staticmethod
    def _procedure(conn: psycopg.Connection[DictRow], procedure_id: str) -> ProcedureView | None:
        row = conn.execute("SELECT * FROM standards.procedures WHERE id = %s", (procedure_id,)).fetchone()
        return None if row is None else ProcedureView.model_validate(row)

    def draft(self, procedure_id: str, revision: RevisionIn, *, actor: str) -> RevisionView:
        """A new draft revision; refused naming the field when it cannot supersede what it names."""
        at = self.clock()
        with self._changing() as conn:
            if self._procedure(conn, procedure_id) is None:
                raise Refused("procedure", f"no procedure {procedure_id}")
            held = {r.revision: r for r in self._revisions(conn, procedure_id)}
            if revision.revision in held:
                raise Refused("revision", f"procedure {procedure_id} rev {revision.revision} exists already")
            if revision.supersedes is not None:
                old = held.get(revision.supersedes)
                if old is None:
                    raise Refused("supersedes", f"procedure {procedure_id} has no rev {revision.supersedes}")
                if revision.effective_on < old.effective_on:
                    raise Refused(
                        "effective_on",
                        f"rev {revision.revision} takes effect {revision.effective_on}, before rev "
                        f"{revision.supersedes} which it supersedes ({old.effective_on})",
                    )
            conn.execute(
                "INSERT INTO standards.procedure_revisions (procedure, revision, effective_on, supersedes, "
                "validated, spec, spec_revision, document, drafted_by, drafted_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    procedure_id,
                    revision.revision,
                    revision.effective_on,
                    revision.supersedes,
                    revision.validated,
                    revision.spec,
                    revision.spec_revision,
                    revision.document,
                    actor,
                    at,
                ),
            )
            view = self._revision(conn, procedure_id, revision.revision)
            assert view is not None
            self._record(
                "procedure.revision.drafted",
                f"{procedure_id}/{revision.revision}",
                actor,
                after=view.model_dump(mode="json"),
            )
        return view

    def approve(self, procedure_id: str, revision: str, signature: Signature, *, actor: str) -> RevisionView:
        """Sign a draft: the signature must carry ``approve_procedure`` in this procedure's method."""
        with self._changing() as conn:
            procedure = self._procedure(conn, procedure_id)
            if procedure is None:
                raise Refused("procedure", f"no procedure {procedure_id}")
            held = self._revision(conn, procedure_id, revision, lock=True)
            if held is None:
                raise Refused("revision", f"procedure {procedure_id} has no rev {revision}")
            if held.approved:
                raise Refused("revision", f"procedure {procedure_id} rev {revision} is approved already")
            if signature.action != APPROVE or signature.method != procedure.method:
                raise Refused(
                    "approver",
                    f"the signature is for {signature.action} in {signature.method}; "
                    f"procedure {procedure_id} "
                    f"needs {APPROVE} in {procedure.method} (a Level 3 of the method)",
                )
            entry = self.ledger.append(
                kind="procedure.revision.approved",
                subject=f"{procedure_id}/{revision}",
                data={
                    "procedure": procedure_id,
                    "revision": revision,
                    "method": procedure.method,
                    "effectiveOn": held.effective_on.isoformat(),
                    "supersedes": held.supersedes,
                    "validated": held.validated,
                    "signature": signature.to_json(),
                },
                actor=signature.badge,
            )
            conn.execute(
                "UPDATE standards.procedure_revisions SET approved_by = %s, approved_at = %s, "
                "signature = %s, "
                "approval_entry = %s WHERE procedure = %s AND revision = %s",
                (
                    signature.badge,
                    signature.at,
                    Jsonb(signature.to_json()),
                    entry.node_seq,
                    procedure_id,
                    revision,
                ),
            )
            view = self._revision(conn, procedure_id, revision)
            assert view is not None
        log.info(
            "standards_central.approved",
            procedure=procedure_id,
            revision=revision,
            badge=signature.badge,
            entry=entry.node_seq,
            by=actor,
        )
        return view

    def revisions(self, procedure_id: str) -> list[RevisionView]:
        with self.pool.connection() as conn:
            found = self._revisions(conn, procedure_id)
        current = self._in_force(found, self.today())
        return [
            r.model_copy(update={"in_force": current is not None and r.revision == current.revision})
            for r in found
        ]

    def in_force(self, procedure_id: str, on: date | None = None) -> RevisionView | None:
        """The approved revision with the latest effective date on or before ``on`` (today)."""
        with self.pool.connection() as conn:
            return self._in_force(self._revisions(conn, procedure_id), on or self.today())

    @staticmethod
    def _in_force(found: Iterable[RevisionView], on: date) -> RevisionView | None:
        effective = [r for r in found if r.approved and r.effective_on <= on]
        return max(
            effective,
            key=lambda r: (r.effective_on, r.approved_at or datetime.min.replace(tzinfo=UTC)),
            default=None,
        )

    @staticmethod
    def _revisions(conn: psycopg.Connection[DictRow], procedure_id: str) -> list[RevisionView]:
        rows = conn.execute(
            "SELECT * FROM standards.procedure_revisions WHERE procedure = %s "
            "ORDER BY effective_on, drafted_at",
            (procedure_id,),
        ).fetchall()
        return [RevisionView.model_validate(row) for row in rows]

    @staticmethod
    def _revision(
        conn: psycopg.Connection[DictRow], procedure_id: str, revision: str, *, lock: bool = False
    ) -> RevisionView | None:
        row = conn.execute(
            "SELECT * FROM standards.procedure_revisions WHERE procedure = %s AND revision = %s"
            + (" FOR UPDATE" if lock else ""),
            (procedure_id, revision),
        ).fetchone()
        return None if row is None else RevisionView.model_validate(row)

    # -- what stations hold -------------------------------------------------------------------

    def held_by_stations(self, procedure_id: str) -> dict[str, str]:
        """Station → the revision it was last given."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT DISTINCT ON (station) station, revision FROM standards.publications "
                "WHERE procedure = %s ORDER BY station, id DESC",
                (procedure_id,),
            ).fetchall()
        return {row["station"]: row["revision"] for row in rows}

    def publications(self) -> list[Publication]:
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT * FROM standards.publications ORDER BY id").fetchall()
        return [Publication.model_validate(row) for row in rows]

    def due(self, on: date | None = None) -> list[tuple[ProcedureView, RevisionView, tuple[str, ...]]]:
        """Each procedure whose revision in force is not what some of its stations hold, and those."""
        found = []
        for procedure in self.procedures():
            current = self.in_force(procedure.id, on)
            if current is None:
                continue
            held = self.held_by_stations(procedure.id)
            behind = tuple(s for s in procedure.stations if held.get(s) != current.revision)
            if behind:
                found.append((procedure, current, behind))
        return found

    def record_publication(
        self, procedure: ProcedureView, revision: RevisionView, stations: tuple[str, ...]
    ) -> None:
        self._record(
            "procedure.revision.published",
            f"{procedure.id}/{revision.revision}",
            NODE,
            procedure=procedure.id,
            revision=revision.revision,
            stations=list(stations),
            approvedBy=revision.approved_by,
            approvalEntry=revision.approval_entry,
            effectiveOn=revision.effective_on.isoformat(),
        )

    def published(self, procedure_id: str, station: str, revision: str, kv_revision: int) -> None:
        with self._changing() as conn:
            conn.execute(
                "INSERT INTO standards.publications (procedure, station, revision, kv_revision, at) "
                "VALUES (%s, %s, %s, %s, %s)",
                (procedure_id, station, revision, kv_revision, self.clock()),
            )


class ProcedureBook(Protocol):
    """Travelers' approved procedures (routes and releases read them), kept in step with these."""

    def procedure(self, procedure_id: str) -> Any: ...

    def approve_procedure(self, procedure: Any, *, actor: str) -> Any: ...


def station_record(procedure: ProcedureView, revision: RevisionView) -> f.Procedure:
    """The ``procedure`` record a station's procedure rule reads, for the revision in force."""
    assert revision.approved_by is not None
    return f.Procedure(
        id=procedure.id,
        revision=revision.revision,
        method=procedure.method,
        approved_by=revision.approved_by,
        validated=revision.validated,
    )


class StandardsPublisher:
    """Puts each procedure's revision in force into its stations' ``station-records`` (``sweep``)."""

    def __init__(
        self, standards: StandardsCentral, js: JetStreamContext, *, travelers: ProcedureBook | None = None
    ) -> None:
        self.standards = standards
        self.js = js
        self.travelers = travelers

    async def sweep(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """Publish what came into force; ``(procedure, revision, stations)`` for each publication."""
        done = []
        for procedure, revision, stations in await run_in_threadpool(self.standards.due):
            await run_in_threadpool(self.standards.record_publication, procedure, revision, stations)
            record = station_record(procedure, revision)
            for station in stations:
                kv = await records.publish_record(self.js, station, "procedure", procedure.id, record)
                await run_in_threadpool(
                    self.standards.published, procedure.id, station, revision.revision, kv
                )
            if self.travelers is not None:
                await run_in_threadpool(self._book, procedure, revision)
            log.info(
                "standards_central.published",
                procedure=procedure.id,
                revision=revision.revision,
                stations=list(stations),
            )
            done.append((procedure.id, revision.revision, stations))
        return done

    def _book(self, procedure: ProcedureView, revision: RevisionView) -> None:
        """Routes and releases name the revision in force (Travelers' procedure book follows this one)."""
        from smart.hub.travelers.models import ProcedureIn as BookEntry

        assert self.travelers is not None
        current = self.travelers.procedure(procedure.id)
        if current is not None and current.revision == revision.revision:
            return
        try:
            self.travelers.approve_procedure(
                BookEntry(
                    id=procedure.id,
                    revision=revision.revision,
                    method=procedure.method,
                    approved_by=revision.approved_by,
                    validated=revision.validated,
                ),
                actor=NODE,
            )
        except Refused as err:  # that revision was booked before and superseded since: leave the book be
            log.warning("standards_central.book_refused", procedure=procedure.id, error=str(err))

    async def run(self, every_s: float = 60.0) -> None:
        """Sweep until cancelled (a revision takes effect on its day without anyone at the hub)."""
        import asyncio

        while True:
            try:
                await self.sweep()
            except Exception as err:  # a NATS or database hiccup: the next sweep retries
                log.warning("standards_central.sweep_failed", error=f"{type(err).__name__}: {err}")
            await asyncio.sleep(every_s)
