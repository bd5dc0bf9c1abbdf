"""Indexes that follow the hub log: each keeps a table of some kinds of entry, re-derivable from the log.

The hub log is the record; an index only makes some of it findable (the
jobs handed off, the reorder signals raised). Each index reads the log from
where its own table stops (one past its highest ``ledger_idx``), in slices,
picking out its kinds by their canonical bytes (``"kind":"<kind>"``) before
parsing, and hands each entry to :meth:`LogIndex.take`. Tables are
append-only for the app role (SELECT and INSERT, as the ledger's own), so
reading the same entries again adds nothing and a restart costs at most a
re-read; the whole index can always be rebuilt from the log.
"""

from __future__ import annotations

import abc
import asyncio
from typing import Any, ClassVar, Self

import psycopg
import structlog
from psycopg import sql

from smart.ledger import hub_store
from smart.ledger.entry import Entry, EntryError

log = structlog.get_logger("smart.hub.log_index")

#: How many log entries one pass reads at most (a backlog is taken in slices).
SLICE = 5000


def migrate_table(owner_url: str, *, schema: str, table: str, app_role: str = hub_store.APP_ROLE) -> None:
    """Create an index table as the owner (safe to run again); the app role may only SELECT and INSERT."""
    lock = f"smart.hub.log_index.{table}"
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (lock,))
        try:
            conn.execute(schema.encode())
            name, role = sql.Identifier(table), sql.Identifier(app_role)
            conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM PUBLIC").format(name))
            conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(name, role))
            conn.execute(sql.SQL("GRANT SELECT, INSERT ON TABLE {} TO {}").format(name, role))
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (lock,))
    log.info("log_index.migrated", table=table, app_role=app_role)


class LogIndex(abc.ABC):
    """One index on its own connection (app role): :meth:`index_once` takes what the log added since."""

    #: The entry kinds this index keeps.
    kinds: ClassVar[tuple[str, ...]]
    #: Its table, with a ``ledger_idx`` column: the cursor is one past its highest value.
    table: ClassVar[str]

    def __init__(self, conn: psycopg.Connection[Any], *, url: str | None = None) -> None:
        conn.autocommit = True
        self.conn = conn
        #: Where to connect again after the database went away (``None``: the caller's connection only).
        self.url = url
        self._next: int | None = None

    @classmethod
    def connect(cls, url: str) -> Self:
        return cls(psycopg.connect(url, autocommit=True), url=url)

    def close(self) -> None:
        self.conn.close()

    @abc.abstractmethod
    def take(self, idx: int, entry: Entry) -> int:
        """Index one entry of this index's kinds found at ``idx``; how many rows it added (0 or 1)."""

    def index_once(self) -> int:
        """Index the entries of its kinds added to the hub log since the last pass; how many were new."""
        table = sql.Identifier(self.table)
        if self._next is None:
            cursor = sql.SQL("SELECT coalesce(max(ledger_idx) + 1, 0) FROM {}").format(table)
            row = self.conn.execute(cursor).fetchone()
            self._next = int(row[0]) if row else 0
        size_row = self.conn.execute("SELECT coalesce(max(size), 0) FROM ledger_checkpoints").fetchone()
        size = int(size_row[0]) if size_row else 0
        marks = [f'"kind":"{kind}"'.encode() for kind in self.kinds]
        any_mark = sql.SQL(" OR ").join(sql.SQL("position(%s::bytea in entry) > 0") for _ in marks)
        query = sql.SQL(
            "SELECT idx, entry FROM ledger_entries WHERE idx >= %s AND idx < %s AND ({}) ORDER BY idx"
        ).format(any_mark)
        added = 0
        while self._next < size:
            stop = min(size, self._next + SLICE)
            rows = self.conn.execute(query, (self._next, stop, *marks)).fetchall()
            for idx, raw in rows:
                try:
                    entry = Entry.from_bytes(bytes(raw), canonical=False)
                except EntryError as err:
                    log.error("log_index.unreadable_entry", table=self.table, index=idx, error=str(err))
                    continue
                if entry.kind in self.kinds:
                    added += self.take(int(idx), entry)
            self._next = stop
        return added

    async def run(self, every_s: float = 2.0) -> None:
        """Index what arrives until cancelled; a database hiccup is logged and the next pass retries."""
        while True:
            try:
                await asyncio.to_thread(self.index_once)
            except psycopg.Error as err:
                log.warning("log_index.pass_failed", table=self.table, error=type(err).__name__)
                self._next = None  # read the cursor again from the table
                if (self.conn.closed or self.conn.broken) and self.url is not None:
                    try:
                        self.conn = await asyncio.to_thread(psycopg.connect, self.url, autocommit=True)
                    except psycopg.Error as again:
                        log.warning(
                            "log_index.reconnect_failed", table=self.table, error=type(again).__name__
                        )
            await asyncio.sleep(every_s)
