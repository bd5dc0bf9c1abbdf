"""A node's signed chain head: "my log has N+1 entries and the last one hashes to H", signed.

Signing every entry would cap a node at the speed of Ed25519; signing the
head of the chain instead covers every entry before it through the ``prev``
links (as Hypercore signs the root of its log). A node signs a head each
time it ships a batch and every few seconds while it appends.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from smart.keys import SigningKey, VerifyingKey

_CONTEXT = b"smart-ledger-head/v1\n"


def head_message(node: str, node_seq: int, entry_hash: bytes) -> bytes:
    """The exact bytes a node signs; the context line keeps them from meaning anything else."""
    return _CONTEXT + f"{node}\n{node_seq}\n{entry_hash.hex()}\n".encode()


@dataclass(frozen=True, slots=True)
class SignedHead:
    """The head of one node's chain at ``node_seq`` (whose entry hashes to ``entry_hash``), signed."""

    node: str
    node_seq: int
    entry_hash: bytes
    key_id: str
    signature: bytes

    @classmethod
    def sign(cls, key: SigningKey, *, node: str, node_seq: int, entry_hash: bytes) -> SignedHead:
        signature = key.sign(head_message(node, node_seq, entry_hash))
        return cls(node, node_seq, entry_hash, key.key_id, signature)

    def verify(self, key: VerifyingKey) -> bool:
        """True if ``key`` is the one named and its signature covers these fields."""
        return key.key_id == self.key_id and key.verify(
            self.signature, head_message(self.node, self.node_seq, self.entry_hash)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "node_seq": self.node_seq,
            "entry_hash": self.entry_hash.hex(),
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode(),
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> SignedHead:
        return cls(
            node=str(value["node"]),
            node_seq=int(value["node_seq"]),
            entry_hash=bytes.fromhex(value["entry_hash"]),
            key_id=str(value["key_id"]),
            signature=base64.b64decode(value["signature"], validate=True),
        )
