"""A batch: consecutive entries of one node and the signed head that covers the last of them.

This is what a node ships and what the hub ingests. Its wire form is JSON
with the entry bytes in base64, so they arrive exactly as the node wrote
them.
"""

from __future__ import annotations

import base64
import json
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
        return json.dumps(
            {
                "node": self.node,
                "head": self.head.to_json(),
                "entries": [base64.b64encode(entry.raw).decode() for entry in self.entries],
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Batch:
        """Read a shipped batch; each entry is parsed and its fields checked (not re-encoded)."""
        try:
            body = json.loads(raw)
            entries = tuple(
                Entry.from_bytes(base64.b64decode(item, validate=True), canonical=False)
                for item in body["entries"]
            )
            head = SignedHead.from_json(body["head"])
            return cls(node=str(body["node"]), entries=entries, head=head)
        except EntryError as err:
            raise BatchError(f"batch: {err}") from err
        except (ValueError, KeyError, TypeError) as err:
            raise BatchError(f"batch is not well-formed: {err}") from err
