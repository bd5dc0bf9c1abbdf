"""The Floor's side of the feed: each job a station handed off becomes a PO-status record for Business.

It follows the hub log (``job.handoff``, as HandoffCentral does) and
publishes, per station and job, what the shop's client may know: PO, line,
part, serials, the station and its process, when the job was released and
handed off, and the entry's place in the log (so a proof can be asked for).
Never who did it: the person stays on the Vault and the Floor. The cursor
table says which log entries were published; a crash between publishing and
noting it publishes the same record again, which Business keeps once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import structlog
from nats.js import JetStreamContext

from smart.hub import log_index
from smart.hub.handoff_central import HANDOFF_KIND
from smart.hub.published import feed
from smart.ledger import hub_store
from smart.ledger.entry import Entry

log = structlog.get_logger("smart.hub.published.floor")

TABLE = "business_published"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS business_published (
    ledger_idx bigint PRIMARY KEY,
    kind text NOT NULL,
    key text NOT NULL
);
"""


def migrate(owner_url: str, *, app_role: str = hub_store.APP_ROLE) -> None:
    log_index.migrate_table(owner_url, schema=_SCHEMA, table=TABLE, app_role=app_role)


def po_status(entry: Entry) -> tuple[str, dict[str, Any]] | None:
    """The client's view of one hand-off: its key and body (``None`` if the entry names no PO line)."""
    data = entry.data if isinstance(entry.data, dict) else {}
    po, line, job = data.get("po"), data.get("line"), data.get("job")
    if not po or not line or not job:
        return None
    body = {
        "po": str(po),
        "line": str(line),
        "job": str(job),
        "part": data.get("part"),
        "serials": [str(s) for s in data.get("serials") or []],
        "station": entry.node,
        "process": data.get("process"),
        "client": data.get("client"),
        "due": data.get("due"),
        "accepted": data.get("accepted"),
        "status": "handed-off",
        "released_at": data.get("released_at"),
        "handed_off_at": entry.ts,
        "ledger_index": None,
    }
    return f"{po}-{line}-{job}-{entry.node}", body


class BusinessPublisher(log_index.LogIndex):
    """Follows the hub log; :meth:`take` collects, :meth:`run` publishes and then notes each one."""

    kinds = (HANDOFF_KIND,)
    table = TABLE

    def __init__(self, conn: psycopg.Connection[Any], *, url: str | None = None) -> None:
        super().__init__(conn, url=url)
        self.pending: list[tuple[int, str, dict[str, Any]]] = []

    def take(self, idx: int, entry: Entry) -> int:
        found = po_status(entry)
        if found is None:
            return 0
        key, body = found
        self.pending.append((idx, key, {**body, "ledger_index": idx}))
        return 1

    def noted(self, idx: int, key: str) -> None:
        self.conn.execute(
            "INSERT INTO business_published (ledger_idx, kind, key) VALUES (%s, 'po-status', %s)"
            " ON CONFLICT DO NOTHING",
            (idx, key),
        )

    async def publish_pending(self, js: JetStreamContext) -> int:
        sent = 0
        while self.pending:
            idx, key, body = self.pending[0]
            await feed.publish(js, kind="po-status", key=key, body=body)
            await asyncio.to_thread(self.noted, idx, key)
            self.pending.pop(0)
            sent += 1
        return sent

    async def follow(self, js: JetStreamContext, every_s: float = 2.0) -> None:
        while True:
            try:
                if not self.pending:
                    await asyncio.to_thread(self.index_once)
                await self.publish_pending(js)
            except Exception as err:  # the database or NATS away: the next pass retries
                log.warning("published.floor_pass_failed", error=f"{type(err).__name__}: {err}"[:300])
                self.pending.clear()
                self._next = None
            await asyncio.sleep(every_s)
