"""Proof bundles: one entry with everything needed to prove, offline, that the log holds it.

A bundle is canonical JSON (RFC 8785) holding the entry's bytes, its global
index, its inclusion proof, the signed checkpoint with the witnesses'
cosignatures, and the key ids of the log and the witnesses. Anyone with the
public keys checks it with no network and no database (``smart verify``).
Every byte counts: the bundle must be canonical, its checkpoint signed by the
trusted log's key for the trusted origin, and a failure names the part of
the bundle at fault. What is trusted comes from the verifier's trust file
(:mod:`smart.ledger.trust`), never from the bundle.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import rfc8785

from smart.keys import VerifyingKey
from smart.ledger import merkle
from smart.ledger.checkpoint import CheckpointError, SignedCheckpoint
from smart.ledger.entry import Entry, EntryError
from smart.ledger.trust import Trust

FORMAT = "smart-ledger-proof/v1"
_FIELDS = {"format", "index", "entry", "inclusion_proof", "checkpoint", "key_ids"}


class BundleError(ValueError):
    """A bundle that does not prove what it claims; ``part`` names the part of the bundle at fault."""

    def __init__(self, part: str, message: str) -> None:
        super().__init__(f"{part}: {message}")
        self.part = part


@dataclass(frozen=True, slots=True)
class ProofBundle:
    index: int
    entry: bytes
    inclusion_proof: tuple[bytes, ...]
    checkpoint: SignedCheckpoint
    log_key_id: str
    witness_key_ids: tuple[str, ...]

    def to_bytes(self) -> bytes:
        return rfc8785.dumps(
            {
                "format": FORMAT,
                "index": self.index,
                "entry": base64.b64encode(self.entry).decode(),
                "inclusion_proof": [base64.b64encode(h).decode() for h in self.inclusion_proof],
                "checkpoint": self.checkpoint.text(),
                "key_ids": {"log": self.log_key_id, "witnesses": list(self.witness_key_ids)},
            }
        )


@dataclass(frozen=True, slots=True)
class Verified:
    """What a bundle proved: this entry is at this index of the log of this size, seen by these witnesses."""

    entry: Entry
    index: int
    size: int
    origin: str
    witnesses: tuple[str, ...]


def make(
    *,
    index: int,
    entry: bytes,
    inclusion_proof: Sequence[bytes],
    checkpoint: SignedCheckpoint,
    log_key: VerifyingKey,
    witnesses: Iterable[VerifyingKey],
) -> ProofBundle:
    cosigners = {s.name for s in checkpoint.signatures if s.is_cosignature}
    ids = tuple(sorted(w.key_id for w in witnesses if w.name in cosigners))
    return ProofBundle(index, entry, tuple(inclusion_proof), checkpoint, log_key.key_id, ids)


def verify(raw: bytes, trust: Trust, *, min_witnesses: int = 0) -> Verified:
    """Check a bundle offline against ``trust``; :class:`BundleError` names the part at fault.

    The checkpoint must be signed by the trust's log key and be of its origin; cosignatures
    count only from the trust's witnesses, each once (lines from other keys are ignored).
    """
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise BundleError("bundle", f"not JSON: {err}") from err
    if not isinstance(body, dict) or set(body) != _FIELDS:
        raise BundleError("bundle", f"must be an object with exactly the fields {sorted(_FIELDS)}")
    try:
        canonical = rfc8785.dumps(body)
    except (rfc8785.CanonicalizationError, ValueError) as err:
        raise BundleError("bundle", f"cannot be canonical JSON: {err}") from err
    if canonical != raw:
        raise BundleError(
            "bundle", "is not in canonical JSON (RFC 8785) form: it was altered after it was made"
        )
    if body["format"] != FORMAT:
        raise BundleError("format", f"expected {FORMAT!r}, got {body['format']!r}")

    key_ids = body["key_ids"]
    if not isinstance(key_ids, dict) or set(key_ids) != {"log", "witnesses"}:
        raise BundleError("key_ids", "must name the log key and the witness keys")
    if key_ids["log"] != trust.log.key_id:
        raise BundleError(
            "key_ids.log",
            f"the bundle names log key {key_ids['log']!r}; the trusted log {trust.origin} has key "
            f"{trust.log.name} ({trust.log.key_id})",
        )
    if not isinstance(key_ids["witnesses"], list) or not all(
        isinstance(k, str) for k in key_ids["witnesses"]
    ):
        raise BundleError("key_ids.witnesses", "must be a list of key ids")

    if not isinstance(body["checkpoint"], str):
        raise BundleError("checkpoint", "must be a signed note")
    try:
        signed = SignedCheckpoint.parse(body["checkpoint"])
        # Only the trusted log's key, for the trusted origin; only trusted witnesses count.
        cosigned = signed.verify(trust.log, trust.witnesses.values(), origin=trust.origin)
    except CheckpointError as err:
        raise BundleError("checkpoint", str(err)) from err
    if len(cosigned) < min_witnesses:
        raise BundleError(
            "checkpoint",
            f"cosigned by {len(cosigned)} distinct trusted witnesses; {min_witnesses} required",
        )

    entry_raw = _b64(body["entry"], "entry")
    try:
        entry = Entry.from_bytes(entry_raw, canonical=True)
    except EntryError as err:
        raise BundleError("entry", str(err)) from err
    index = body["index"]
    size = signed.checkpoint.size
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < size:
        raise BundleError("index", f"must be an integer below the checkpoint's size {size}, got {index!r}")
    if not isinstance(body["inclusion_proof"], list):
        raise BundleError("inclusion_proof", "must be a list of hashes")
    proof = [_b64(h, f"inclusion_proof[{i}]") for i, h in enumerate(body["inclusion_proof"])]
    try:
        merkle.verify_inclusion(index, size, merkle.leaf_hash(entry_raw), proof, signed.checkpoint.root)
    except merkle.ProofError as err:
        raise BundleError(
            "inclusion_proof", f"does not prove the entry at index {index} under the checkpoint's root: {err}"
        ) from err
    return Verified(entry, index, size, signed.checkpoint.origin, tuple(cosigned))


def _b64(value: Any, part: str) -> bytes:
    if not isinstance(value, str):
        raise BundleError(part, "must be base64 text")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as err:
        raise BundleError(part, "is not base64") from err
    if base64.b64encode(raw).decode() != value:
        raise BundleError(part, "is not canonical base64")
    return raw
