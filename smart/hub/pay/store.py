"""Pay's store: invoices only for shipped, certified PO lines, credit notes for returns, each on the ledger.

A line may be invoiced when the stations' own signed entries say it left
the shop with its certificate of conformance: an allowed ``ship`` decision
for the line (HandoffCentral's floor events) of at least the line's
quantity, and the C of C the shipping station's quality manager signed on
that job (:class:`CertificateIndex`, from ``record.job`` entries carrying
``coc_signed_by``; a receiving station's job record need not name its PO
line, the shipment of the same job at the same station does). Price and
quantity are the PO line's, never typed at Pay; the invoice names the
certificate it was issued against. A line not shipped, shipped short, or
without its C of C is refused naming the line, and nothing is written.
Each invoice and credit note is one transaction with one entry on the ``pay`` ledger node (``invoice.issued``,
``credit_note.issued``), which is also how Projects learns a PO is invoiced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import structlog
from psycopg.conninfo import make_conninfo
from psycopg.rows import DictRow, tuple_row

from smart.hub import log_index, migrations
from smart.hub.clients.store import Refused
from smart.hub.service_log import ServiceLedger
from smart.hub.service_store import ServiceStore, utc_now
from smart.ledger import hub_store
from smart.ledger.entry import Entry

log = structlog.get_logger("smart.hub.pay")

SCHEMA = "pay"
MIGRATIONS = Path(__file__).with_name("migrations")
#: Issued documents are never changed or deleted: a mistake is corrected by a credit note.
GRANTS = {
    "certificates": "SELECT, INSERT",
    "documents": "SELECT, INSERT",
    "document_lines": "SELECT, INSERT",
}
INVOICE_KIND = "invoice.issued"
CREDIT_NOTE_KIND = "credit_note.issued"
CENTS = Decimal("0.01")


def migrate(owner_url: str, *, app_role: str = hub_store.APP_ROLE) -> list[int]:
    """Bring the ``pay`` schema up to date as the owner; the app role gets :data:`GRANTS` only."""
    return migrations.apply(owner_url, schema=SCHEMA, directory=MIGRATIONS, grants=GRANTS, app_role=app_role)


@dataclass(frozen=True, slots=True)
class Certificate:
    """A C of C as the shipping station signed it, and where its entry is in the hub log."""

    ledger_idx: int
    station: str
    job: str
    po: str
    line: str
    part: str | None
    serials: tuple[str, ...]
    signed_by: str
    at: datetime
    entry_hash: bytes


@dataclass(frozen=True, slots=True)
class DocumentLine:
    line: str
    part: str
    quantity: int
    unit_price: Decimal
    amount: Decimal
    certificate: int


@dataclass(frozen=True, slots=True)
class Document:
    """An invoice or a credit note (``credits`` names the invoice a credit note is against)."""

    number: str
    kind: str
    client: str
    po: str
    credits: str | None
    reason: str
    total: Decimal
    issued_by: str
    issued_at: datetime
    lines: tuple[DocumentLine, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "kind": self.kind,
            "client": self.client,
            "po": self.po,
            "credits": self.credits,
            "reason": self.reason,
            "total": str(self.total),
            "issuedBy": self.issued_by,
            "issuedAt": self.issued_at.isoformat(),
            "lines": [
                {
                    "line": ln.line,
                    "part": ln.part,
                    "quantity": ln.quantity,
                    "unitPrice": str(ln.unit_price),
                    "amount": str(ln.amount),
                    "certificate": ln.certificate,
                }
                for ln in self.lines
            ],
        }


def certificates(conn: psycopg.Connection[Any], po: str, line: str) -> list[Certificate]:
    """The line's signed C of Cs, the latest of each job: named for it, or on a job shipped for it."""
    rows = (
        conn.cursor(row_factory=tuple_row)
        .execute(
            "SELECT DISTINCT ON (c.station, c.job) c.ledger_idx, c.station, c.job, coalesce(c.po, %s), "
            "coalesce(c.line, %s), c.part, "
            "c.serials, c.signed_by, c.at, c.entry_hash FROM pay.certificates c "
            "WHERE (c.po = %s AND c.line = %s) OR (c.po IS NULL AND EXISTS (SELECT 1 "
            "FROM handoff.floor_events e WHERE e.verb = 'ship' AND e.po = %s AND e.line = %s "
            "AND e.station = c.station AND e.job = c.job)) "
            "ORDER BY c.station, c.job, c.ledger_idx DESC",
            (po, line, po, line, po, line),
        )
        .fetchall()
    )
    return sorted((_certificate(row) for row in rows), key=lambda c: c.ledger_idx)


def _certificate(row: tuple[Any, ...]) -> Certificate:
    idx, station, job, po, line, part, serials, signed_by, at, entry_hash = row
    return Certificate(
        int(idx), station, job, po, line, part, tuple(serials or ()), signed_by, at, bytes(entry_hash)
    )


def shipped_certificate(conn: psycopg.Connection[Any], po: str, line: str, quantity: int) -> Certificate:
    """The C of C the line shipped under, or :class:`Refused` saying what the floor has not done."""
    ships = (
        conn.cursor(row_factory=tuple_row)
        .execute(
            "SELECT station, job, quantity FROM handoff.floor_events "
            "WHERE po = %s AND line = %s AND verb = 'ship'",
            (po, line),
        )
        .fetchall()
    )
    if not ships:
        raise Refused("lines", f"PO {po} line {line} has not shipped: no station recorded its shipment")
    counted = [row[2] for row in ships if row[2] is not None]
    if counted and sum(counted) < quantity:
        raise Refused("lines", f"PO {po} line {line} shipped {sum(counted)} of {quantity}")
    shipped_jobs = {(row[0], row[1]) for row in ships}
    signed = [c for c in certificates(conn, po, line) if (c.station, c.job) in shipped_jobs]
    if not signed:
        raise Refused(
            "lines",
            f"PO {po} line {line} shipped without a signed certificate of conformance on the ledger",
        )
    return signed[-1]


class Pay(ServiceStore):
    """Invoices and credit notes on app-role connections, each recorded on the ``pay`` node."""

    log_name = "pay"

    def __init__(
        self, url: str, *, ledger: ServiceLedger, clock: Callable[[], datetime] = utc_now, pool_size: int = 2
    ) -> None:
        super().__init__(url, ledger=ledger, clock=clock, pool_size=pool_size)

    def invoice(self, po: str, lines: Sequence[str], *, actor: str) -> Document:
        """Invoice ``lines`` of ``po`` at the PO's price and quantity; refused whole if one may not be."""
        if not lines:
            raise Refused("lines", "an invoice names at least one PO line")
        at = self.clock()
        with self._changing() as conn:
            order = conn.execute("SELECT client FROM clients.purchase_orders WHERE po = %s", (po,)).fetchone()
            if order is None:
                raise Refused("po", f"no PO {po}")
            billed: list[DocumentLine] = []
            for index, number in enumerate(dict.fromkeys(lines)):
                held = conn.execute(
                    "SELECT part, quantity, unit_price FROM clients.po_lines WHERE po = %s AND line = %s",
                    (po, number),
                ).fetchone()
                if held is None:
                    raise Refused(f"lines[{index}]", f"PO {po} has no line {number}")
                already = conn.execute(
                    "SELECT number FROM pay.document_lines "
                    "WHERE po = %s AND line = %s AND number LIKE 'INV-%%'",
                    (po, number),
                ).fetchone()
                if already is not None:
                    raise Refused(
                        f"lines[{index}]", f"PO {po} line {number} is invoiced already ({already['number']})"
                    )
                try:
                    certificate = shipped_certificate(conn, po, number, int(held["quantity"]))
                except Refused as err:
                    raise Refused(f"lines[{index}]", err.message) from err
                price = Decimal(held["unit_price"])
                billed.append(
                    DocumentLine(
                        line=number,
                        part=held["part"],
                        quantity=int(held["quantity"]),
                        unit_price=price,
                        amount=(price * int(held["quantity"])).quantize(CENTS),
                        certificate=certificate.ledger_idx,
                    )
                )
            return self._issue(conn, "invoice", order["client"], po, billed, actor=actor, at=at)

    def credit(
        self, invoice: str, returned: Sequence[tuple[str, int]], *, reason: str, actor: str
    ) -> Document:
        """A credit note for parts returned against ``invoice``: (line, quantity) each, at its price."""
        if not reason.strip():
            raise Refused("reason", "a credit note says why (the return, its RMA or NCR)")
        if not returned:
            raise Refused("lines", "a credit note names at least one returned line")
        at = self.clock()
        with self._changing() as conn:
            held = self._document(conn, invoice)
            if held is None or held.kind != "invoice":
                raise Refused("invoice", f"no invoice {invoice}")
            by_line = {ln.line: ln for ln in held.lines}
            credited: list[DocumentLine] = []
            for index, (number, quantity) in enumerate(returned):
                original = by_line.get(number)
                if original is None:
                    raise Refused(f"lines[{index}].line", f"invoice {invoice} has no line {number}")
                before = conn.execute(
                    "SELECT coalesce(sum(dl.quantity), 0) AS n FROM pay.document_lines dl "
                    "JOIN pay.documents d USING (number) WHERE d.credits = %s AND dl.line = %s",
                    (invoice, number),
                ).fetchone()
                left = original.quantity - int(before["n"] if before else 0)
                if quantity <= 0 or quantity > left:
                    raise Refused(
                        f"lines[{index}].quantity",
                        f"{quantity} cannot be credited on line {number}: {left} of {original.quantity} left",
                    )
                credited.append(
                    DocumentLine(
                        line=number,
                        part=original.part,
                        quantity=quantity,
                        unit_price=original.unit_price,
                        amount=-(original.unit_price * quantity).quantize(CENTS),
                        certificate=original.certificate,
                    )
                )
            return self._issue(
                conn,
                "credit_note",
                held.client,
                held.po,
                credited,
                actor=actor,
                at=at,
                credits=invoice,
                reason=reason,
            )

    def _issue(
        self,
        conn: psycopg.Connection[DictRow],
        kind: str,
        client: str,
        po: str,
        lines: list[DocumentLine],
        *,
        actor: str,
        at: datetime,
        credits: str | None = None,
        reason: str = "",
    ) -> Document:
        row = conn.execute("SELECT nextval('pay.document_numbers') AS n").fetchone()
        assert row is not None
        number = f"{'INV' if kind == 'invoice' else 'CN'}-{int(row['n']):06d}"
        total = sum((ln.amount for ln in lines), Decimal("0.00"))
        data = {
            "document": number,
            "kind": kind,
            "client": client,
            "po": po,
            "credits": credits,
            "reason": reason,
            "total": str(total),
            "issuedAt": at.isoformat(),
            "lines": [
                {
                    "line": ln.line,
                    "part": ln.part,
                    "quantity": ln.quantity,
                    "unitPrice": str(ln.unit_price),
                    "amount": str(ln.amount),
                    "certificate": ln.certificate,
                }
                for ln in lines
            ],
        }
        conn.execute(
            "INSERT INTO pay.documents (number, kind, client, po, credits, reason, total, issued_by, "
            "issued_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (number, kind, client, po, credits, reason, total, actor, at),
        )
        for ln in lines:
            conn.execute(
                "INSERT INTO pay.document_lines (number, po, line, part, quantity, unit_price, amount, "
                "certificate) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (number, po, ln.line, ln.part, ln.quantity, ln.unit_price, ln.amount, ln.certificate),
            )
        document = self._document(conn, number)
        assert document is not None
        # last, inside the transaction: if the entry cannot be written, no document exists either
        entry = self.ledger.append(
            kind=INVOICE_KIND if kind == "invoice" else CREDIT_NOTE_KIND,
            subject=number,
            data=data,
            actor=actor,
        )
        log.info("pay.issued", kind=kind, document=number, po=po, entry=entry.node_seq, actor=actor)
        return document

    def document(self, number: str) -> Document | None:
        with self.pool.connection() as conn:
            return self._document(conn, number)

    def documents(self, *, client: str | None = None, po: str | None = None) -> list[Document]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT number FROM pay.documents WHERE (%s::text IS NULL OR client = %s) "
                "AND (%s::text IS NULL OR po = %s) ORDER BY issued_at, number",
                (client, client, po, po),
            ).fetchall()
            found = [self._document(conn, row["number"]) for row in rows]
        return [d for d in found if d is not None]

    @staticmethod
    def _document(conn: psycopg.Connection[DictRow], number: str) -> Document | None:
        row = conn.execute("SELECT * FROM pay.documents WHERE number = %s", (number,)).fetchone()
        if row is None:
            return None
        lines = conn.execute(
            "SELECT * FROM pay.document_lines WHERE number = %s ORDER BY line", (number,)
        ).fetchall()
        return Document(
            number=row["number"],
            kind=row["kind"],
            client=row["client"],
            po=row["po"],
            credits=row["credits"],
            reason=row["reason"],
            total=Decimal(row["total"]),
            issued_by=row["issued_by"],
            issued_at=row["issued_at"],
            lines=tuple(
                DocumentLine(
                    line=ln["line"],
                    part=ln["part"],
                    quantity=int(ln["quantity"]),
                    unit_price=Decimal(ln["unit_price"]),
                    amount=Decimal(ln["amount"]),
                    certificate=int(ln["certificate"]),
                )
                for ln in lines
            ),
        )


class CertificateIndex(log_index.LogIndex):
    """The shipping stations' signed C of Cs: ``record.job`` entries whose job has ``coc_signed_by``."""

    kinds = ("record.job",)
    table = "certificates"

    @classmethod
    def connect(cls, url: str) -> CertificateIndex:
        scoped = make_conninfo(url, options=f"-c search_path={SCHEMA},public")
        return cls(psycopg.connect(scoped, autocommit=True), url=scoped)

    def take(self, idx: int, entry: Entry) -> int:
        value = entry.data.get("value")
        if not isinstance(value, dict):
            return 0
        signer, po, line = value.get("coc_signed_by"), value.get("po"), value.get("line")
        if not isinstance(signer, str):
            return 0  # a job record without a signed C of C
        po = po if isinstance(po, str) else None  # a receiving station's record: its shipment names the line
        line = line if isinstance(line, str) and po is not None else None
        serials = [s for s in value.get("serials") or () if isinstance(s, str)]
        inserted = self.conn.execute(
            "INSERT INTO certificates (ledger_idx, station, job, po, line, part, serials, signed_by, at, "
            "node_seq, entry_hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (
                idx,
                entry.node,
                str(value.get("id")),
                po,
                line,
                value.get("part") if isinstance(value.get("part"), str) else None,
                serials,
                signer,
                entry.ts,
                entry.node_seq,
                entry.hash,
            ),
        ).rowcount
        if inserted:
            log.info("pay.certificate", station=entry.node, job=value.get("id"), po=po, line=line, index=idx)
        return 1 if inserted else 0
