"""ClientManager's store: clients, POs, lines with their flowdowns, and contract reviews, with the ledger.

Each change is one database transaction together with one entry on the
``client-manager`` ledger node naming who, what, and the line (or client)
before and after; if the entry cannot be written the change is rolled back,
so the tables never hold what the ledger does not. A line's ``version``
counts its changes; a review holds for the version it saw, so changing a
reviewed line re-opens its review (AS9100D 8.2.4: changed requirements are
reviewed again) and it cannot be released until reviewed again.

The store runs as the app role, which may SELECT, INSERT and UPDATE the
work tables, replace a line's flowdowns, and only INSERT reviews.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import structlog
from psycopg.rows import DictRow

from smart.hub import migrations
from smart.hub.clients.models import (
    ClientIn,
    ClientView,
    FlowdownView,
    LineIn,
    LineView,
    Outcome,
    PurchaseOrderIn,
    PurchaseOrderView,
    ReviewIn,
    ReviewView,
)
from smart.hub.service_log import ServiceLedger
from smart.hub.service_store import ServiceStore, utc_now
from smart.ledger import hub_store

log = structlog.get_logger("smart.hub.clients")

SCHEMA = "clients"
MIGRATIONS = Path(__file__).with_name("migrations")
#: What the app role may do, table by table (least privilege: reviews are never changed).
GRANTS = {
    "clients": "SELECT, INSERT, UPDATE",
    "purchase_orders": "SELECT, INSERT",
    "po_lines": "SELECT, INSERT, UPDATE",
    "flowdowns": "SELECT, INSERT, DELETE",
    "contract_reviews": "SELECT, INSERT",
}


#: POs per ledger entry of an import (each entry a few hundred kB at most).
IMPORT_SLICE = 50


def migrate(owner_url: str, *, app_role: str = hub_store.APP_ROLE) -> list[int]:
    """Bring the ``clients`` schema up to date as the owner; the app role gets :data:`GRANTS` only."""
    return migrations.apply(owner_url, schema=SCHEMA, directory=MIGRATIONS, grants=GRANTS, app_role=app_role)


class Refused(ValueError):
    """A change ClientManager will not make; ``field`` names what is wrong (``po``, ``lines[0].part``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


_LINE_COLUMNS = (
    "l.po, l.line, o.client, l.part, l.part_revision, l.quantity, l.unit, l.serials, l.lot, l.unit_price, "
    "l.due_date, l.version, (l.reviewed_version IS NOT DISTINCT FROM l.version) AS reviewed, "
    "l.released_version, l.released_at"
)
_SEARCHABLE = re.compile(r"[%_\\]")


def _like_prefix(text: str) -> str:
    return _SEARCHABLE.sub(lambda m: "\\" + m[0], text) + "%"


class ClientManager(ServiceStore):
    """ClientManager on a small pool of app-role connections, recording on its own ledger node."""

    log_name = "client_manager"

    def __init__(self, url: str, *, ledger: ServiceLedger, clock: Any = utc_now, pool_size: int = 4) -> None:
        super().__init__(url, ledger=ledger, clock=clock, pool_size=pool_size)

    # -- clients ------------------------------------------------------------------------------

    def add_client(self, client: ClientIn, *, actor: str) -> ClientView:
        with self._changing() as conn:
            if conn.execute("SELECT 1 FROM clients.clients WHERE code = %s", (client.code,)).fetchone():
                raise Refused("code", f"client {client.code} exists already")
            conn.execute(
                "INSERT INTO clients.clients (code, name, retention, "
                "nadcap_required, quality_clauses, added_by) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    client.code,
                    client.name,
                    client.retention,
                    client.nadcap_required,
                    list(client.quality_clauses),
                    actor,
                ),
            )
            view = self._client(conn, client.code)
            assert view is not None
            self._record("client.added", client.code, actor, before=None, after=view.model_dump(mode="json"))
        return view

    def change_client(self, client: ClientIn, *, actor: str) -> ClientView:
        with self._changing() as conn:
            before = self._client(conn, client.code, lock=True)
            if before is None:
                raise Refused("code", f"no client {client.code}")
            conn.execute(
                "UPDATE clients.clients SET name = %s, retention = %s, nadcap_required = %s, "
                "quality_clauses = %s, version = version + 1 WHERE code = %s",
                (
                    client.name,
                    client.retention,
                    client.nadcap_required,
                    list(client.quality_clauses),
                    client.code,
                ),
            )
            after = self._client(conn, client.code)
            assert after is not None
            self._record(
                "client.changed",
                client.code,
                actor,
                before=before.model_dump(mode="json"),
                after=after.model_dump(mode="json"),
            )
        return after

    def client(self, code: str) -> ClientView | None:
        with self.pool.connection() as conn:
            return self._client(conn, code)

    def clients(self) -> list[ClientView]:
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT * FROM clients.clients ORDER BY code").fetchall()
        return [ClientView.model_validate(row) for row in rows]

    def _client(
        self, conn: psycopg.Connection[DictRow], code: str, *, lock: bool = False
    ) -> ClientView | None:
        row = conn.execute(
            "SELECT * FROM clients.clients WHERE code = %s" + (" FOR UPDATE" if lock else ""), (code,)
        ).fetchone()
        return None if row is None else ClientView.model_validate(row)

    # -- purchase orders and lines ---------------------------------------------------------------

    def add_po(self, order: PurchaseOrderIn, *, actor: str) -> PurchaseOrderView:
        """Enter a customer PO with its lines and their flowdowns: all of it, or nothing."""
        with self._changing() as conn:
            client = self._client(conn, order.client)
            if client is None:
                raise Refused("client", f"no client {order.client}; add the client first")
            if conn.execute("SELECT 1 FROM clients.purchase_orders WHERE po = %s", (order.po,)).fetchone():
                raise Refused("po", f"PO {order.po} exists already")
            conn.execute(
                "INSERT INTO clients.purchase_orders (po, client, "
                "received_on, added_by) VALUES (%s, %s, %s, %s)",
                (order.po, order.client, order.received_on, actor),
            )
            for line in order.lines:
                self._insert_line(conn, order.po, line, client)
            view = self._po(conn, order.po)
            assert view is not None
            self._record(
                "po.added", order.po, actor, before=None, after=view.model_dump(mode="json", by_alias=True)
            )
        return view

    def check_pos(
        self, orders: Sequence[PurchaseOrderIn], *, new_clients: Sequence[str] = ()
    ) -> list[Refused]:
        """What would stop ``orders`` being entered, each naming ``[i].field`` (an import's dry run)."""
        problems: list[Refused] = []
        with self.pool.connection() as conn:
            codes = {order.client for order in orders}
            known = {
                row["code"]: ClientView.model_validate(row)
                for row in conn.execute("SELECT * FROM clients.clients WHERE code = ANY(%s)", (list(codes),))
            }
            taken = {
                row["po"]
                for row in conn.execute(
                    "SELECT po FROM clients.purchase_orders WHERE po = ANY(%s)", ([o.po for o in orders],)
                )
            }
        seen: set[str] = set()
        for index, order in enumerate(orders):
            client = known.get(order.client)
            if client is None and order.client not in new_clients:
                problems.append(
                    Refused(f"[{index}].client", f"no client {order.client}; add the client first")
                )
            if order.po in taken or order.po in seen:
                problems.append(Refused(f"[{index}].po", f"PO {order.po} exists already"))
            seen.add(order.po)
            if client is not None and client.nadcap_required:
                for n, line in enumerate(order.lines):
                    for m, flowdown in enumerate(line.flowdowns):
                        if not flowdown.nadcap_required:
                            problems.append(
                                Refused(
                                    f"[{index}].lines[{n}].flowdowns[{m}].nadcap_required",
                                    f"client {client.code} requires Nadcap-accredited "
                                    "processing on every flowdown",
                                )
                            )
        return problems

    def add_pos(self, orders: Sequence[PurchaseOrderIn], *, actor: str, source: str) -> int:
        """Enter many POs in one transaction (an import): all of them or none, on the ledger by slices."""
        problems = self.check_pos(orders)
        if problems:
            raise problems[0]
        with self._changing() as conn:
            clients = {
                row["code"]: ClientView.model_validate(row)
                for row in conn.execute(
                    "SELECT * FROM clients.clients WHERE code = ANY(%s)", (list({o.client for o in orders}),)
                )
            }
            with conn.cursor() as cur:
                with cur.copy(
                    "COPY clients.purchase_orders (po, client, received_on, added_by) FROM STDIN"
                ) as copy:
                    for o in orders:
                        copy.write_row((o.po, o.client, o.received_on, actor))
                with cur.copy(
                    "COPY clients.po_lines (po, line, part, part_revision, quantity, unit, serials, lot, "
                    "unit_price, due_date) FROM STDIN"
                ) as copy:
                    for o in orders:
                        for ln in o.lines:
                            copy.write_row(
                                (
                                    o.po,
                                    ln.line,
                                    ln.part,
                                    ln.part_revision,
                                    ln.quantity,
                                    ln.unit.value,
                                    list(ln.serials),
                                    ln.lot,
                                    ln.unit_price,
                                    ln.due_date,
                                )
                            )
                with cur.copy(
                    "COPY clients.flowdowns (po, line, position, spec, spec_revision, class, "
                    "acceptance_criteria, nadcap_required, retention) FROM STDIN"
                ) as copy:
                    for o in orders:
                        for ln in o.lines:
                            for n, fd in enumerate(ln.flowdowns):
                                copy.write_row(
                                    (
                                        o.po,
                                        ln.line,
                                        n,
                                        fd.spec,
                                        fd.spec_revision,
                                        fd.class_,
                                        fd.acceptance_criteria,
                                        fd.nadcap_required,
                                        fd.retention or clients[o.client].retention,
                                    )
                                )
            # One entry per slice of POs, each PO whole as entered: who, which file, every PO after.
            slices = range(0, len(orders), IMPORT_SLICE)
            entries = self.ledger.append_many(
                [
                    {
                        "kind": "po.imported",
                        "subject": source,
                        "data": {
                            "source": source,
                            "slice": n // IMPORT_SLICE + 1,
                            "slices": len(slices),
                            "before": None,
                            "after": [
                                o.model_dump(mode="json", by_alias=True) for o in orders[n : n + IMPORT_SLICE]
                            ],
                        },
                    }
                    for n in slices
                ],
                actor=actor,
            )
            log.info(
                "client_manager.imported", source=source, pos=len(orders), entries=len(entries), actor=actor
            )
        return sum(len(o.lines) for o in orders)

    def add_clients(self, clients: Sequence[ClientIn], *, actor: str, source: str) -> int:
        """Enter many clients in one transaction (an import): all or none."""
        with self._changing() as conn:
            taken = {
                row["code"]
                for row in conn.execute(
                    "SELECT code FROM clients.clients WHERE code = ANY(%s)", ([c.code for c in clients],)
                )
            }
            for index, client in enumerate(clients):
                if client.code in taken:
                    raise Refused(f"[{index}].code", f"client {client.code} exists already")
                conn.execute(
                    "INSERT INTO clients.clients (code, name, retention, nadcap_required, quality_clauses, "
                    "added_by) VALUES (%s, %s, %s, %s, %s, %s)",
                    (
                        client.code,
                        client.name,
                        client.retention,
                        client.nadcap_required,
                        list(client.quality_clauses),
                        actor,
                    ),
                )
            self.ledger.append_many(
                [
                    {
                        "kind": "client.added",
                        "subject": c.code,
                        "data": {"source": source, "before": None, "after": c.model_dump(mode="json")},
                    }
                    for c in clients
                ],
                actor=actor,
            )
        return len(clients)

    def existing_clients(self, codes: Sequence[str]) -> set[str]:
        with self.pool.connection() as conn:
            return {
                row["code"]
                for row in conn.execute(
                    "SELECT code FROM clients.clients WHERE code = ANY(%s)", (list(codes),)
                )
            }

    def add_line(self, po: str, line: LineIn, *, actor: str) -> LineView:
        with self._changing() as conn:
            client = self._po_client(conn, po)
            if self._line(conn, po, line.line) is not None:
                raise Refused("line", f"PO {po} has a line {line.line} already")
            self._insert_line(conn, po, line, client)
            view = self._line(conn, po, line.line)
            assert view is not None
            self._record(
                "po.line.added",
                f"{po}/{line.line}",
                actor,
                before=None,
                after=view.model_dump(mode="json", by_alias=True),
            )
        return view

    def change_line(self, po: str, line: LineIn, *, actor: str) -> LineView:
        """Change a line (and its flowdowns); its review re-opens, and a release stands until the next."""
        with self._changing() as conn:
            client = self._po_client(conn, po)
            before = self._line(conn, po, line.line, lock=True)
            if before is None:
                raise Refused("line", f"PO {po} has no line {line.line}")
            conn.execute(
                "UPDATE clients.po_lines SET part = %s, part_revision = %s, quantity = %s, unit = %s, "
                "serials = %s, lot = %s, unit_price = %s, due_date = %s, version = version + 1 "
                "WHERE po = %s AND line = %s",
                (
                    line.part,
                    line.part_revision,
                    line.quantity,
                    line.unit.value,
                    list(line.serials),
                    line.lot,
                    line.unit_price,
                    line.due_date,
                    po,
                    line.line,
                ),
            )
            conn.execute("DELETE FROM clients.flowdowns WHERE po = %s AND line = %s", (po, line.line))
            self._insert_flowdowns(conn, po, line, client)
            after = self._line(conn, po, line.line)
            assert after is not None
            self._record(
                "po.line.changed",
                f"{po}/{line.line}",
                actor,
                before=before.model_dump(mode="json", by_alias=True),
                after=after.model_dump(mode="json", by_alias=True),
                reviewReopened=before.reviewed,
            )
        return after

    def _po_client(self, conn: psycopg.Connection[DictRow], po: str) -> ClientView:
        row = conn.execute("SELECT client FROM clients.purchase_orders WHERE po = %s", (po,)).fetchone()
        if row is None:
            raise Refused("po", f"no PO {po}")
        client = self._client(conn, row["client"])
        assert client is not None
        return client

    def _insert_line(
        self, conn: psycopg.Connection[DictRow], po: str, line: LineIn, client: ClientView
    ) -> None:
        conn.execute(
            "INSERT INTO clients.po_lines (po, line, part, part_revision, quantity, unit, serials, lot, "
            "unit_price, due_date) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                po,
                line.line,
                line.part,
                line.part_revision,
                line.quantity,
                line.unit.value,
                list(line.serials),
                line.lot,
                line.unit_price,
                line.due_date,
            ),
        )
        self._insert_flowdowns(conn, po, line, client)

    def _insert_flowdowns(
        self, conn: psycopg.Connection[DictRow], po: str, line: LineIn, client: ClientView
    ) -> None:
        for position, flowdown in enumerate(line.flowdowns):
            if client.nadcap_required and not flowdown.nadcap_required:
                raise Refused(
                    f"flowdowns[{position}].nadcap_required",
                    f"client {client.code} requires Nadcap-accredited processing on every flowdown",
                )
            conn.execute(
                "INSERT INTO clients.flowdowns (po, line, position, spec, spec_revision, class, "
                "acceptance_criteria, nadcap_required, retention) VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    po,
                    line.line,
                    position,
                    flowdown.spec,
                    flowdown.spec_revision,
                    flowdown.class_,
                    flowdown.acceptance_criteria,
                    flowdown.nadcap_required,
                    flowdown.retention or client.retention,
                ),
            )

    # -- contract review ----------------------------------------------------------------------

    def review(self, po: str, line: str, review: ReviewIn, *, actor: str) -> LineView:
        """Record who reviewed the line as it is now, when, the outcome and notes (AS9100D 8.2.3)."""
        at = self.clock()
        with self._changing() as conn:
            before = self._line(conn, po, line, lock=True)
            if before is None:
                raise Refused("line", f"PO {po} has no line {line}")
            conn.execute(
                "INSERT INTO clients.contract_reviews (po, line, "
                "line_version, reviewer, reviewed_at, outcome, notes) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (po, line, before.version, actor, at, review.outcome.value, review.notes),
            )
            conn.execute(
                "UPDATE clients.po_lines SET reviewed_version = %s WHERE po = %s AND line = %s",
                (before.version if review.outcome is Outcome.ACCEPTED else None, po, line),
            )
            after = self._line(conn, po, line)
            assert after is not None
            self._record(
                "po.line.reviewed",
                f"{po}/{line}",
                actor,
                lineVersion=before.version,
                outcome=review.outcome.value,
                notes=review.notes,
                reviewedAt=at.isoformat(),
                before={"reviewed": before.reviewed},
                after={"reviewed": after.reviewed},
            )
        return after

    def mark_released(self, po: str, line: str, *, version: int, at: datetime) -> None:
        """HandoffCentral released ``version`` of the line (its own ledger entry says so)."""
        with self._changing() as conn:
            conn.execute(
                "UPDATE clients.po_lines SET released_version = %s, "
                "released_at = %s WHERE po = %s AND line = %s",
                (version, at, po, line),
            )

    # -- reading --------------------------------------------------------------------------------

    def line(self, po: str, line: str) -> LineView | None:
        with self.pool.connection() as conn:
            return self._line(conn, po, line)

    def po(self, po: str) -> PurchaseOrderView | None:
        with self.pool.connection() as conn:
            return self._po(conn, po)

    def _line(
        self, conn: psycopg.Connection[DictRow], po: str, line: str, *, lock: bool = False
    ) -> LineView | None:
        row = conn.execute(
            f"SELECT {_LINE_COLUMNS} FROM clients.po_lines l JOIN clients.purchase_orders o USING (po) "
            "WHERE l.po = %s AND l.line = %s" + (" FOR UPDATE OF l" if lock else ""),
            (po, line),
        ).fetchone()
        if row is None:
            return None
        return self._with_details(conn, [row])[0]

    def _with_details(self, conn: psycopg.Connection[DictRow], rows: Sequence[DictRow]) -> list[LineView]:
        keys = [(row["po"], row["line"]) for row in rows]
        flowdowns: dict[tuple[str, str], list[FlowdownView]] = {}
        reviews: dict[tuple[str, str], list[ReviewView]] = {}
        if keys:
            pos, lines = [k[0] for k in keys], [k[1] for k in keys]
            for found in conn.execute(
                "SELECT f.* FROM clients.flowdowns f JOIN unnest(%s::text[], %s::text[]) AS k(po, line) "
                "USING (po, line) ORDER BY f.po, f.line, f.position",
                (pos, lines),
            ):
                flowdowns.setdefault((found["po"], found["line"]), []).append(
                    FlowdownView.model_validate({**found, "class": found["class"]})
                )
            for found in conn.execute(
                "SELECT r.* FROM clients.contract_reviews r JOIN "
                "unnest(%s::text[], %s::text[]) AS k(po, line) "
                "USING (po, line) ORDER BY r.id",
                (pos, lines),
            ):
                reviews.setdefault((found["po"], found["line"]), []).append(ReviewView.model_validate(found))
        return [
            LineView.model_validate(
                {
                    **row,
                    "flowdowns": flowdowns.get((row["po"], row["line"]), ()),
                    "reviews": reviews.get((row["po"], row["line"]), ()),
                }
            )
            for row in rows
        ]

    def _po(self, conn: psycopg.Connection[DictRow], po: str) -> PurchaseOrderView | None:
        order = conn.execute("SELECT * FROM clients.purchase_orders WHERE po = %s", (po,)).fetchone()
        if order is None:
            return None
        rows = conn.execute(
            f"SELECT {_LINE_COLUMNS} FROM clients.po_lines l JOIN clients.purchase_orders o USING (po) "
            "WHERE l.po = %s ORDER BY l.line",
            (po,),
        ).fetchall()
        return PurchaseOrderView(
            po=order["po"],
            client=order["client"],
            received_on=order["received_on"],
            lines=tuple(self._with_details(conn, rows)),
        )

    def search(self, text: str = "", *, client: str | None = None, limit: int = 50) -> list[LineView]:
        """Lines whose PO or part number starts with ``text``, soonest due first (no flowdowns, reviews).

        Each prefix is looked up through its own index and only the first ``limit`` of each are
        joined and ordered: one OR over both columns made the planner walk the due-date index past
        every line when a prefix is rare.
        """
        client_only = "AND o.client = %(client)s" if client else ""
        order = "ORDER BY l.due_date, l.po, l.line LIMIT %(limit)s"
        joined = "FROM clients.po_lines l JOIN clients.purchase_orders o USING (po)"
        if text:
            query = (
                f"SELECT * FROM ((SELECT {_LINE_COLUMNS} {joined} "
                f"WHERE l.po LIKE %(prefix)s {client_only} {order}) "
                f"UNION (SELECT {_LINE_COLUMNS} {joined} "
                f"WHERE l.part LIKE %(prefix)s {client_only} {order})) l "
                "ORDER BY due_date, po, line LIMIT %(limit)s"
            )
        else:
            query = f"SELECT {_LINE_COLUMNS} {joined} WHERE true {client_only} {order}"
        with self.pool.connection() as conn:
            rows = conn.execute(
                query, {"prefix": _like_prefix(text), "client": client, "limit": limit}
            ).fetchall()
        return [LineView.model_validate({**row, "flowdowns": ()}) for row in rows]
