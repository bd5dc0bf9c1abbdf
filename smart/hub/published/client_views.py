"""The Floor's side of what a client may read: the client, its POs, C of Cs, proof bundles and invoices.

The client API runs on the Business hub, which cannot read the Floor's
tables; so the Floor works out, from its own indexes of the ledger, what
each client may see and publishes it one way (``published.<kind>.<key>``):

- ``client`` (key: the client's code): the client's code and company name,
  nothing else of ClientManager's (no retention rule, no quality clause, no
  person), published when the client is added or changed, so Business
  knows every client of the shop, a key can be issued before its first PO,
  and a client unknown to the shop is refused;
- ``client-po`` (key: the PO): the PO with each line's status, the furthest
  step the ledger's indexes show (entered, reviewed, released, parts
  received, shipped, invoiced), never what someone typed;
- ``coc`` (key ``PO/line``): the C of C AuditCentral printed at shipping,
  its PDF exactly as stored (so its QR code names the same proof bundle);
- ``proof-bundle`` (key ``PO/line``): the line's C of C and floor entries,
  each with a bundle that proves it offline (``smart verify``);
- ``invoice`` (key: the document's number): Pay's invoices and credit notes,
  with their PDF.

Every body names its client (the Business hub filters by it) and no person:
no login, no badge, no signer in the fields (the C of C as printed and the
ledger entries in a bundle are the documents themselves, unchanged). A
pass works out every view, compares a digest of what each says with the
digest last published (table ``business_views``) and publishes only what
changed; the heavy parts (PDFs, bundles) are made only then. A pass first
asks one cheap statement whether anything the views come from moved, and
stops there when nothing did.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
from nats.js import JetStreamContext
from psycopg import sql
from psycopg.rows import dict_row

from smart.hub.pay import documents
from smart.hub.pay import store as pay_store
from smart.hub.published import feed
from smart.keys import VerifyingKey
from smart.ledger import hub_store
from smart.ledger.hub_store import HubLog

log = structlog.get_logger("smart.hub.published.client_views")

TABLE = "business_views"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS business_views (
    kind text NOT NULL,
    key text NOT NULL,
    digest text NOT NULL,
    feed_seq bigint NOT NULL,
    PRIMARY KEY (kind, key)
);
"""

#: What every view is worked out from, in one cheap statement: while none of it moved (the hub log's
#: signed size, ClientManager's clients, POs, lines and their review and release, Pay's documents, the
#: printed C of Cs, the indexes of the log the views read), a pass has nothing new to find and works
#: nothing out. A client's every change adds one to its ``version``, so a renamed client moves it.
_MOVED = (
    "SELECT (SELECT coalesce(max(size), 0) FROM ledger_checkpoints),"
    " (SELECT count(*) || ':' || coalesce(sum(version), 0) FROM clients.clients),"
    " (SELECT count(*) FROM clients.purchase_orders),"
    " (SELECT count(*) || ':' || coalesce(sum(version), 0) || ':' || coalesce(sum(reviewed_version), 0)"
    " || ':' || coalesce(sum(released_version), 0) FROM clients.po_lines),"
    " (SELECT count(*) FROM pay.documents), (SELECT count(*) FROM audit.certificates),"
    # the floor's and Pay's indexes of the log follow it on their own: counted as well, not assumed
    " (SELECT count(*) FROM handoff.floor_events), (SELECT count(*) FROM pay.certificates)"
)

#: Room kept for the envelope (kind, key, time) around a body on the feed.
_ENVELOPE = 1024


def migrate(owner_url: str, *, app_role: str = hub_store.APP_ROLE) -> None:
    """The digests of what was published, as the owner; the Floor's login may read and change them."""
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext('smart.hub.published.business_views'))")
        try:
            conn.execute(_SCHEMA.encode())
            name, role = sql.Identifier(TABLE), sql.Identifier(app_role)
            conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM PUBLIC").format(name))
            conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE ON TABLE {} TO {}").format(name, role))
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('smart.hub.published.business_views'))")


def status(row: dict[str, Any]) -> str:
    """The line's furthest step, from the ledger's indexes (never from what someone typed)."""
    if row["invoice"]:
        return "invoiced"
    if row["shipped_at"]:
        return "shipped"
    if row["received_at"]:
        return "parts received"
    if row["released_version"]:
        return "released"
    return "reviewed" if row["reviewed"] else "entered"


_LINES = (
    "SELECT o.po, o.client, o.received_on, l.line, l.part, l.part_revision, l.quantity, l.unit, l.due_date, "
    "(l.reviewed_version IS NOT DISTINCT FROM l.version) AS reviewed, l.released_version, "
    "(SELECT min(e.at) FROM handoff.floor_events e WHERE e.po = l.po AND e.line = l.line "
    "AND e.verb = 'receive') AS received_at, "
    "(SELECT min(e.at) FROM handoff.floor_events e WHERE e.po = l.po AND e.line = l.line "
    "AND e.verb = 'ship') AS shipped_at, "
    "EXISTS (SELECT 1 FROM pay.certificates c WHERE (c.po = l.po AND c.line = l.line) OR (c.po IS NULL "
    "AND EXISTS (SELECT 1 FROM handoff.floor_events e WHERE e.verb = 'ship' AND e.po = l.po "
    "AND e.line = l.line AND e.station = c.station AND e.job = c.job))) AS certified, "
    "(SELECT min(d.number) FROM pay.document_lines d WHERE d.po = l.po AND d.line = l.line "
    "AND d.number LIKE 'INV-%%') AS invoice "
    "FROM clients.purchase_orders o JOIN clients.po_lines l USING (po) ORDER BY o.po, l.line"
)


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True, slots=True)
class View:
    """One record to publish: its kind and key, what its digest is taken over, and how to make its body."""

    kind: str
    key: str
    says: Any
    body: Callable[[], dict[str, Any]]

    def digest(self) -> str:
        said = json.dumps(self.says, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(said.encode()).hexdigest()


def clients(conn: psycopg.Connection[Any]) -> list[View]:
    """Each of the shop's clients by code and company name (``client``), whether or not it has a PO yet.

    Only these two columns are read: the rest of ClientManager's row (retention, clauses, who added
    it) is the shop's, not what Business needs to know a client by.
    """
    rows = conn.execute("SELECT code, name FROM clients.clients ORDER BY code").fetchall()
    views = []
    for code, name in rows:
        body = {"client": str(code), "name": str(name)}
        views.append(View("client", str(code), body, functools.partial(dict, body)))
    return views


def client_pos(conn: psycopg.Connection[Any]) -> list[View]:
    """Each PO with its lines and their status (``client-po``)."""
    orders: dict[str, dict[str, Any]] = {}
    for row in conn.cursor(row_factory=dict_row).execute(_LINES).fetchall():
        order = orders.setdefault(
            row["po"],
            {"po": row["po"], "client": row["client"], "received_on": _iso(row["received_on"]), "lines": []},
        )
        order["lines"].append(
            {
                "line": row["line"],
                "part": row["part"],
                "part_revision": row["part_revision"],
                "quantity": row["quantity"],
                "unit": row["unit"],
                "due_date": _iso(row["due_date"]),
                "status": status(row),
                "received_at": _iso(row["received_at"]),
                "shipped_at": _iso(row["shipped_at"]),
                "certified": row["certified"],
                "invoice": row["invoice"],
            }
        )
    return [View("client-po", po, order, functools.partial(dict, order)) for po, order in orders.items()]


def cocs(url: str) -> list[View]:
    """The latest C of C printed for each PO line, its PDF as stored (``coc``)."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        rows = conn.execute(
            "SELECT DISTINCT ON (po, line) ledger_idx, station, job, po, line, client, qr_text, proof_size,"
            " pdf_sha256, printed_at FROM audit.certificates WHERE client IS NOT NULL"
            " ORDER BY po, line, ledger_idx DESC"
        ).fetchall()
    views = []
    for row in rows:
        says = {k: _iso(v) if k == "printed_at" else v for k, v in row.items()}

        def body(says: dict[str, Any] = says) -> dict[str, Any]:
            with psycopg.connect(url, autocommit=True) as conn:
                found = conn.execute(
                    "SELECT pdf FROM audit.certificates WHERE ledger_idx = %s", (says["ledger_idx"],)
                ).fetchone()
            assert found is not None  # stored once, never deleted
            return {**says, "pdf": base64.b64encode(bytes(found[0])).decode()}

        views.append(View("coc", f"{row['po']}/{row['line']}", says, body))
    return views


def proofs(url: str, conn: psycopg.Connection[Any], log_key: VerifyingKey) -> list[View]:
    """Each PO line's C of C and floor entries, each with its proof bundle (``proof-bundle``)."""
    lines = conn.execute(
        "SELECT DISTINCT e.po, e.line, o.client FROM handoff.floor_events e"
        " JOIN clients.purchase_orders o ON o.po = e.po ORDER BY e.po, e.line"
    ).fetchall()
    views = []
    for po, line, client in lines:
        marks = [("coc", c.ledger_idx) for c in pay_store.certificates(conn, po, line)]
        marks += [
            (str(verb), int(idx))
            for verb, idx in conn.execute(
                "SELECT verb, ledger_idx FROM handoff.floor_events WHERE po = %s AND line = %s "
                "ORDER BY ledger_idx",
                (po, line),
            ).fetchall()
        ]
        says = {"po": po, "line": line, "client": client, "marks": marks}

        def body(says: dict[str, Any] = says) -> dict[str, Any]:
            marks = says["marks"]
            with HubLog.connect(url) as hub_log:  # all against one checkpoint, read in one go
                bundles = hub_log.proof_bundles([idx for _, idx in marks], log_key=log_key)
            return {
                "po": says["po"],
                "line": says["line"],
                "client": says["client"],
                "proofs": [
                    {"what": what, "index": idx, "bundle": base64.b64encode(b.to_bytes()).decode()}
                    for (what, idx), b in zip(marks, bundles, strict=True)
                ],
            }

        views.append(View("proof-bundle", f"{po}/{line}", says, body))
    return views


def invoices(pay: pay_store.Pay, url: str) -> list[View]:
    """Pay's invoices and credit notes, with their PDF, without who issued or signed (``invoice``)."""
    views = []
    for held in pay.documents():
        says = {k: v for k, v in held.to_json().items() if k != "issuedBy"}

        def body(held: pay_store.Document = held, says: dict[str, Any] = says) -> dict[str, Any]:
            with psycopg.connect(url, autocommit=True) as conn:
                certificates = {
                    c.ledger_idx: dataclasses.replace(c, signed_by="")
                    for ln in held.lines
                    for c in pay_store.certificates(conn, held.po, ln.line)
                }
            pdf = documents.document_pdf(dataclasses.replace(held, issued_by=""), certificates)
            return {**says, "pdf": base64.b64encode(pdf).decode()}

        views.append(View("invoice", held.number, says, body))
    return views


class ClientViews:
    """The Floor's publisher of the client views: one pass works out all, publishes what changed."""

    def __init__(
        self, url: str, *, pay: pay_store.Pay, log_key: VerifyingKey, max_payload: int = 1024 * 1024
    ) -> None:
        self.url = url
        self.pay = pay
        self.log_key = log_key
        self.max_payload = max_payload
        #: What :data:`_MOVED` said at the last pass that published everything it found.
        self._seen: tuple[Any, ...] | None = None

    def moved(self) -> tuple[Any, ...]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute(_MOVED).fetchone()
        return tuple(row) if row else ()

    def views(self) -> list[View]:
        with HubLog.connect(self.url) as hub_log:
            # the clients first: Business learns of a client no later than of its first PO
            found = clients(hub_log.conn)
            found += client_pos(hub_log.conn)
            found += proofs(self.url, hub_log.conn, self.log_key)
        return [*found, *cocs(self.url), *invoices(self.pay, self.url)]

    def published(self) -> dict[tuple[str, str], str]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute(f"SELECT kind, key, digest FROM {TABLE}").fetchall()
        return {(kind, key): digest for kind, key, digest in rows}

    def changed(self) -> list[tuple[View, str]]:
        """The views whose digest differs from the one last published, with their new digest."""
        held = self.published()
        found = []
        for view in self.views():
            digest = view.digest()
            if held.get((view.kind, view.key)) != digest:
                found.append((view, digest))
        return found

    def noted(self, view: View, digest: str, seq: int) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(
                f"INSERT INTO {TABLE} (kind, key, digest, feed_seq) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (kind, key) DO UPDATE SET digest = EXCLUDED.digest,"
                " feed_seq = EXCLUDED.feed_seq",
                (view.kind, view.key, digest, seq),
            )

    async def publish_once(self, js: JetStreamContext) -> list[tuple[str, str]]:
        """Publish every view that changed since its last publishing; the kind and key of each sent."""
        sent: list[tuple[str, str]] = []
        moved = await asyncio.to_thread(self.moved)
        if moved == self._seen:
            return sent
        complete = True
        for view, digest in await asyncio.to_thread(self.changed):
            try:
                body = await asyncio.to_thread(view.body)
            except Exception as err:  # e.g. no checkpoint covers a new entry yet: the next pass retries
                log.warning(
                    "published.view_not_ready",
                    kind=view.kind,
                    key=view.key,
                    error=f"{type(err).__name__}: {err}"[:300],
                )
                complete = False
                continue
            size = len(json.dumps(body, separators=(",", ":")))
            if size + _ENVELOPE > self.max_payload:
                # Noted as published so it is not rebuilt every pass; it goes out again when it changes.
                log.error(
                    "published.too_large",
                    kind=view.kind,
                    key=view.key,
                    bytes=size,
                    max_payload=self.max_payload,
                )
                await asyncio.to_thread(self.noted, view, digest, 0)
                continue
            seq = await feed.publish(js, kind=view.kind, key=view.key, body=body)
            await asyncio.to_thread(self.noted, view, digest, seq)
            sent.append((view.kind, view.key))
        if complete:  # a view left for later (or a failure raised above) keeps the next pass working
            self._seen = moved
        return sent

    async def follow(self, js: JetStreamContext, every_s: float = 2.0) -> None:
        while True:
            try:
                await self.publish_once(js)
            except Exception as err:  # the database or NATS away, a checkpoint not made yet: retried
                log.warning("published.client_views_failed", error=f"{type(err).__name__}: {err}"[:300])
            await asyncio.sleep(every_s)
