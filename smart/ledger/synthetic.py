"""Synthetic node chains: realistic entries in bulk, for the benchmark and the load tests.

The entries are real (canonical bytes, linked, heads signed by the node's
key); only their content is made up: gate decisions on parts at a station.
"""

from __future__ import annotations

from collections.abc import Iterator

from smart.keys import SigningKey
from smart.ledger.batch import Batch
from smart.ledger.entry import GENESIS, Entry, entry_hash, utc_now
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


def fast_chain(
    node: str, key: SigningKey, count: int, *, batch_size: int, ts: str | None = None
) -> Iterator[Batch]:
    """As :func:`chain`, many times faster and lazily: the canonical bytes are formatted, not encoded.

    Used to build the million-entry log the benchmark verifies. The first
    entry is checked byte for byte against the RFC 8785 encoder, so the
    template cannot drift from :func:`gate_decision`.
    """
    when = ts or utc_now()
    prev = GENESIS
    pending: list[Entry] = []
    for seq in range(count):
        data = {
            "allow": seq % 17 != 0,
            "equipment": f"{node}-tank-1",
            "po": f"PO-{20000 + seq % 311}",
            "reasons": ["badge ok", "certified level 2", "calibration current"],
        }
        raw = (
            f'{{"actor":"person:op-{seq % 7}","contract":"3f1c9a0e5b7d2c4a","data":{{"allow":'
            f'{"true" if data["allow"] else "false"},"equipment":"{node}-tank-1","po":"{data["po"]}",'
            '"reasons":["badge ok","certified level 2","calibration current"]},"kind":"gate.decision",'
            f'"node":"{node}","node_seq":{seq},"prev":"{prev.hex()}",'
            f'"subject":"part:PN-{seq % 977:04d}/SN-{seq:07d}","ts":"{when}"}}'
        ).encode()
        if seq == 0 and raw != gate_decision(node, 0, GENESIS, ts=when).raw:
            raise AssertionError("synthetic entry template no longer matches the canonical encoding")
        digest = entry_hash(raw)
        entry = Entry(
            node=node,
            node_seq=seq,
            prev=prev,
            ts=when,
            actor=f"person:op-{seq % 7}",
            kind="gate.decision",
            subject=f"part:PN-{seq % 977:04d}/SN-{seq:07d}",
            data=data,
            contract="3f1c9a0e5b7d2c4a",
            raw=raw,
            hash=digest,
        )
        prev = digest
        pending.append(entry)
        if len(pending) == batch_size or seq == count - 1:
            head = SignedHead.sign(key, node=node, node_seq=seq, entry_hash=digest)
            yield Batch(node=node, entries=tuple(pending), head=head)
            pending = []
