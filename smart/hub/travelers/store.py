"""Travelers: each PO line's route, editable as a draft, frozen and versioned once released.

A traveler names, operation by operation, the station, the process its
contract knows, the procedure and revision, the spec, class and acceptance
criteria. Every station must be one the hub knows and every procedure
revision one that is approved and current, or the route is refused naming
the operation. A draft can be edited until HandoffCentral releases it;
a released revision is frozen (by the code and by a trigger), and a change
after release is a new revision, with the reason, on the ``travelers``
ledger node. Templates per part or process give a new traveler its route.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import structlog
from psycopg.rows import DictRow

from smart.hub import migrations
from smart.hub.clients.store import Refused
from smart.hub.service_log import ServiceLedger
from smart.hub.service_store import ServiceStore, utc_now
from smart.hub.travelers.models import (
    OperationIn,
    OperationView,
    ProcedureIn,
    ProcedureView,
    Status,
    TemplateIn,
    TemplateView,
    TravelerIn,
    TravelerView,
)
from smart.ledger import hub_store

log = structlog.get_logger("smart.hub.travelers")

SCHEMA = "travelers"
MIGRATIONS = Path(__file__).with_name("migrations")
GRANTS = {
    "procedures": "SELECT, INSERT",
    "templates": "SELECT, INSERT, UPDATE",
    "travelers": "SELECT, INSERT, UPDATE",
}


def migrate(owner_url: str, *, app_role: str = hub_store.APP_ROLE) -> list[int]:
    """Bring the ``travelers`` schema up to date as the owner; the app role gets :data:`GRANTS` only."""
    return migrations.apply(owner_url, schema=SCHEMA, directory=MIGRATIONS, grants=GRANTS, app_role=app_role)


def _operations(raw: Any) -> tuple[OperationView, ...]:
    return tuple(OperationView.model_validate(op) for op in raw)


class Travelers(ServiceStore):
    """The travelers service on app-role connections, recording on the ``travelers`` node."""

    log_name = "travelers"

    def __init__(
        self,
        url: str,
        *,
        ledger: ServiceLedger,
        stations: Collection[str],
        clock: Callable[[], datetime] = utc_now,
        pool_size: int = 2,
    ) -> None:
        super().__init__(url, ledger=ledger, clock=clock, pool_size=pool_size)
        self.stations = frozenset(stations)

    # -- procedures -----------------------------------------------------------------------------

    def approve_procedure(self, procedure: ProcedureIn, *, actor: str) -> ProcedureView:
        """Record an approved procedure revision; it becomes the procedure's current revision."""
        at = self.clock()
        with self._changing() as conn:
            if conn.execute(
                "SELECT 1 FROM travelers.procedures WHERE id = %s AND revision = %s",
                (procedure.id, procedure.revision),
            ).fetchone():
                raise Refused(
                    "revision", f"procedure {procedure.id} rev {procedure.revision} is approved already"
                )
            conn.execute(
                "INSERT INTO travelers.procedures (id, revision, method, "
                "approved_by, validated, approved_at, "
                "added_by) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    procedure.id,
                    procedure.revision,
                    procedure.method,
                    procedure.approved_by,
                    procedure.validated,
                    at,
                    actor,
                ),
            )
            view = self._current_procedure(conn, procedure.id)
            assert view is not None
            self._record("procedure.approved", procedure.id, actor, after=view.model_dump(mode="json"))
        return view

    def procedure(self, procedure_id: str) -> ProcedureView | None:
        """The current approved revision of a procedure."""
        with self.pool.connection() as conn:
            return self._current_procedure(conn, procedure_id)

    def procedures(self) -> list[ProcedureView]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT p.*, p.approved_at = max(p.approved_at) OVER (PARTITION BY p.id) AS current "
                "FROM travelers.procedures p ORDER BY p.id, p.approved_at"
            ).fetchall()
        return [ProcedureView.model_validate(row) for row in rows]

    def _current_procedure(
        self, conn: psycopg.Connection[DictRow], procedure_id: str
    ) -> ProcedureView | None:
        row = conn.execute(
            "SELECT *, true AS current FROM travelers.procedures WHERE id = %s "
            "ORDER BY approved_at DESC, revision DESC LIMIT 1",
            (procedure_id,),
        ).fetchone()
        return None if row is None else ProcedureView.model_validate(row)

    # -- checking a route -----------------------------------------------------------------------

    def _checked(
        self, conn: psycopg.Connection[DictRow], operations: tuple[OperationIn, ...]
    ) -> list[dict[str, Any]]:
        """The route as stored, or :class:`Refused` naming the first operation that cannot be done."""
        route: list[dict[str, Any]] = []
        for index, operation in enumerate(operations):
            where = f"operations[{index}]"
            if operation.station not in self.stations:
                raise Refused(
                    f"{where}.station",
                    f"unknown station {operation.station}; the hub knows {', '.join(sorted(self.stations))}",
                )
            current = self._current_procedure(conn, operation.procedure)
            if current is None:
                raise Refused(
                    f"{where}.procedure", f"procedure {operation.procedure} has no approved revision"
                )
            if current.revision != operation.procedure_revision:
                raise Refused(
                    f"{where}.procedure_revision",
                    f"procedure {operation.procedure} rev {operation.procedure_revision} is not approved; "
                    f"the approved revision is {current.revision}",
                )
            route.append({"seq": index + 1, **operation.model_dump(mode="json", by_alias=True)})
        return route

    # -- templates ------------------------------------------------------------------------------

    def add_template(self, template: TemplateIn, *, actor: str) -> TemplateView:
        with self._changing() as conn:
            route = self._checked(conn, template.operations)
            before = self._template(conn, template.name)
            if before is None:
                conn.execute(
                    "INSERT INTO travelers.templates (name, part, process, operations, added_by) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (template.name, template.part, template.process, json.dumps(route), actor),
                )
            else:
                conn.execute(
                    "UPDATE travelers.templates SET part = %s, process = %s, operations = %s, "
                    "version = version + 1 WHERE name = %s",
                    (template.part, template.process, json.dumps(route), template.name),
                )
            after = self._template(conn, template.name)
            assert after is not None
            self._record(
                "traveler.template.saved",
                template.name,
                actor,
                before=before.model_dump(mode="json", by_alias=True) if before else None,
                after=after.model_dump(mode="json", by_alias=True),
            )
        return after

    def template_for(self, *, part: str | None = None, process: str | None = None) -> TemplateView | None:
        """The template for a part, else for a process."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT * FROM travelers.templates WHERE part = %s OR (part IS NULL AND process = %s) "
                "ORDER BY part IS NULL, name LIMIT 1",
                (part, process),
            ).fetchone()
        return (
            None
            if row is None
            else TemplateView.model_validate({**row, "operations": _operations(row["operations"])})
        )

    def _template(self, conn: psycopg.Connection[DictRow], name: str) -> TemplateView | None:
        row = conn.execute("SELECT * FROM travelers.templates WHERE name = %s", (name,)).fetchone()
        return (
            None
            if row is None
            else TemplateView.model_validate({**row, "operations": _operations(row["operations"])})
        )

    # -- travelers ------------------------------------------------------------------------------

    def save(self, po: str, line: str, traveler: TravelerIn, *, actor: str) -> TravelerView:
        """Write the line's draft traveler; after a release, the next revision (its reason is due)."""
        at = self.clock()
        with self._changing() as conn:
            operations = traveler.operations
            if not operations:
                assert traveler.template is not None
                template = self._template(conn, traveler.template)
                if template is None:
                    raise Refused("template", f"no traveler template {traveler.template}")
                operations = tuple(
                    OperationIn.model_validate(op.model_dump(by_alias=True, exclude={"seq"}))
                    for op in template.operations
                )
            route = self._checked(conn, operations)
            before = self._latest(conn, po, line, lock=True)
            if before is not None and before.status is Status.DRAFT:
                conn.execute(
                    "UPDATE travelers.travelers SET operations = %s, template = %s, reason = %s "
                    "WHERE po = %s AND line = %s AND revision = %s",
                    (
                        json.dumps(route),
                        traveler.template,
                        traveler.reason or before.reason,
                        po,
                        line,
                        before.revision,
                    ),
                )
                revision = before.revision
                kind = "traveler.edited"
            else:
                if before is not None and not traveler.reason:
                    raise Refused(
                        "reason",
                        f"traveler {po}/{line} rev {before.revision} is "
                        "released; a new revision needs its reason",
                    )
                revision = 1 if before is None else before.revision + 1
                conn.execute(
                    "INSERT INTO travelers.travelers (po, line, revision, "
                    "status, reason, template, operations, "
                    "created_by, created_at) VALUES (%s, %s, %s, 'draft', %s, %s, %s, %s, %s)",
                    (
                        po,
                        line,
                        revision,
                        traveler.reason or "first issue",
                        traveler.template,
                        json.dumps(route),
                        actor,
                        at,
                    ),
                )
                kind = "traveler.created" if before is None else "traveler.revised"
            after = self._get(conn, po, line, revision)
            assert after is not None
            self._record(
                kind,
                f"{po}/{line}",
                actor,
                revision=revision,
                reason=after.reason,
                before=before.model_dump(mode="json", by_alias=True) if before else None,
                after=after.model_dump(mode="json", by_alias=True),
            )
        return after

    def mark_released(self, po: str, line: str, revision: int, *, actor: str, at: datetime) -> TravelerView:
        """Freeze a draft (HandoffCentral calls this as it releases the line; its ledger entry says so)."""
        with self._changing() as conn:
            held = self._get(conn, po, line, revision)
            if held is None:
                raise Refused("traveler", f"no traveler {po}/{line} rev {revision}")
            if held.status is Status.DRAFT:
                conn.execute(
                    "UPDATE travelers.travelers SET status = 'released', released_by = %s, released_at = %s "
                    "WHERE po = %s AND line = %s AND revision = %s",
                    (actor, at, po, line, revision),
                )
            after = self._get(conn, po, line, revision)
            assert after is not None
        return after

    def latest(self, po: str, line: str) -> TravelerView | None:
        with self.pool.connection() as conn:
            return self._latest(conn, po, line)

    def released(self, po: str, line: str) -> TravelerView | None:
        """The revision last released (what the stations hold), even while a newer one is a draft."""
        found = [t for t in self.revisions(po, line) if t.status is Status.RELEASED]
        return found[-1] if found else None

    def revisions(self, po: str, line: str) -> list[TravelerView]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT * FROM travelers.travelers WHERE po = %s AND line = %s ORDER BY revision", (po, line)
            ).fetchall()
        return [self._view(row) for row in rows]

    def _latest(
        self, conn: psycopg.Connection[DictRow], po: str, line: str, *, lock: bool = False
    ) -> TravelerView | None:
        row = conn.execute(
            "SELECT * FROM travelers.travelers WHERE po = %s AND line = %s ORDER BY revision DESC LIMIT 1"
            + (" FOR UPDATE" if lock else ""),
            (po, line),
        ).fetchone()
        return None if row is None else self._view(row)

    def _get(
        self, conn: psycopg.Connection[DictRow], po: str, line: str, revision: int
    ) -> TravelerView | None:
        row = conn.execute(
            "SELECT * FROM travelers.travelers WHERE po = %s AND line = %s AND revision = %s",
            (po, line, revision),
        ).fetchone()
        return None if row is None else self._view(row)

    @staticmethod
    def _view(row: DictRow) -> TravelerView:
        return TravelerView.model_validate({**row, "operations": _operations(row["operations"])})
