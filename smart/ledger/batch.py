"""A batch: consecutive entries of one node and the signed head that covers the last of them.

This is what a node ships and what the hub ingests. Its wire form is JSON
with the entry bytes in base64, so they arrive exactly as the node wrote
them. A node builds it from its stored bytes without parsing them again
(``Shipment``); the hub parses and checks every entry (``Batch.from_bytes``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass

from smart.ledger.entry import Entry, EntryError
from smart.ledger.head import SignedHead


class BatchError(ValueError):
    """A batch that does not hang together; the message names the node and sequence number."""


@dataclass(frozen=True, slots=True)
class Batch:
    node: str
    entries: tuple[Entry, ...]
    head: SignedHead

    @property
    def first_seq(self) -> int:
        return self.entries[0].node_seq

    @property
    def last_seq(self) -> int:
        return self.entries[-1].node_seq

    def check(self) -> None:
        """The entries are one node's, consecutive, linked, and the head names the last one."""
        if not self.entries:
            raise BatchError(f"batch from {self.node} has no entries")
        previous: Entry | None = None
        for entry in self.entries:
            if entry.node != self.node:
                raise BatchError(
                    f"batch from {self.node} holds an entry of {entry.node} at #{entry.node_seq}"
                )
            if previous is not None:
                if entry.node_seq != previous.node_seq + 1:
                    raise BatchError(
                        f"batch from {self.node}: #{entry.node_seq} follows #{previous.node_seq} (a gap)"
                    )
                if entry.prev != previous.hash:
                    raise BatchError(
                        f"batch from {self.node}: #{entry.node_seq} does not link to its predecessor"
                    )
            previous = entry
        last = self.entries[-1]
        named = (self.head.node, self.head.node_seq, self.head.entry_hash)
        if named != (last.node, last.node_seq, last.hash):
            raise BatchError(
                f"batch from {self.node}: signed head #{self.head.node_seq} does not name its last entry "
                f"#{last.node_seq}"
            )

    def to_bytes(self) -> bytes:
        return wire(self.node, self.head, [base64.b64encode(entry.raw) for entry in self.entries])

    @classmethod
    def from_bytes(cls, raw: bytes) -> Batch:
        """Read a shipped batch; each entry is parsed and its fields checked (not re-encoded)."""
        try:
            body = json.loads(raw)
            entries = tuple(  # a2b_base64 in strict mode is b64decode(validate=True) without its wrapper
                Entry.from_bytes(binascii.a2b_base64(item, strict_mode=True), canonical=False)
                for item in body["entries"]
            )
            head = SignedHead.from_json(body["head"])
            return cls(node=str(body["node"]), entries=entries, head=head)
        except EntryError as err:
            raise BatchError(f"batch: {err}") from err
        except (ValueError, KeyError, TypeError) as err:
            raise BatchError(f"batch is not well-formed: {err}") from err


def wire(node: str, head: SignedHead, encoded_entries: Sequence[bytes]) -> bytes:
    """A batch's wire form, from its entries' bytes already in base64 (which needs no JSON escaping)."""
    envelope = json.dumps({"node": node, "head": head.to_json()}, separators=(",", ":")).encode()
    return b"".join((envelope[:-1], b',"entries":["', b'","'.join(encoded_entries), b'"]}'))


#: What the wire form adds to each entry's base64: its quotes and a comma.
WIRE_PER_ENTRY = 3
#: What it adds around the entries, at most (node, signed head, keys).
WIRE_ENVELOPE = 512


@dataclass(frozen=True, slots=True)
class Shipment:
    """A batch ready to send: a node's consecutive entries ``first_seq..last_seq`` and its signed head."""

    node: str
    first_seq: int
    last_seq: int
    payload: bytes

    @property
    def count(self) -> int:
        return self.last_seq - self.first_seq + 1

    @property
    def message_id(self) -> str:
        """The same entries always get the same id, so JetStream drops a batch sent twice."""
        return f"{self.node}:{self.first_seq}-{self.last_seq}"
