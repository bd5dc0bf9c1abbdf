"""Projects' own schema: the milestone dates a planner commits a PO to, and the invoices Pay recorded.

A planned date is a promise the shop makes (to ship PO-4411 by the 16th),
so setting or moving one is a change like any other work change: one
transaction on the ``projects`` schema and one entry on the ``projects``
ledger node with who, the date before and after, and why
(:class:`smart.hub.service_store.ServiceStore`). A milestone is late when
its planned date has passed and the stations' entries have not reached it.

What Pay invoiced reaches Projects through the ledger, never through Pay's
tables (Pay runs on the Business hub, Projects on the Floor hub):
:class:`InvoiceIndex` indexes the ``invoice.issued`` and
``credit_note.issued`` entries of the hub log into ``projects.invoices``,
append-only and re-derivable from the log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import psycopg
import structlog
from psycopg.conninfo import make_conninfo
from psycopg.rows import DictRow

from smart.hub import log_index, migrations
from smart.hub.clients.store import Refused
from smart.hub.service_log import ServiceLedger
from smart.hub.service_store import ServiceStore, utc_now
from smart.ledger import hub_store
from smart.ledger.entry import Entry

log = structlog.get_logger("smart.hub.projects")

SCHEMA = "projects"
MIGRATIONS = Path(__file__).with_name("migrations")
#: Plans are set and moved (never deleted: a moved date keeps its history on the ledger); the invoice
#: index is append-only, as every index of the log.
GRANTS = {"milestone_plans": "SELECT, INSERT, UPDATE", "invoices": "SELECT, INSERT"}
MILESTONES = ("received", "in process", "inspected", "shipped", "invoiced")
#: Pay's entries that Projects follows.
INVOICE_KINDS = ("invoice.issued", "credit_note.issued")


def migrate(owner_url: str, *, app_role: str = hub_store.APP_ROLE) -> list[int]:
    """Bring the ``projects`` schema up to date as the owner; the app role gets :data:`GRANTS` only."""
    return migrations.apply(owner_url, schema=SCHEMA, directory=MIGRATIONS, grants=GRANTS, app_role=app_role)


@dataclass(frozen=True, slots=True)
class MilestonePlan:
    po: str
    milestone: str
    due_on: date
    reason: str
    version: int
    set_by: str
    set_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "po": self.po,
            "milestone": self.milestone,
            "dueOn": self.due_on.isoformat(),
            "reason": self.reason,
            "version": self.version,
            "setBy": self.set_by,
            "setAt": self.set_at.isoformat(),
        }


def _plan(row: DictRow | dict[str, Any]) -> MilestonePlan:
    return MilestonePlan(
        po=row["po"],
        milestone=row["milestone"],
        due_on=row["due_on"],
        reason=row["reason"],
        version=row["version"],
        set_by=row["set_by"],
        set_at=row["set_at"],
    )


def plans(conn: psycopg.Connection[Any], po: str) -> dict[str, MilestonePlan]:
    """The PO's planned milestone dates, by milestone."""
    cursor = conn.cursor(row_factory=psycopg.rows.dict_row)
    rows = cursor.execute("SELECT * FROM projects.milestone_plans WHERE po = %s", (po,)).fetchall()
    return {row["milestone"]: _plan(row) for row in rows}


class Projects(ServiceStore):
    """Milestone plans on app-role connections, each change recorded on the ``projects`` node."""

    log_name = "projects"

    def __init__(
        self, url: str, *, ledger: ServiceLedger, clock: Callable[[], datetime] = utc_now, pool_size: int = 2
    ) -> None:
        super().__init__(url, ledger=ledger, clock=clock, pool_size=pool_size)

    def plan(self, po: str, milestone: str, due_on: date, *, actor: str, reason: str = "") -> MilestonePlan:
        """Commit the PO to reach ``milestone`` by ``due_on``; moving a date needs its reason."""
        if milestone not in MILESTONES:
            raise Refused("milestone", f"{milestone!r} is not a milestone; one of {', '.join(MILESTONES)}")
        at = self.clock()
        with self._changing() as conn:
            if conn.execute("SELECT 1 FROM clients.purchase_orders WHERE po = %s", (po,)).fetchone() is None:
                raise Refused("po", f"no PO {po}")
            before_row = conn.execute(
                "SELECT * FROM projects.milestone_plans WHERE po = %s AND milestone = %s FOR UPDATE",
                (po, milestone),
            ).fetchone()
            before = None if before_row is None else _plan(before_row)
            if before is None:
                conn.execute(
                    "INSERT INTO projects.milestone_plans (po, milestone, due_on, reason, set_by, set_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s)",
                    (po, milestone, due_on, reason, actor, at),
                )
            else:
                if before.due_on != due_on and not reason.strip():
                    raise Refused(
                        "reason",
                        f"PO {po} is planned {milestone} by {before.due_on}; moving it needs its reason",
                    )
                conn.execute(
                    "UPDATE projects.milestone_plans SET due_on = %s, reason = %s, version = version + 1, "
                    "set_by = %s, set_at = %s WHERE po = %s AND milestone = %s",
                    (due_on, reason, actor, at, po, milestone),
                )
            row = conn.execute(
                "SELECT * FROM projects.milestone_plans WHERE po = %s AND milestone = %s", (po, milestone)
            ).fetchone()
            assert row is not None
            after = _plan(row)
            self._record(
                "project.milestone.planned",
                f"{po}/{milestone}",
                actor,
                before=before.to_json() if before else None,
                after=after.to_json(),
            )
        return after

    def plans(self, po: str) -> dict[str, MilestonePlan]:
        with self.pool.connection() as conn:
            return plans(conn, po)


def _amount(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


class InvoiceIndex(log_index.LogIndex):
    """Pay's invoices and credit notes from the hub log, one row per PO line they name."""

    kinds = INVOICE_KINDS
    table = "invoices"

    @classmethod
    def connect(cls, url: str) -> InvoiceIndex:
        scoped = make_conninfo(url, options=f"-c search_path={SCHEMA},public")
        return cls(psycopg.connect(scoped, autocommit=True), url=scoped)

    def take(self, idx: int, entry: Entry) -> int:
        data = entry.data
        document, po, at = data.get("document"), data.get("po"), data.get("issuedAt")
        lines = data.get("lines")
        if not isinstance(document, str) or not isinstance(po, str) or not isinstance(lines, list):
            log.error("projects.unreadable_invoice", index=idx, kind=entry.kind)
            return 0
        added = 0
        for item in lines:
            if not isinstance(item, dict):
                continue
            amount, quantity = _amount(item.get("amount")), item.get("quantity")
            if amount is None or not isinstance(quantity, int) or not isinstance(item.get("line"), str):
                continue
            added += self.conn.execute(
                "INSERT INTO invoices (ledger_idx, kind, document, po, line, quantity, amount, at, node_seq, "
                "entry_hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (
                    idx,
                    entry.kind,
                    document,
                    po,
                    item["line"],
                    quantity,
                    amount,
                    at if isinstance(at, str) else entry.ts,
                    entry.node_seq,
                    entry.hash,
                ),
            ).rowcount
        return 1 if added else 0


def invoiced_at(conn: psycopg.Connection[Any], po: str, line: str) -> datetime | None:
    """When the line was first invoiced, as the ledger says (``None`` while it is not)."""
    row = conn.execute(
        "SELECT min(at) FROM projects.invoices WHERE po = %s AND line = %s AND kind = 'invoice.issued'",
        (po, line),
    ).fetchone()
    return row[0] if row else None
