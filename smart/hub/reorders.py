"""The reorder board: consumables the stations say will run short, from their ``inventory.reorder`` entries.

A station's InventoryNode raises one ``inventory.reorder`` signal per
material when the stock it projects one lead time ahead falls below the
minimum, and ``inventory.reorder.cleared`` once it recovers (a lot
received). Both are ledger entries, so they reach the hub exactly once with
the rest of the station's log, even when raised while the hub was down.
This index keeps them as events (append-only, like the log), and a signal
is open while no clearing names it. Purchasing reads the open ones at
``/reorders`` (and ``/api/reorders``); nothing here orders anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission
from smart.hub import log_index
from smart.hub.vault.logins import Login
from smart.hub.web.auth import TEMPLATES, Guard
from smart.ledger import hub_store
from smart.ledger.entry import Entry

log = structlog.get_logger("smart.hub.reorders")

RAISED, CLEARED = "inventory.reorder", "inventory.reorder.cleared"
TABLE = "reorder_events"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reorder_events (
    ledger_idx bigint PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('raised', 'cleared')),
    station text NOT NULL,
    material text NOT NULL,
    node_seq bigint NOT NULL,
    entry_hash bytea NOT NULL,
    at timestamptz NOT NULL,
    signal_seq bigint,
    quantity double precision,
    unit text,
    projected double precision,
    min_stock double precision,
    message text
);
CREATE INDEX IF NOT EXISTS reorder_events_material ON reorder_events (station, material);
"""


def migrate(owner_url: str, *, app_role: str = hub_store.APP_ROLE) -> None:
    log_index.migrate_table(owner_url, schema=_SCHEMA, table=TABLE, app_role=app_role)


@dataclass(frozen=True, slots=True)
class Reorder:
    """One open signal: which station wants how much of what, why, and where it is in the log."""

    station: str
    material: str
    quantity: float | None
    unit: str | None
    projected: float | None
    min_stock: float | None
    message: str | None
    raised_at: datetime
    ledger_idx: int
    node_seq: int
    entry_hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "station": self.station,
            "material": self.material,
            "quantity": self.quantity,
            "unit": self.unit,
            "projected": self.projected,
            "minStock": self.min_stock,
            "message": self.message,
            "raisedAt": self.raised_at.isoformat(),
            "ledger": {"index": self.ledger_idx, "nodeSeq": self.node_seq, "entryHash": self.entry_hash},
        }


def open_reorders(conn: psycopg.Connection[Any], *, station: str | None = None) -> list[Reorder]:
    """Signals no clearing has named yet, oldest first (the longest waiting at the top)."""
    rows = conn.execute(
        "SELECT r.station, r.material, r.quantity, r.unit, r.projected, r.min_stock, r.message, r.at,"
        " r.ledger_idx, r.node_seq, r.entry_hash FROM reorder_events r"
        " WHERE r.kind = 'raised' AND (%(station)s::text IS NULL OR r.station = %(station)s)"
        " AND NOT EXISTS (SELECT 1 FROM reorder_events c WHERE c.kind = 'cleared'"
        " AND c.station = r.station AND c.material = r.material AND c.signal_seq = r.node_seq)"
        " ORDER BY r.at, r.ledger_idx",
        {"station": station},
    ).fetchall()
    return [
        Reorder(
            station=row[0],
            material=row[1],
            quantity=row[2],
            unit=row[3],
            projected=row[4],
            min_stock=row[5],
            message=row[6],
            raised_at=row[7],
            ledger_idx=int(row[8]),
            node_seq=int(row[9]),
            entry_hash=bytes(row[10]).hex(),
        )
        for row in rows
    ]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class ReorderBoard(log_index.LogIndex):
    """Keeps every raised and cleared signal the hub log holds, once each."""

    kinds = (RAISED, CLEARED)
    table = TABLE

    def take(self, idx: int, entry: Entry) -> int:
        data = entry.data
        material = data.get("material") or entry.subject
        if not isinstance(material, str) or not material:
            log.error("reorders.entry_without_material", station=entry.node, index=idx, entry=entry.node_seq)
            return 0
        raised = entry.kind == RAISED
        signal = data.get("signal")
        added = self.conn.execute(
            "INSERT INTO reorder_events (ledger_idx, kind, station, material, node_seq, entry_hash, at,"
            " signal_seq, quantity, unit, projected, min_stock, message)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (
                idx,
                "raised" if raised else "cleared",
                entry.node,  # the station is the node that signed the entry
                material,
                entry.node_seq,
                entry.hash,
                entry.ts,
                None if raised else (signal if isinstance(signal, int) else None),
                _number(data.get("quantity")),
                data.get("unit") if isinstance(data.get("unit"), str) else None,
                _number(data.get("projected")),
                _number(data.get("minStock")),
                data.get("message") if isinstance(data.get("message"), str) else None,
            ),
        ).rowcount
        if added:
            log.info(
                "reorders.indexed",
                station=entry.node,
                material=material,
                change="raised" if raised else "cleared",
                entry=entry.node_seq,
                contract=entry.contract,
            )
        return int(added)


def router(url: str, guard: Guard) -> APIRouter:
    """``/reorders`` and ``/api/reorders``: the open signals, behind ``records.read``."""
    routes = APIRouter()
    read_login = guard.requires(Permission.RECORDS_READ)

    def _open(station: str | None) -> list[dict[str, Any]]:
        with psycopg.connect(url, autocommit=True) as conn:
            return [r.to_json() for r in open_reorders(conn, station=station)]

    @routes.get("/api/reorders", dependencies=[Depends(read_login)])
    async def reorders_api(station: str | None = None) -> list[dict[str, Any]]:
        """Open reorder signals, oldest first."""
        return await run_in_threadpool(_open, station or None)

    @routes.get("/reorders", response_class=HTMLResponse, include_in_schema=False)
    async def reorders_page(
        request: Request, login: Login = Depends(read_login), station: str | None = None
    ) -> HTMLResponse:
        found = await run_in_threadpool(_open, station or None)
        return TEMPLATES.TemplateResponse(
            request,
            "access/reorders.html",
            {"page": "Consumables to reorder", "login": login, "reorders": found, "station": station or ""},
        )

    return routes
