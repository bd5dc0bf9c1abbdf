"""Gathering the hub services' own node logs into the hub log, as stations' logs are.

SMART-ID, ``smart apply`` (node ``smart-embedded``) and the operator append
to node logs of their own under ``<state_dir>/ledger/`` (DESIGN "Ledger":
hub services append through the same path, as nodes of their own). A
station ships its log over JetStream; these logs sit beside the hub, so the
hub services read them directly and ingest them into PostgreSQL with the
same checks: the chain re-derived from the bytes, each batch closed by a
head the node signed, exactly once by (node, node_seq).

The reader never takes the writer's lock (the writer may be another
process, e.g. a CLI command) and opens the SQLite file read-only. It ships
only up to the newest signed head: entries after it wait for the writer's
next head (signed every few seconds while it runs, and at close).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from smart.keys import KeyFileError, KeyStore
from smart.ledger.batch import Batch
from smart.ledger.entry import Entry, EntryError
from smart.ledger.head import SignedHead
from smart.ledger.hub_store import HubLog, IngestError

log = structlog.get_logger("smart.hub.gathering")

#: Ledger key names of hub-service nodes whose key is not named after the node.
NODE_KEY_NAMES: Mapping[str, str] = {"smart-id": "smart-id-ledger"}
#: Entries per ingested batch at most (unless the first signed head lies further on).
BATCH_LIMIT = 2000


class NodeLogFileError(RuntimeError):
    """A node log file cannot be read; the message names the file."""


@dataclass(frozen=True, slots=True)
class Gathered:
    node: str
    entries: int


def read_batch(path: Path, start: int, limit: int = BATCH_LIMIT) -> tuple[str, Batch | None]:
    """The node's name and its entries from ``start`` through a signed head (None when none is signed yet)."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as err:
        raise NodeLogFileError(f"cannot open node log {path}: {err}") from err
    try:
        meta = db.execute("SELECT value FROM ledger_meta WHERE name = 'node'").fetchone()
        if meta is None:
            raise NodeLogFileError(f"node log {path} names no node")
        node = str(meta[0])
        head = (
            db.execute(
                "SELECT node_seq, entry_hash, key_id, signature FROM ledger_heads"
                " WHERE node_seq >= ? AND node_seq < ? ORDER BY node_seq DESC LIMIT 1",
                (start, start + limit),
            ).fetchone()
            or db.execute(
                "SELECT node_seq, entry_hash, key_id, signature FROM ledger_heads"
                " WHERE node_seq >= ? ORDER BY node_seq LIMIT 1",
                (start,),
            ).fetchone()
        )
        if head is None:
            return node, None
        rows = db.execute(
            "SELECT entry FROM ledger_entries WHERE node_seq >= ? AND node_seq <= ? ORDER BY node_seq",
            (start, head[0]),
        ).fetchall()
    except sqlite3.Error as err:
        raise NodeLogFileError(f"cannot read node log {path}: {err}") from err
    finally:
        db.close()
    try:
        entries = tuple(Entry.from_bytes(row[0], canonical=False) for row in rows)
    except EntryError as err:
        raise NodeLogFileError(f"node log {path}: {err}") from err
    signed = SignedHead(node, head[0], bytes(head[1]), head[2], bytes(head[3]))
    return node, Batch(node=node, entries=entries, head=signed)


class HubNodeGathering:
    """Ingests every hub-service node log in ``directory`` that the hub log does not hold yet."""

    def __init__(self, directory: Path, hub_log: HubLog, keys: KeyStore) -> None:
        self.directory = directory
        self.hub_log = hub_log
        self.keys = keys
        self._registered: set[str] = set()

    def _register(self, node: str) -> bool:
        """Enrol the node's public key with the hub log once; a node without a key here is skipped."""
        if node in self._registered:
            return True
        try:
            key = self.keys.verifying_key(NODE_KEY_NAMES.get(node, node))
        except KeyFileError as err:
            log.warning("hub node not gathered: no public key", node=node, error=str(err))
            return False
        self.hub_log.register_node(node, key)
        self._registered.add(node)
        return True

    def gather_once(self) -> list[Gathered]:
        """One pass over the directory; returns what was ingested. A bad file is logged and skipped."""
        gathered: list[Gathered] = []
        for path in sorted(self.directory.glob("*.sqlite3")):
            node = path.stem
            try:
                while True:
                    start = self.hub_log.node_size(node)
                    found, batch = read_batch(path, start)
                    if found != node:
                        raise NodeLogFileError(f"node log {path} belongs to {found!r}, not {node!r}")
                    if batch is None or not self._register(node):
                        break
                    self.hub_log.ingest(batch)
                    gathered.append(Gathered(node, len(batch.entries)))
                    log.info(
                        "hub node gathered",
                        node=node,
                        first=batch.entries[0].node_seq,
                        last=batch.head.node_seq,
                    )
            except (NodeLogFileError, IngestError) as err:
                log.error("hub node log not gathered", node=node, file=str(path), error=str(err))
        return gathered
