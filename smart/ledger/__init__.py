"""The Custodian: SMART's verifiable, append-only ledger.

Nodes (stations, and hub services as nodes of their own) record entries in
a ``NodeLog``; the hub ingests their batches into one global Merkle-tree log
in PostgreSQL (``HubLog``), signs C2SP checkpoints that witnesses cosign, and
hands out proof bundles anyone can check offline. This package knows nothing
of modules, drivers or web apps.

Use it as a namespace: ``from smart import ledger`` → ``ledger.NodeLog``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: Name → the submodule that defines it, imported on first use (PEP 562), so that a station module
#: process reading ``ledger.Entry`` never loads the hub's PostgreSQL store (psycopg) with it.
_WHERE: dict[str, str] = {
    "APP_ROLE": "smart.ledger.hub_store",
    "Batch": "smart.ledger.batch",
    "BatchError": "smart.ledger.batch",
    "BundleError": "smart.ledger.bundle",
    "ChainCheck": "smart.ledger.node_store",
    "ChainGap": "smart.ledger.hub_store",
    "Checkpoint": "smart.ledger.checkpoint",
    "CheckpointError": "smart.ledger.checkpoint",
    "CheckpointSigner": "smart.ledger.checkpoint",
    "Entry": "smart.ledger.entry",
    "EntryError": "smart.ledger.entry",
    "ForkAlarm": "smart.ledger.hub_store",
    "GENESIS": "smart.ledger.entry",
    "HUB_KEY": "smart.ledger.hub_store",
    "HubLog": "smart.ledger.hub_store",
    "InconsistentCheckpoint": "smart.ledger.checkpoint",
    "IngestError": "smart.ledger.hub_store",
    "Ingested": "smart.ledger.hub_store",
    "LogStore": "smart.ledger.store",
    "NodeLog": "smart.ledger.node_store",
    "NodeLogBusy": "smart.ledger.node_store",
    "NodeLogError": "smart.ledger.node_store",
    "NodeLogReader": "smart.ledger.node_store",
    "NoteSignature": "smart.ledger.checkpoint",
    "ORIGIN": "smart.ledger.hub_store",
    "Problem": "smart.ledger.verify",
    "ProofBundle": "smart.ledger.bundle",
    "Report": "smart.ledger.verify",
    "Shipment": "smart.ledger.batch",
    "SignedCheckpoint": "smart.ledger.checkpoint",
    "SignedHead": "smart.ledger.head",
    "Witness": "smart.ledger.witness",
    "WitnessRefusal": "smart.ledger.witness",
    "entry_hash": "smart.ledger.entry",
    "migrate": "smart.ledger.hub_store",
    "verify_hub": "smart.ledger.verify",
}

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


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
