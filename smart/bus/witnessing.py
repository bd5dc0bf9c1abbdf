"""The witnessing exchange between the hub and a station, as it goes over NATS.

The hub sends ``station.<id>.ledger.witness`` a request holding its latest
signed checkpoint and a consistency proof from the last size that station
cosigned; the station answers (on ``station.<id>.ledger.cosigned.<token>``,
which its leaf may publish) with its cosignature line, with the size it
last cosigned when the proof starts elsewhere (the hub then proves from
there), or with why it refuses: a smaller tree than it cosigned (the hub
rolled back), no consistency proof from its checkpoint, a note the log did
not sign. A refusal carries the station's largest cosigned checkpoint.
Both sides import this file so the wire format is written once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from smart.bus import subjects


def witness_name(station: str) -> str:
    """The name of a station's witness key, and of its cosignature lines."""
    return f"witness-{station}"


def witness_subject(station: str) -> str:
    return subjects.station_subject(station, "ledger", "witness")


def answer_subject(station: str, token: str) -> str:
    """Where the station answers one witnessing request: inside its own subjects.

    A station's leaf may publish only its own subjects at the hub (no replies to inboxes at
    large cross a leaf connection), so the hub asks with a reply subject the station may use.
    """
    return subjects.station_subject(station, "ledger", "cosigned", token)


@dataclass(frozen=True, slots=True)
class WitnessRequest:
    checkpoint: str
    old_size: int
    proof: tuple[bytes, ...]

    def to_bytes(self) -> bytes:
        body = {
            "checkpoint": self.checkpoint,
            "old_size": self.old_size,
            "proof": [p.hex() for p in self.proof],
        }
        return json.dumps(body).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> WitnessRequest:
        body = json.loads(raw)
        return cls(
            str(body["checkpoint"]), int(body["old_size"]), tuple(bytes.fromhex(p) for p in body["proof"])
        )


def cosigned(line: str) -> bytes:
    return json.dumps({"cosignature": line}).encode()


def refused(reason: str, *, evidence: str | None = None) -> bytes:
    """The station will not cosign; ``evidence`` is the largest checkpoint it did cosign (its signed
    note: the log's signature and the station's cosignature), so the hub and anyone after it can
    see, and check, that the log once said more than it says now."""
    return json.dumps({"refused": reason, "evidence": evidence}).encode()


def seen(size: int) -> bytes:
    """The station's answer when the proof starts at the wrong size: prove from this one instead."""
    return json.dumps({"seen_size": size}).encode()
