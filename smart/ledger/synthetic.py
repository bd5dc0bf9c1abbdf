"""Synthetic node chains: realistic entries in bulk, for the benchmark and the load tests.

The entries are real (canonical bytes, linked, heads signed by the node's
key); only their content is made up: gate decisions on parts at a station.
"""

from __future__ import annotations

from smart.keys import SigningKey
from smart.ledger.batch import Batch
from smart.ledger.entry import GENESIS, Entry
from smart.ledger.head import SignedHead


def gate_decision(node: str, node_seq: int, prev: bytes, *, ts: str | None = None) -> Entry:
    """One made-up gate decision of about 300 bytes, as a station records them."""
    return Entry.create(
        node=node,
        node_seq=node_seq,
        prev=prev,
        kind="gate.decision",
        subject=f"part:PN-{node_seq % 977:04d}/SN-{node_seq:07d}",
        data={
            "allow": node_seq % 17 != 0,
            "equipment": f"{node}-tank-1",
            "po": f"PO-{20000 + node_seq % 311}",
            "reasons": ["badge ok", "certified level 2", "calibration current"],
        },
        actor=f"person:op-{node_seq % 7}",
        contract="3f1c9a0e5b7d2c4a",
        ts=ts,
    )


def chain(node: str, key: SigningKey, count: int, *, batch_size: int, start: int = 0) -> list[Batch]:
    """``count`` entries of ``node`` cut into batches, each ending with a head signed by ``key``."""
    batches: list[Batch] = []
    prev = GENESIS
    pending: list[Entry] = []
    for seq in range(start, start + count):
        entry = gate_decision(node, seq, prev)
        prev = entry.hash
        pending.append(entry)
        if len(pending) == batch_size or seq == start + count - 1:
            head = SignedHead.sign(key, node=node, node_seq=entry.node_seq, entry_hash=entry.hash)
            batches.append(Batch(node=node, entries=tuple(pending), head=head))
            pending = []
    return batches
