"""A witness: cosigns the hub's checkpoints only while they tell one consistent history.

A log could show one history to an auditor and another to everyone else.
A witness (each station) remembers the largest checkpoint it cosigned (and
the signed note, as evidence) and signs a new one only with a consistency
proof from that one; a smaller tree it refuses outright, since a log never
shrinks: a hub restored from an older backup is found at its first
witnessing round. So a rewritten log gets no cosignatures, and a checkpoint
with enough cosignatures is one the whole floor has seen.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from pathlib import Path

import structlog

from smart.keys import SigningKey, VerifyingKey
from smart.ledger import merkle
from smart.ledger.checkpoint import Checkpoint, CheckpointError, NoteSignature, SignedCheckpoint, cosign

log = structlog.get_logger("smart.ledger")


class WitnessRefusal(CheckpointError):
    """The witness will not cosign this checkpoint; the message says why."""


class Witness:
    """One witness of one log: its key, the log's key, and the last checkpoint it cosigned."""

    def __init__(
        self,
        key: SigningKey,
        *,
        log_key: VerifyingKey,
        origin: str,
        state_path: Path | None = None,
    ) -> None:
        self.key = key
        self.log_key = log_key
        self.origin = origin
        self.state_path = state_path
        #: The largest checkpoint this witness cosigned, as the signed note (the log's signature and
        #: this witness's cosignature): evidence anyone can check that the log once said so.
        self.note: str | None = None
        self.latest: Checkpoint | None = self._load()

    def cosign(self, signed: SignedCheckpoint, consistency_proof: Sequence[bytes]) -> NoteSignature:
        """Cosign ``signed`` if the log signed it and it extends what this witness saw last."""
        checkpoint = signed.checkpoint
        if checkpoint.origin != self.origin:
            raise WitnessRefusal(
                f"checkpoint is for log {checkpoint.origin!r}; this witness serves {self.origin!r}"
            )
        try:
            # Only the pinned log key signs for the log; other lines are not ours to judge.
            signed.verify(self.log_key, (), origin=self.origin)
        except CheckpointError as err:
            raise WitnessRefusal(
                f"checkpoint of size {checkpoint.size} is not signed by the log: {err}"
            ) from err
        if self.latest is not None and checkpoint.size < self.latest.size:
            log.error(
                "witness refused a smaller tree",
                witness=self.key.name,
                seen_size=self.latest.size,
                offered_size=checkpoint.size,
            )
            raise WitnessRefusal(
                f"checkpoint of size {checkpoint.size} is smaller than size {self.latest.size} this witness "
                "cosigned: the log was rolled back (restored from an older backup?) or forked"
            )
        if self.latest is not None:
            try:
                merkle.verify_consistency(
                    self.latest.size, checkpoint.size, self.latest.root, checkpoint.root, consistency_proof
                )
            except merkle.ProofError as err:
                log.error(
                    "witness refused an inconsistent checkpoint",
                    witness=self.key.name,
                    seen_size=self.latest.size,
                    offered_size=checkpoint.size,
                    reason=str(err),
                )
                raise WitnessRefusal(
                    f"checkpoint of size {checkpoint.size} is not consistent with size {self.latest.size} "
                    f"seen before: {err}"
                ) from err
        signature = cosign(checkpoint, self.key)
        if self.latest is None or checkpoint.size > self.latest.size or self.note is None:
            log_line = next(
                s for s in signed.signatures if not s.is_cosignature and s.name == self.log_key.name
            )
            self._save(checkpoint, SignedCheckpoint(checkpoint, (log_line, signature)).text())
        return signature

    def _load(self) -> Checkpoint | None:
        if self.state_path is None or not self.state_path.exists():
            return None
        try:
            value = json.loads(self.state_path.read_text())
            self.note = value.get("note")
            return Checkpoint(
                value["origin"], int(value["size"]), base64.b64decode(value["root"], validate=True)
            )
        except (OSError, ValueError, KeyError) as err:
            raise WitnessRefusal(f"witness state {self.state_path} is unreadable: {err}") from err

    def _save(self, checkpoint: Checkpoint, note: str) -> None:
        self.latest, self.note = checkpoint, note
        if self.state_path is None:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        body = {
            "origin": checkpoint.origin,
            "size": checkpoint.size,
            "root": base64.b64encode(checkpoint.root).decode(),
            "note": note,
        }
        with open(tmp, "w") as out:
            json.dump(body, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.state_path)
