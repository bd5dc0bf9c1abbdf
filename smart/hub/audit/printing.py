"""The C of C printed at shipping: when a station's allowed shipment reaches the hub, AuditCentral prints it.

A shop hands the client its Certificate of Conformance with the parts; nobody
should have to remember to ask for it. The audit index marks every allowed
``ship`` decision (``shipment/<station>``); :class:`CertificatePrinter` takes
each one that has no certificate yet, builds the job's packet from the ledger,
proves the shipment entry against a cosigned checkpoint that already covers it
(until a witness has cosigned one, the shipment waits: a C of C whose code the
client could not check offline is not printed; so it does until ClientManager's
PO entry, which names the client, is on the log), renders the PDF with its QR
code (:mod:`.clientproof`, the same as ``smart audit coc``) and stores PDF and
bundle once, keyed by the shipment's entry. The client's people and an
auditor find it by PO line (``/audit/certificates``); asking ``/audit/coc.pdf``
for a shipped line returns the stored one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
import structlog

from smart.hub.audit import clientproof, index, packet
from smart.hub.audit.service import AuditCentral
from smart.ledger.hub_store import HubLog

if TYPE_CHECKING:
    from fastapi import APIRouter

    from smart.hub.services import HubServices
    from smart.hub.web.auth import Guard

log = structlog.get_logger()
#: The name printed at the head of the C of C when the settings give none.
SHOP = "SMART special-processing shop"


@dataclass(frozen=True, slots=True)
class Printed:
    """One stored C of C: which shipment entry, PO line, job, and where its proof stands."""

    ledger_idx: int
    station: str
    job: str
    po: str
    line: str
    client: str | None
    qr_text: str
    proof_size: int
    pdf_sha256: str
    printed_at: datetime


_COLUMNS = "ledger_idx, station, job, po, line, client, qr_text, proof_size, pdf_sha256, printed_at"


def _printed(row: Any) -> Printed:
    return Printed(*row)


def certificates(
    conn: psycopg.Connection[Any], *, po: str | None = None, line: str | None = None
) -> list[Printed]:
    """The printed certificates, newest first; of one PO (and line) when given."""
    where = ""
    args: tuple[str, ...] = ()
    if po is not None:
        where, args = "WHERE po = %s", (po,)
        if line is not None:
            where, args = "WHERE po = %s AND line = %s", (po, line)
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM audit.certificates {where} ORDER BY ledger_idx DESC LIMIT 500",
        args,
    ).fetchall()
    return [_printed(r) for r in rows]


def stored(conn: psycopg.Connection[Any], ledger_idx: int) -> tuple[Printed, bytes, bytes] | None:
    """A printed certificate with its PDF and bundle."""
    row = conn.execute(
        f"SELECT {_COLUMNS}, pdf, bundle FROM audit.certificates WHERE ledger_idx = %s",
        (ledger_idx,),
    ).fetchone()
    if row is None:
        return None
    return _printed(row[:10]), bytes(row[10]), bytes(row[11])


def stored_for_client(
    conn: psycopg.Connection[Any], *, client: str, po: str, line: str
) -> tuple[Printed, bytes] | None:
    """The latest C of C printed for ``client``'s PO line, with its PDF; ``None`` before one is printed.

    The client API serves these bytes as they were stored, so the client's copy
    carries the same QR code (and so names the same proof bundle) as the one
    packed with the parts. The client is the one ClientManager's PO entry named
    when the certificate was printed: another client's line is never found.
    """
    row = conn.execute(
        f"SELECT {_COLUMNS}, pdf FROM audit.certificates WHERE client = %s AND po = %s AND line = %s"
        " ORDER BY ledger_idx DESC LIMIT 1",
        (client, po, line),
    ).fetchone()
    if row is None:
        return None
    return _printed(row[:10]), bytes(row[10])


class CertificatePrinter:
    """Prints each shipment's C of C once, after a cosigned checkpoint covers the shipment entry."""

    def __init__(self, central: AuditCentral, *, shop: str, min_cosignatures: int = 1) -> None:
        self.central = central
        self.shop = shop
        self.min_cosignatures = max(1, min_cosignatures)

    def _pending(self) -> list[tuple[int, str, str]]:
        rows = self.central.conn.execute(
            "SELECT r.ledger_idx, r.node, r.job FROM audit.refs r"
            " LEFT JOIN audit.certificates c ON c.ledger_idx = r.ledger_idx"
            " WHERE r.ref LIKE 'shipment/%%' AND c.ledger_idx IS NULL ORDER BY r.ledger_idx"
        ).fetchall()
        return [(int(i), str(n), str(j)) for i, n, j in rows]

    def _covering(self, idx: int) -> int | None:
        """The latest checkpoint size that includes entry ``idx`` with enough cosignatures, if any."""
        row = self.central.conn.execute(
            "SELECT size FROM public.ledger_cosignatures WHERE size > %s GROUP BY size"
            " HAVING count(*) >= %s ORDER BY size DESC LIMIT 1",
            (idx, self.min_cosignatures),
        ).fetchone()
        return int(row[0]) if row else None

    def print_pending(self) -> list[Printed]:
        """One pass: every shipment on the log without its C of C, printed if it can be proven now."""
        self.central.refresh()
        done: list[Printed] = []
        for idx, station, job in self._pending():
            size = self._covering(idx)
            if size is None:
                log.info(
                    "audit.coc_waiting", station=station, entry=idx, job=job, why="no cosigned checkpoint yet"
                )
                continue
            try:
                made = self.central.packet(job=job)
            except packet.JobNotFound as err:
                log.warning("audit.coc_unprintable", station=station, entry=idx, job=job, error=str(err))
                continue
            hub = HubLog(self.central.conn, admin=self.central.admin)
            proof = clientproof.client_proof(hub, made, log_key=self.central.log_key, size=size)
            if proof.certificate.client is None:  # ClientManager's PO entry not gathered into the log yet
                log.info("audit.coc_waiting", station=station, entry=idx, job=job, why="the PO's entry")
                continue
            if proof.index != idx:  # the packet's first allowed shipment is another entry: print that one's
                log.warning("audit.coc_other_shipment", station=station, entry=idx, printed=proof.index)
            name = f"{made.slug}-shipment-proof.json"
            pdf = clientproof.certificate_pdf(proof, shop=self.shop, bundle_name=name)
            row = self.central.conn.execute(
                "INSERT INTO audit.certificates (ledger_idx, station, job, po, line, client, qr_text,"
                " proof_size, pdf, pdf_sha256, bundle) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                f" ON CONFLICT (ledger_idx) DO NOTHING RETURNING {_COLUMNS}",
                (
                    idx,
                    station,
                    job,
                    proof.certificate.po,
                    proof.certificate.line,
                    proof.certificate.client,
                    proof.qr_text,
                    size,
                    pdf,
                    hashlib.sha256(pdf).hexdigest(),
                    proof.bundle,
                ),
            ).fetchone()
            if row is None:  # another printer took it first
                continue
            printed = _printed(row)
            log.info(
                "audit.coc_printed",
                station=station,
                entry=idx,
                job=job,
                po=printed.po,
                line=printed.line,
                proof_size=size,
            )
            done.append(printed)
        return done

    async def run(self, every_s: float = 5.0) -> None:
        """Print as shipments arrive, until cancelled; a failing pass is logged and tried again.

        Cancelled during a pass, it ends only once that pass has: the pass goes on in its worker
        thread whatever happens to the task, on AuditCentral's connection, which whoever cancelled
        closes next, and a connection closed while another thread runs a query on it is not safe.
        """
        while True:
            passing = asyncio.ensure_future(asyncio.to_thread(self.print_pending))
            try:
                await asyncio.shield(passing)
            except asyncio.CancelledError:
                await asyncio.wait([passing])
                if not passing.cancelled():
                    passing.exception()  # retrieved: the stop is what is reported
                raise
            except (psycopg.Error, OSError, ValueError, LookupError) as err:
                log.warning("audit.coc_pass_failed", error=f"{type(err).__name__}: {err}"[:500])
            await asyncio.sleep(every_s)


class PrinterService:
    """The printer as one of the hub's services: its task, and its connection closed at stop."""

    def __init__(self, central: AuditCentral, printer: CertificatePrinter, every_s: float) -> None:
        self.central = central
        self.task = asyncio.create_task(printer.run(every_s), name="coc-printer")

    def routers(self, guard: Guard) -> list[APIRouter]:
        return []  # its pages are AuditCentral's (/audit/certificates)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await asyncio.to_thread(self.central.close)


async def start(hub: HubServices, *, every_s: float = 5.0, migrate: bool = True) -> PrinterService:
    """Start printing on the hub running AuditCentral (its table migrated first, as the owner, unless
    ``migrate=False``: migrated beforehand by :meth:`~smart.hub.services.HubServices.prepare`)."""
    from smart.hub.audit import web as audit_web

    if migrate:
        await asyncio.to_thread(index.migrate, hub.owner_database_url())
    keys = audit_web.audit_keys(hub.settings)
    central = await asyncio.to_thread(lambda: AuditCentral(hub.app_database_url(), **keys))
    return PrinterService(central, CertificatePrinter(central, shop=SHOP), every_s)
