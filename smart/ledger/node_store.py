"""A node's own ledger: its chain of entries in SQLite, durable before ``append`` returns.

Every station, and every hub service that records facts (operator, SMART-ID,
…), keeps one ``NodeLog``. It writes with WAL and ``synchronous=FULL``, so an
entry whose ``append`` returned survives a power cut or a SIGKILL. One
process writes a node's log at a time (an exclusive lock on a file beside
the database); inside that process, appends are serialised. The log signs
its chain head every few seconds while appending and whenever it hands out
a batch to ship (``batch``, or ``shipment`` for the wire form straight from
the stored bytes), so every entry is covered by the next signed head.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from smart.keys import KeyStore, SigningKey
from smart.ledger.batch import WIRE_ENVELOPE, WIRE_PER_ENTRY, Batch, Shipment, wire
from smart.ledger.entry import GENESIS, Entry, EntryError, entry_hash, valid_node
from smart.ledger.head import SignedHead

log = structlog.get_logger("smart.ledger")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_entries (
    node_seq INTEGER PRIMARY KEY,
    hash BLOB NOT NULL,
    entry BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_heads (
    node_seq INTEGER PRIMARY KEY,
    entry_hash BLOB NOT NULL,
    key_id TEXT NOT NULL,
    signature BLOB NOT NULL
);
"""


_ENTRIES = "SELECT entry FROM ledger_entries WHERE node_seq >= ? AND node_seq < ? ORDER BY node_seq"
_LATEST_HEAD = (
    "SELECT node_seq, entry_hash, key_id, signature FROM ledger_heads ORDER BY node_seq DESC LIMIT 1"
)


def _entries(db: sqlite3.Connection, path: Path, start: int, end: int) -> list[Entry]:
    """Entries ``start <= node_seq < end`` of the log in ``db``, parsed (not re-encoded)."""
    rows = db.execute(_ENTRIES, (start, end)).fetchall()
    try:
        return [Entry.from_bytes(row[0], canonical=False) for row in rows]
    except EntryError as err:
        raise NodeLogError(f"node log {path}: {err}") from err


def _signed_head(node: str, row: Any) -> SignedHead:
    return SignedHead(node, row[0], bytes(row[1]), row[2], bytes(row[3]))


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """How far a node's chain re-derives (``verified``: the last sound node_seq, ``last_hash`` its
    hash) and, if it stops short, the first bad entry and why (``problem``)."""

    verified: int
    last_hash: bytes
    problem: str | None


class NodeLogError(RuntimeError):
    """The node's log cannot be opened or written; the message names the file and why."""


class NodeLogBusy(NodeLogError):
    """Another process already writes this node's log (one writer per node)."""


class NodeLog:
    """One node's chain of entries: ``append`` to it, read it by sequence range, ship it in batches."""

    def __init__(self, path: Path, *, node: str, key: SigningKey, head_interval: float = 2.0) -> None:
        if not valid_node(node):
            raise NodeLogError(f"invalid node id {node!r}: use lower-case letters, digits, '.', '_' or '-'")
        self.path = path
        self.node = node
        self.key = key
        self.head_interval = head_interval
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = _take_writer_lock(path)
        self._lock = threading.RLock()
        self._closed = threading.Event()
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._claim(node)
            row = self._db.execute(
                "SELECT node_seq, hash, entry FROM ledger_entries ORDER BY node_seq DESC LIMIT 1"
            ).fetchone()
        except sqlite3.Error as err:
            self._lock_file.close()
            raise NodeLogError(f"cannot open node log {path}: {err}") from err
        if row is None:
            self._next_seq, self._last_hash = 0, GENESIS
        else:
            if entry_hash(row[2]) != row[1]:
                raise NodeLogError(f"node log {path}: last entry #{row[0]} does not match its stored hash")
            self._next_seq, self._last_hash = row[0] + 1, bytes(row[1])
        signed = self._db.execute("SELECT max(node_seq) FROM ledger_heads").fetchone()[0]
        self._signed_seq: int = -1 if signed is None else signed
        self._last_head_at = time.monotonic()
        self._signer = threading.Thread(target=self._sign_while_open, name=f"ledger-head-{node}", daemon=True)
        self._signer.start()

    @classmethod
    def open(cls, directory: Path, *, node: str, keys: KeyStore, key_name: str | None = None) -> NodeLog:
        """The log of ``node`` in ``directory`` (``<node>.sqlite3``), signed with its key from ``keys``.

        The key defaults to one named after the node, generated on first use.
        """
        return cls(directory / f"{node}.sqlite3", node=node, key=keys.signing_key(key_name or node))

    def _claim(self, node: str) -> None:
        row = self._db.execute("SELECT value FROM ledger_meta WHERE name = 'node'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO ledger_meta VALUES ('node', ?)", (node,))
        elif row[0] != node:
            raise NodeLogError(f"node log {self.path} belongs to node {row[0]!r}, not {node!r}")

    # -- writing ---------------------------------------------------------------------------

    def append(
        self,
        *,
        kind: str,
        subject: str,
        data: Mapping[str, Any],
        actor: str,
        contract: str | None = None,
    ) -> Entry:
        """Record one entry; when this returns, it is on disk and linked to the one before."""
        with self._lock:
            if self._closed.is_set():
                raise NodeLogError(f"node log {self.path} is closed")
            entry = Entry.create(
                node=self.node,
                node_seq=self._next_seq,
                prev=self._last_hash,
                kind=kind,
                subject=subject,
                data=data,
                actor=actor,
                contract=contract,
            )
            due = time.monotonic() - self._last_head_at >= self.head_interval
            try:
                if due:
                    self._db.execute("BEGIN IMMEDIATE")
                # Outside BEGIN, the INSERT is its own transaction: one statement, one fsync'd commit.
                self._db.execute(
                    "INSERT INTO ledger_entries (node_seq, hash, entry) VALUES (?, ?, ?)",
                    (entry.node_seq, entry.hash, entry.raw),
                )
                if due:
                    self._insert_head(entry.node_seq, entry.hash)
                    self._db.execute("COMMIT")
            except sqlite3.Error as err:
                self._rollback()
                raise NodeLogError(f"node log {self.path}: cannot append #{entry.node_seq}: {err}") from err
            self._next_seq, self._last_hash = entry.node_seq + 1, entry.hash
            if due:
                self._signed(entry.node_seq)
            return entry

    def sign_head(self) -> SignedHead | None:
        """Sign the current head now (if there is an entry not yet covered) and return the latest head."""
        with self._lock:
            if self._closed.is_set():
                return None
            last = self._next_seq - 1
            if last >= 0 and self._signed_seq < last:
                self._store_head(last, self._last_hash)
            return self.head()

    def _store_head(self, node_seq: int, hash_: bytes) -> None:
        """Sign the head at ``node_seq`` and keep it (one statement: its own durable commit)."""
        try:
            self._insert_head(node_seq, hash_)
        except sqlite3.Error as err:
            raise NodeLogError(f"node log {self.path}: cannot sign head #{node_seq}: {err}") from err
        if node_seq > self._signed_seq:
            self._signed(node_seq)

    def _insert_head(self, node_seq: int, hash_: bytes) -> None:
        head = SignedHead.sign(self.key, node=self.node, node_seq=node_seq, entry_hash=hash_)
        self._db.execute(
            "INSERT OR IGNORE INTO ledger_heads (node_seq, entry_hash, key_id, signature)"
            " VALUES (?, ?, ?, ?)",
            (head.node_seq, head.entry_hash, head.key_id, head.signature),
        )

    def _signed(self, node_seq: int) -> None:
        self._signed_seq = node_seq
        self._last_head_at = time.monotonic()
        log.debug("chain head signed", node=self.node, node_seq=node_seq)

    def _rollback(self) -> None:
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _sign_while_open(self) -> None:
        while not self._closed.wait(self.head_interval):
            try:
                self.sign_head()
            except NodeLogError as err:
                log.error("cannot sign chain head", node=self.node, error=str(err))

    # -- reading ---------------------------------------------------------------------------

    def size(self) -> int:
        """How many entries the log holds (the next ``node_seq``)."""
        with self._lock:
            return self._next_seq

    def entries(self, start: int, stop: int | None = None) -> list[Entry]:
        """Entries with ``start <= node_seq < stop``, in order (all from ``start`` when ``stop`` is None)."""
        end = self.size() if stop is None else stop
        with self._lock:
            return _entries(self._db, self.path, start, end)

    def head(self) -> SignedHead | None:
        """The latest signed head, or None before the first."""
        with self._lock:
            row = self._db.execute(_LATEST_HEAD).fetchone()
        return None if row is None else _signed_head(self.node, row)

    def batch(self, start: int, limit: int = 1000) -> Batch | None:
        """Entries from ``start`` (``limit`` at most) and a signed head naming the last one."""
        with self._lock:
            entries = self.entries(start, min(start + limit, self._next_seq))
            if not entries:
                return None
            last = entries[-1]
            row = self._db.execute(
                "SELECT key_id, signature FROM ledger_heads WHERE node_seq = ?", (last.node_seq,)
            ).fetchone()
            if row is None:
                self._store_head(last.node_seq, last.hash)
                row = self._db.execute(
                    "SELECT key_id, signature FROM ledger_heads WHERE node_seq = ?", (last.node_seq,)
                ).fetchone()
            head = SignedHead(self.node, last.node_seq, last.hash, row[0], bytes(row[1]))
        return Batch(node=self.node, entries=tuple(entries), head=head)

    def shipment(self, start: int, *, limit: int = 1000, max_bytes: int | None = None) -> Shipment | None:
        """Entries from ``start`` as a batch's wire form: ``limit`` at most, within ``max_bytes``.

        Built from the stored bytes without parsing them (the hub parses and checks each entry,
        and re-derives the chain); the head is signed over the last entry's hash, as ``batch``.
        At least one entry goes, whatever its size.
        """
        with self._lock:
            rows = self._db.execute(
                "SELECT node_seq, entry FROM ledger_entries WHERE node_seq >= ? AND node_seq < ?"
                " ORDER BY node_seq",
                (start, min(start + limit, self._next_seq)),
            ).fetchall()
            if not rows:
                return None
            encoded: list[bytes] = []
            room = (max_bytes if max_bytes is not None else 1 << 62) - WIRE_ENVELOPE
            for _, raw in rows:
                room -= len(raw) + WIRE_PER_ENTRY
                if room < 0 and encoded:
                    break
                encoded.append(raw)
            last_seq, last_raw = rows[len(encoded) - 1]
            if rows[0][0] != start or last_seq != start + len(encoded) - 1:
                raise NodeLogError(f"node log {self.path}: entries {start}..{last_seq} are not consecutive")
            last_hash = entry_hash(last_raw)
            row = self._db.execute(
                "SELECT key_id, signature FROM ledger_heads WHERE node_seq = ?", (last_seq,)
            ).fetchone()
            if row is None:
                self._store_head(last_seq, last_hash)
                row = self._db.execute(
                    "SELECT key_id, signature FROM ledger_heads WHERE node_seq = ?", (last_seq,)
                ).fetchone()
            head = SignedHead(self.node, last_seq, last_hash, row[0], bytes(row[1]))
        return Shipment(self.node, start, last_seq, wire(self.node, head, encoded))

    def heads(self) -> list[SignedHead]:
        """Every head this node has signed, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT node_seq, entry_hash, key_id, signature FROM ledger_heads ORDER BY node_seq"
            ).fetchall()
        return [SignedHead(self.node, r[0], bytes(r[1]), r[2], bytes(r[3])) for r in rows]

    def verify(self) -> list[str]:
        """Re-derive the node's chain from disk: hashes, links, gapless node_seq, signed heads.

        Returns the problems found, first first; empty when the chain is sound.
        """
        problems: list[str] = []
        with self._lock:
            rows = self._db.execute(
                "SELECT node_seq, hash, entry FROM ledger_entries ORDER BY node_seq"
            ).fetchall()
            heads = {h.node_seq: h for h in self.heads()}
        previous, expected = GENESIS, 0
        hashes: dict[int, bytes] = {}
        for seq, stored_hash, raw in rows:
            where = f"{self.node}#{seq}"
            if seq != expected:
                problems.append(f"{self.node}#{expected}: missing (the next stored entry is #{seq})")
            digest = entry_hash(raw)
            try:
                entry = Entry.from_bytes(raw)
            except EntryError as err:
                problems.append(f"{where}: {err}")
            else:
                if (entry.node, entry.node_seq) != (self.node, seq):
                    problems.append(f"{where}: the entry says it is {entry.node}#{entry.node_seq}")
                if entry.prev != previous:
                    problems.append(f"{where}: does not link to the entry before it")
            if digest != stored_hash:
                problems.append(f"{where}: does not match its stored hash")
            hashes[seq] = digest
            previous, expected = digest, seq + 1
        for seq, head in heads.items():
            if hashes.get(seq) != head.entry_hash:
                problems.append(f"{self.node}#{seq}: does not match the signed head")
            if not head.verify(self.key.verifying):
                problems.append(f"{self.node}#{seq}: signed head does not verify with the node's key")
        return problems

    def check(self, start: int = 0, prev: bytes = GENESIS, *, chunk: int = 5000) -> ChainCheck:
        """Re-derive the chain from ``start`` (whose predecessor's hash is ``prev``) to the end.

        The station's own check of its log (on start and every hour, from the last entry found
        sound): each entry's bytes are a canonical entry of this node at its place, hash to the
        stored hash and link to the one before, and every signed head in the range names its
        entry's hash and verifies with the node's key. Stops at the first bad entry and says
        which and why; ``verified`` is how far it is sound.
        """
        expected, previous = start, prev
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT node_seq, hash, entry FROM ledger_entries WHERE node_seq >= ?"
                    " ORDER BY node_seq LIMIT ?",
                    (expected, chunk),
                ).fetchall()
                heads = {
                    h[0]: _signed_head(self.node, h)
                    for h in self._db.execute(
                        "SELECT node_seq, entry_hash, key_id, signature FROM ledger_heads"
                        " WHERE node_seq >= ? AND node_seq < ?",
                        (expected, expected + chunk),
                    ).fetchall()
                }
            if not rows:
                return ChainCheck(expected - 1, previous, None)
            for seq, stored_hash, raw in rows:
                where = f"{self.node}#{seq}"
                if seq != expected:
                    return ChainCheck(
                        expected - 1, previous, f"{self.node}#{expected}: missing (next is #{seq})"
                    )
                digest = entry_hash(raw)
                why: str | None = None
                try:
                    entry = Entry.from_bytes(raw)
                except EntryError as err:
                    why = str(err)
                else:
                    if (entry.node, entry.node_seq) != (self.node, seq):
                        why = f"the entry says it is {entry.node}#{entry.node_seq}"
                    elif entry.prev != previous:
                        why = "does not link to the entry before it"
                if why is None and digest != bytes(stored_hash):
                    why = "does not match its stored hash (edited after it was written)"
                head = heads.get(seq)
                if why is None and head is not None:
                    if head.entry_hash != digest:
                        why = "does not match the signed head"
                    elif not head.verify(self.key.verifying):
                        why = "its signed head does not verify with the node's key"
                if why is not None:
                    return ChainCheck(expected - 1, previous, f"{where}: {why}")
                previous, expected = digest, seq + 1

    # -- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Sign the final head, stop the head signer and release the writer lock."""
        if self._closed.is_set():
            return
        try:
            self.sign_head()
        finally:
            with self._lock:
                self._closed.set()
                self._db.close()
            self._signer.join(5)
            self._lock_file.close()

    def __enter__(self) -> NodeLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NodeLogReader:
    """A node's log opened read-only, beside its writer (which may be another process).

    It never takes the writer's lock and cannot write; it reads the entries and the heads the
    writer signed, and hands out batches only up to a signed head, as the hub gathers the logs of
    its own services (``smart.hub.gathering``).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            row = self._db.execute("SELECT value FROM ledger_meta WHERE name = 'node'").fetchone()
        except sqlite3.Error as err:
            raise NodeLogError(f"cannot read node log {path}: {err}") from err
        if row is None:
            self._db.close()
            raise NodeLogError(f"node log {path} names no node")
        self.node = str(row[0])

    def entries(self, start: int, stop: int) -> list[Entry]:
        """Entries with ``start <= node_seq < stop``, in order."""
        try:
            return _entries(self._db, self.path, start, stop)
        except sqlite3.Error as err:
            raise NodeLogError(f"cannot read node log {self.path}: {err}") from err

    def head(self) -> SignedHead | None:
        """The latest head the writer signed, or None before the first."""
        try:
            row = self._db.execute(_LATEST_HEAD).fetchone()
        except sqlite3.Error as err:
            raise NodeLogError(f"cannot read node log {self.path}: {err}") from err
        return None if row is None else _signed_head(self.node, row)

    def signed_batch(self, start: int, limit: int = 1000) -> Batch | None:
        """Entries from ``start`` through the last signed head within ``limit`` entries.

        When no head is signed within ``limit``, through the first signed head after it (a head
        covers everything before it, and nothing later is covered yet); None if none is signed.
        """
        try:
            row = (
                self._db.execute(
                    "SELECT node_seq, entry_hash, key_id, signature FROM ledger_heads"
                    " WHERE node_seq >= ? AND node_seq < ? ORDER BY node_seq DESC LIMIT 1",
                    (start, start + limit),
                ).fetchone()
                or self._db.execute(
                    "SELECT node_seq, entry_hash, key_id, signature FROM ledger_heads"
                    " WHERE node_seq >= ? ORDER BY node_seq LIMIT 1",
                    (start,),
                ).fetchone()
            )
        except sqlite3.Error as err:
            raise NodeLogError(f"cannot read node log {self.path}: {err}") from err
        if row is None:
            return None
        head = _signed_head(self.node, row)
        return Batch(node=self.node, entries=tuple(self.entries(start, head.node_seq + 1)), head=head)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> NodeLogReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _take_writer_lock(path: Path) -> Any:
    lock_path = path.with_name(path.name + ".lock")
    handle = open(lock_path, "a+b")  # held for the log's lifetime
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as err:
        handle.close()
        raise NodeLogBusy(f"node log {path} is already open for writing by another process") from err
    os.set_inheritable(handle.fileno(), False)
    return handle
