"""Checkpoints: the log's size and root in C2SP ``tlog-checkpoint`` form, as signed notes.

A checkpoint is three lines (origin, tree size, base64 root hash) signed in
the C2SP ``signed-note`` format: a blank line, then one line per signature,
``— <key name> <base64(key hash ‖ signature)>``. The hub signs with an
Ed25519 note signature; witnesses add C2SP ``tlog-cosignature/v1`` lines
(key hash ‖ 8-byte timestamp ‖ signature over ``cosignature/v1``, the time
and the checkpoint). Any tool that speaks those formats can read ours.

The hub's signer refuses to sign a checkpoint that is not consistent with the
last one it signed: a log that signed two views of history would be caught
by any witness, and the hub should not be the one to make that mistake.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from smart.keys import SigningKey, VerifyingKey
from smart.ledger import merkle

_ED25519 = b"\x01"
_COSIGNATURE_V1 = b"\x04"
_DASH = "\u2014 "
#: C2SP tlog-checkpoint: the size is ASCII decimal, no leading zero (``str.isdigit`` takes any digits).
_SIZE = re.compile(r"(0|[1-9][0-9]{0,18})", re.ASCII)
#: Go's note package refuses notes with more signature lines than this.
MAX_SIGNATURES = 100


class CheckpointError(ValueError):
    """A checkpoint or its note that cannot be read or does not verify; the message says which line."""


class InconsistentCheckpoint(CheckpointError):
    """A checkpoint that would contradict the history already signed."""


def note_key_hash(name: str, public: bytes, *, cosignature: bool = False) -> bytes:
    """The 4-byte key hash of a signed-note signature line (C2SP signed-note / tlog-cosignature)."""
    kind = _COSIGNATURE_V1 if cosignature else _ED25519
    return hashlib.sha256(name.encode() + b"\n" + kind + public).digest()[:4]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a checkpoint says: which log, how many entries, which root."""

    origin: str
    size: int
    root: bytes

    def body(self) -> bytes:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n".encode()

    @classmethod
    def from_body(cls, body: bytes) -> Checkpoint:
        try:
            lines = body.decode("utf-8", errors="strict").split("\n")
        except UnicodeDecodeError as err:
            raise CheckpointError(f"checkpoint is not UTF-8: {err}") from err
        if len(lines) != 4 or lines[3] != "":
            raise CheckpointError("checkpoint body must be exactly origin, size and root hash lines")
        origin, size_text, root_text = lines[:3]
        if not origin:
            raise CheckpointError("checkpoint origin line (line 1) is empty")
        if not _SIZE.fullmatch(size_text) or int(size_text) >= 2**63:
            raise CheckpointError(
                f"checkpoint size line (line 2) must be ASCII decimal digits with no leading zero, "
                f"got {size_text!r}"
            )
        root = _b64(root_text, "checkpoint root hash")
        if len(root) != 32:
            raise CheckpointError("checkpoint root hash is not 32 bytes")
        return cls(origin, int(size_text), root)


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: the signer's name, its 4-byte key hash and the rest of the line's bytes."""

    name: str
    key_hash: bytes
    payload: bytes  # the Ed25519 signature; for a cosignature, an 8-byte timestamp then the signature

    def line(self) -> str:
        return f"{_DASH}{self.name} {base64.b64encode(self.key_hash + self.payload).decode()}\n"

    @property
    def is_cosignature(self) -> bool:
        return len(self.payload) == 72

    @property
    def timestamp(self) -> int | None:
        return struct.unpack(">Q", self.payload[:8])[0] if self.is_cosignature else None


def _cosigned_message(checkpoint: Checkpoint, timestamp: int) -> bytes:
    return b"cosignature/v1\ntime " + str(timestamp).encode() + b"\n" + checkpoint.body()


def sign(checkpoint: Checkpoint, key: SigningKey) -> NoteSignature:
    """The log's own Ed25519 note signature over the checkpoint."""
    public = key.verifying.raw
    return NoteSignature(key.name, note_key_hash(key.name, public), key.sign(checkpoint.body()))


def cosign(checkpoint: Checkpoint, key: SigningKey, *, timestamp: int | None = None) -> NoteSignature:
    """A witness's ``cosignature/v1`` over the checkpoint at ``timestamp`` (now by default)."""
    when = int(time.time()) if timestamp is None else timestamp
    public = key.verifying.raw
    signature = key.sign(_cosigned_message(checkpoint, when))
    return NoteSignature(
        key.name, note_key_hash(key.name, public, cosignature=True), struct.pack(">Q", when) + signature
    )


def signature_verifies(checkpoint: Checkpoint, signature: NoteSignature, key: VerifyingKey) -> bool:
    """True if ``signature`` is ``key``'s (by name and key hash) and covers ``checkpoint``."""
    if signature.name != key.name:
        return False
    if signature.is_cosignature:
        timestamp = signature.timestamp
        assert timestamp is not None
        return signature.key_hash == note_key_hash(key.name, key.raw, cosignature=True) and key.verify(
            signature.payload[8:], _cosigned_message(checkpoint, timestamp)
        )
    return (
        len(signature.payload) == 64
        and signature.key_hash == note_key_hash(key.name, key.raw)
        and key.verify(signature.payload, checkpoint.body())
    )


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint with its signature lines: the log's first, then witnesses' cosignatures."""

    checkpoint: Checkpoint
    signatures: tuple[NoteSignature, ...]

    def text(self) -> str:
        """The signed note, byte for byte as C2SP writes it."""
        return self.checkpoint.body().decode() + "\n" + "".join(s.line() for s in self.signatures)

    @classmethod
    def parse(cls, text: str) -> SignedCheckpoint:
        body, sep, rest = text.partition("\n\n")
        if not sep:
            raise CheckpointError("signed note has no blank line between checkpoint and signatures")
        own = (body + "\n").encode()
        checkpoint = Checkpoint.from_body(own)
        if checkpoint.body() != own:  # signatures are over the note's own bytes: they must be these
            raise CheckpointError("checkpoint text is not in its one canonical form")
        if not rest.endswith("\n"):
            raise CheckpointError("signed note does not end with a newline")
        signatures: list[NoteSignature] = []
        for number, line in enumerate(rest[:-1].split("\n"), start=1):
            if not line.startswith(_DASH):
                raise CheckpointError(f"signature line {number} does not start with '— '")
            name, space, encoded = line[len(_DASH) :].partition(" ")
            if not space or not name or " " in encoded:
                raise CheckpointError(f"signature line {number} is not '— <name> <signature>'")
            if "+" in name:
                raise CheckpointError(f"signature line {number}: a key name may not hold '+'")
            raw = _b64(encoded, f"signature line {number}")
            if len(raw) < 5:
                raise CheckpointError(f"signature line {number} ({name}) is too short to be a signature")
            signatures.append(NoteSignature(name, raw[:4], raw[4:]))
            if len(signatures) > MAX_SIGNATURES:
                raise CheckpointError(f"signed note has more than {MAX_SIGNATURES} signature lines")
        if not signatures:
            raise CheckpointError("signed note has no signature lines")
        return cls(checkpoint, tuple(signatures))

    def with_signature(self, signature: NoteSignature) -> SignedCheckpoint:
        others = tuple(
            s for s in self.signatures if (s.name, s.key_hash) != (signature.name, signature.key_hash)
        )
        return replace(self, signatures=(*others, signature))

    def verify(
        self, log_key: VerifyingKey, witnesses: Iterable[VerifyingKey] = (), *, origin: str | None = None
    ) -> list[str]:
        """Check the note as C2SP signed-note says; return the distinct witnesses whose cosignature holds.

        Only ``log_key`` may sign for the log (an Ed25519 note signature, key type 0x01), and only
        ``witnesses`` may cosign (``cosignature/v1``, key type 0x04): a key is looked up by its
        name and its key hash, which binds the key's type, so no key passes for another role.
        As the spec (and Go's ``note.Open``) has it, a line from a key we were not given is
        ignored, a known key's repeated line counts once, and a known key's line that does not
        verify is an error. With ``origin``, the checkpoint must be that log's.
        """
        if origin is not None and self.checkpoint.origin != origin:
            raise CheckpointError(
                f"checkpoint is for log {self.checkpoint.origin!r}, not the trusted log {origin!r}"
            )
        log_id = (log_key.name, note_key_hash(log_key.name, log_key.raw))
        keys = {log_id: log_key}
        for witness in witnesses:
            keys.setdefault(
                (witness.name, note_key_hash(witness.name, witness.raw, cosignature=True)), witness
            )
        seen: set[tuple[str, bytes]] = set()
        cosigned: list[str] = []
        for number, signature in enumerate(self.signatures, start=1):
            known = (signature.name, signature.key_hash)
            key = keys.get(known)
            if key is None or known in seen:
                continue  # unknown key: not ours to judge; a repeat: each key counts once
            seen.add(known)
            if not signature_verifies(self.checkpoint, signature, key):
                raise CheckpointError(f"signature line {number} by {signature.name} does not verify")
            if known != log_id:
                cosigned.append(signature.name)
        if log_id not in seen:
            raise CheckpointError(
                f"checkpoint is not signed by the log key {log_key.name} ({log_key.key_id})"
            )
        return cosigned


class CheckpointSigner:
    """The hub's signer: signs a new checkpoint only if it provably extends the last one it signed."""

    def __init__(self, key: SigningKey, *, origin: str, last: Checkpoint | None = None) -> None:
        self.key = key
        self.origin = origin
        self.last = last

    def sign(self, checkpoint: Checkpoint, consistency_proof: Sequence[bytes]) -> SignedCheckpoint:
        """Sign ``checkpoint`` if ``consistency_proof`` shows it extends the last one signed; else refuse."""
        if checkpoint.origin != self.origin:
            raise InconsistentCheckpoint(f"checkpoint is for log {checkpoint.origin!r}, not {self.origin!r}")
        if self.last is not None:
            try:
                merkle.verify_consistency(
                    self.last.size, checkpoint.size, self.last.root, checkpoint.root, consistency_proof
                )
            except merkle.ProofError as err:
                raise InconsistentCheckpoint(
                    f"refusing to sign size {checkpoint.size}: not consistent with the signed size "
                    f"{self.last.size}: {err}"
                ) from err
        signed = SignedCheckpoint(checkpoint, (sign(checkpoint, self.key),))
        self.last = checkpoint
        return signed


def _b64(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as err:
        raise CheckpointError(f"{what} is not base64") from err
    if base64.b64encode(raw).decode() != text:
        raise CheckpointError(f"{what} is not canonical base64")
    return raw
