"""The station's own store: what the hub distributed, as last seen, and which contract revisions are active.

A station must come back enforcing after a reboot with no hub reachable, so
everything a decision needs is kept here, in SQLite (WAL, ``synchronous=FULL``):
the latest value of every mirrored KV key, every contract revision received
(refused ones too, with the reason) and which revision of each contract is
active. Activating a revision is one transaction: the station never holds
two active revisions of one contract, nor none between two.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mirrored (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    revision INTEGER NOT NULL,
    value BLOB,
    received_at TEXT NOT NULL,
    PRIMARY KEY (bucket, key)
);
CREATE TABLE IF NOT EXISTS contract_revisions (
    revision TEXT NOT NULL,
    contract TEXT NOT NULL,
    envelope BLOB NOT NULL,
    received_at TEXT NOT NULL,
    refused TEXT,
    PRIMARY KEY (contract, revision)
);
CREATE TABLE IF NOT EXISTS active_contracts (
    contract TEXT PRIMARY KEY,
    revision TEXT NOT NULL,
    activated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ship_cursor (
    node TEXT PRIMARY KEY,
    shipped_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS activations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    contract TEXT NOT NULL,
    revision TEXT,
    previous TEXT,
    at TEXT NOT NULL
);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class MirrorUpdate:
    """One KV change as the station's mirror delivered it (``value`` None = deleted)."""

    bucket: str
    key: str
    revision: int
    value: bytes | None


@dataclass(frozen=True, slots=True)
class ActiveRevision:
    contract: str
    revision: str
    envelope: bytes
    activated_at: str


@dataclass(frozen=True, slots=True)
class Activation:
    """One change of a contract's active revision, as the history shows it."""

    contract: str
    revision: str | None
    previous: str | None
    at: str


class StationStore:
    """One station's node-local store (``store.sqlite3`` in its data directory)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- mirrored KV values -----------------------------------------------------------------

    def is_newer(self, bucket: str, key: str, revision: int) -> bool:
        """Whether KV ``revision`` of ``bucket/key`` is newer than what the store holds."""
        with self._lock:
            row = self._db.execute(
                "SELECT revision FROM mirrored WHERE bucket = ? AND key = ?", (bucket, key)
            ).fetchone()
        return row is None or row[0] < revision

    def put_mirrored(self, bucket: str, key: str, revision: int, value: bytes | None) -> bool:
        """Keep the newest value of ``bucket/key`` (``None`` = deleted); False if already newer."""
        with self._lock:
            return self._put_mirrored(MirrorUpdate(bucket, key, revision, value))

    def _put_mirrored(self, update: MirrorUpdate) -> bool:
        row = self._db.execute(
            "SELECT revision FROM mirrored WHERE bucket = ? AND key = ?", (update.bucket, update.key)
        ).fetchone()
        if row is not None and row[0] >= update.revision:
            return False
        self._db.execute(
            "INSERT INTO mirrored VALUES (?, ?, ?, ?, ?) ON CONFLICT (bucket, key) DO UPDATE SET "
            "revision = excluded.revision, value = excluded.value, received_at = excluded.received_at",
            (update.bucket, update.key, update.revision, update.value, _now()),
        )
        return True

    def mirrored(self, bucket: str, key: str) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM mirrored WHERE bucket = ? AND key = ?", (bucket, key)
            ).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def mirrored_items(self, bucket: str) -> dict[str, bytes]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, value FROM mirrored WHERE bucket = ? AND value IS NOT NULL ORDER BY key",
                (bucket,),
            ).fetchall()
        return {key: bytes(value) for key, value in rows}

    def mirror_revision(self, bucket: str) -> int:
        """The highest KV revision of ``bucket`` this station has materialised (0 if none)."""
        with self._lock:
            row = self._db.execute(
                "SELECT max(revision) FROM mirrored WHERE bucket = ?", (bucket,)
            ).fetchone()
        return int(row[0] or 0)

    # -- ledger shipping ---------------------------------------------------------------------

    def shipped_seq(self, node: str) -> int:
        """The last node_seq of ``node`` the hub acknowledged (-1 before the first)."""
        with self._lock:
            row = self._db.execute("SELECT shipped_seq FROM ship_cursor WHERE node = ?", (node,)).fetchone()
        return -1 if row is None else int(row[0])

    def set_shipped_seq(self, node: str, seq: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO ship_cursor VALUES (?, ?) ON CONFLICT (node) DO UPDATE SET "
                "shipped_seq = max(shipped_seq, excluded.shipped_seq)",
                (node, seq),
            )

    # -- contract revisions -----------------------------------------------------------------

    def record_revision(self, contract: str, revision: str, envelope: bytes, *, refused: str | None) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO contract_revisions VALUES (?, ?, ?, ?, ?) ON CONFLICT (contract, revision) "
                "DO UPDATE SET refused = excluded.refused",
                (revision, contract, envelope, _now(), refused),
            )

    def activate(
        self,
        contract: str,
        revision: str,
        *,
        envelope: bytes | None = None,
        mirrored: MirrorUpdate | None = None,
    ) -> str | None:
        """Make ``revision`` the active one of ``contract``; returns the previous one.

        One transaction (one fsync) records the mirrored value, the revision's envelope and the
        activation, so a crash leaves either the old revision active or the new one, never half.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if mirrored is not None:
                    self._put_mirrored(mirrored)
                if envelope is not None:
                    self._db.execute(
                        "INSERT INTO contract_revisions VALUES (?, ?, ?, ?, NULL) "
                        "ON CONFLICT (contract, revision) DO UPDATE SET refused = NULL",
                        (revision, contract, envelope, _now()),
                    )
                row = self._db.execute(
                    "SELECT revision FROM active_contracts WHERE contract = ?", (contract,)
                ).fetchone()
                previous = None if row is None else str(row[0])
                at = _now()
                self._db.execute(
                    "INSERT INTO active_contracts VALUES (?, ?, ?) ON CONFLICT (contract) DO UPDATE SET "
                    "revision = excluded.revision, activated_at = excluded.activated_at",
                    (contract, revision, at),
                )
                self._db.execute(
                    "INSERT INTO activations (contract, revision, previous, at) VALUES (?, ?, ?, ?)",
                    (contract, revision, previous, at),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return previous

    def deactivate(self, contract: str, *, mirrored: MirrorUpdate | None = None) -> str | None:
        """Retire ``contract`` at this station; returns the revision that was active."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if mirrored is not None:
                    self._put_mirrored(mirrored)
                row = self._db.execute(
                    "SELECT revision FROM active_contracts WHERE contract = ?", (contract,)
                ).fetchone()
                if row is None:
                    self._db.execute("COMMIT")
                    return None
                self._db.execute("DELETE FROM active_contracts WHERE contract = ?", (contract,))
                self._db.execute(
                    "INSERT INTO activations (contract, revision, previous, at) VALUES (?, NULL, ?, ?)",
                    (contract, row[0], _now()),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return str(row[0])

    def active(self) -> list[ActiveRevision]:
        with self._lock:
            rows = self._db.execute(
                "SELECT a.contract, a.revision, r.envelope, a.activated_at FROM active_contracts a "
                "JOIN contract_revisions r ON r.contract = a.contract AND r.revision = a.revision "
                "ORDER BY a.contract"
            ).fetchall()
        return [ActiveRevision(c, r, bytes(e), at) for c, r, e, at in rows]

    def history(self, contract: str | None = None) -> list[Activation]:
        with self._lock:
            if contract is None:
                rows = self._db.execute(
                    "SELECT contract, revision, previous, at FROM activations ORDER BY seq"
                ).fetchall()
            else:
                rows = self._db.execute(
                    "SELECT contract, revision, previous, at FROM activations "
                    "WHERE contract = ? ORDER BY seq",
                    (contract,),
                ).fetchall()
        return [Activation(c, r, p, at) for c, r, p, at in rows]

    def envelope(self, contract: str, revision: str) -> bytes | None:
        """The envelope of ``revision`` of ``contract`` as received and accepted, active or not.

        The store keeps every revision it was sent, so a decision judged under a revision since
        replaced can still be explained from the rule text it was judged by.
        """
        with self._lock:
            row = self._db.execute(
                "SELECT envelope FROM contract_revisions"
                " WHERE contract = ? AND revision = ? AND refused IS NULL",
                (contract, revision),
            ).fetchone()
        return None if row is None else bytes(row[0])

    def refused(self, contract: str, revision: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT refused FROM contract_revisions WHERE contract = ? AND revision = ?",
                (contract, revision),
            ).fetchone()
        return None if row is None else row[0]
