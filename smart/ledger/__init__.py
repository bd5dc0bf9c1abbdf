"""The Custodian: SMART's verifiable, append-only ledger.

Nodes (stations, and hub services as nodes of their own) record entries in
a ``NodeLog``; the hub ingests their batches into one global Merkle-tree log
in PostgreSQL (``HubLog``), signs C2SP checkpoints that witnesses cosign, and
hands out proof bundles anyone can check offline. This package knows nothing
of modules, drivers or web apps.

Use it as a namespace: ``from smart import ledger`` → ``ledger.NodeLog``.
"""

from __future__ import annotations

from smart.ledger.batch import Batch, BatchError, Shipment
from smart.ledger.bundle import BundleError, ProofBundle
from smart.ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointSigner,
    InconsistentCheckpoint,
    NoteSignature,
    SignedCheckpoint,
)
from smart.ledger.entry import GENESIS, Entry, EntryError, entry_hash
from smart.ledger.head import SignedHead
from smart.ledger.hub_store import (
    APP_ROLE,
    HUB_KEY,
    ORIGIN,
    ChainGap,
    ForkAlarm,
    HubLog,
    Ingested,
    IngestError,
    migrate,
)
from smart.ledger.node_store import ChainCheck, NodeLog, NodeLogBusy, NodeLogError, NodeLogReader
from smart.ledger.store import LogStore
from smart.ledger.verify import Problem, Report, verify_hub
from smart.ledger.witness import Witness, WitnessRefusal

__all__ = [
    "APP_ROLE",
    "GENESIS",
    "HUB_KEY",
    "ORIGIN",
    "Batch",
    "BatchError",
    "BundleError",
    "ChainCheck",
    "ChainGap",
    "Checkpoint",
    "CheckpointError",
    "CheckpointSigner",
    "Entry",
    "EntryError",
    "ForkAlarm",
    "HubLog",
    "InconsistentCheckpoint",
    "IngestError",
    "Ingested",
    "LogStore",
    "NodeLog",
    "NodeLogBusy",
    "NodeLogError",
    "NodeLogReader",
    "NoteSignature",
    "Problem",
    "ProofBundle",
    "Report",
    "Shipment",
    "SignedCheckpoint",
    "SignedHead",
    "Witness",
    "WitnessRefusal",
    "entry_hash",
    "migrate",
    "verify_hub",
]
