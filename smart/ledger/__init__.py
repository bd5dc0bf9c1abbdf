"""The Custodian: SMART's verifiable, append-only ledger.

Nodes (stations, and hub services as nodes of their own) record entries in
a ``NodeLog``; the hub ingests their batches into one global Merkle-tree log
in PostgreSQL, signs checkpoints that witnesses cosign, and hands out proofs
anyone can check offline. This package knows nothing of modules, drivers or
web apps.

Use it as a namespace: ``from smart import ledger`` → ``ledger.NodeLog``.
"""

from __future__ import annotations

from smart.ledger.batch import Batch, BatchError
from smart.ledger.entry import GENESIS, Entry, EntryError, entry_hash
from smart.ledger.head import SignedHead
from smart.ledger.node_store import NodeLog, NodeLogBusy, NodeLogError

__all__ = [
    "GENESIS",
    "Batch",
    "BatchError",
    "Entry",
    "EntryError",
    "NodeLog",
    "NodeLogBusy",
    "NodeLogError",
    "SignedHead",
    "entry_hash",
]
