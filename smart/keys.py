"""Ed25519 signing keys of hubs, stations and services, kept in the keys directory.

Every signer in SMART (the hub signing bundles and checkpoints, a station
signing its chain head and cosigning checkpoints, SMART-ID signing
credentials) holds one Ed25519 key pair, generated on first use and stored
as PEM with mode 0600 in a 0700 directory. A key is named by its role
(``hub``, ``station-pt-1``, ``smart-id``) and identified by a key id derived
from the public key, so a verifier never trusts a name alone.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


class KeyFileError(ValueError):
    """A key file is missing, unreadable or not an Ed25519 key; the message names the file."""


def key_id(public: Ed25519PublicKey) -> str:
    """The first 16 hex digits of SHA-256 over the raw public key: short, stable, not a name."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class VerifyingKey:
    """A public key as verifiers hold it: name, key id and raw bytes (base64 for JSON/KV)."""

    name: str
    public: Ed25519PublicKey

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    @property
    def raw(self) -> bytes:
        return self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            self.public.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "key_id": self.key_id, "ed25519": base64.b64encode(self.raw).decode()}

    @classmethod
    def from_json(cls, value: dict[str, str]) -> VerifyingKey:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(value["ed25519"]))
        key = cls(name=value["name"], public=public)
        if "key_id" in value and value["key_id"] != key.key_id:
            raise KeyFileError(
                f"public key {value['name']}: key_id {value['key_id']} does not match its bytes"
            )
        return key


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key with its name; never logged, never serialised except to its own file."""

    name: str
    private: Ed25519PrivateKey

    @property
    def verifying(self) -> VerifyingKey:
        return VerifyingKey(self.name, self.private.public_key())

    @property
    def key_id(self) -> str:
        return key_id(self.private.public_key())

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)

    @classmethod
    def generate(cls, name: str) -> SigningKey:
        return cls(name, Ed25519PrivateKey.generate())

    def __repr__(self) -> str:
        return f"SigningKey(name={self.name!r}, key_id={self.key_id!r})"


class KeyStore:
    """The keys directory: ``<name>.key`` (PEM, 0600) and ``<name>.pub`` (PEM) per key."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, name: str, suffix: str) -> Path:
        if not _NAME.match(name):
            raise KeyFileError(f"invalid key name {name!r}: use lower-case letters, digits, '.', '_' or '-'")
        return self.directory / f"{name}{suffix}"

    def signing_key(self, name: str) -> SigningKey:
        """Load the key ``name``, generating and storing it (0600) the first time."""
        path = self._path(name, ".key")
        if not path.exists():
            key = SigningKey.generate(name)
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            pem = key.private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return self.signing_key(name)  # another process generated it first
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
            self._path(name, ".pub").write_bytes(
                key.private.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
            return key
        try:
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as err:
            raise KeyFileError(f"cannot read signing key {path}: {err}") from err
        if not isinstance(private, Ed25519PrivateKey):
            raise KeyFileError(f"{path} is not an Ed25519 private key")
        return SigningKey(name, private)

    def verifying_key(self, name: str) -> VerifyingKey:
        path = self._path(name, ".pub")
        try:
            public = serialization.load_pem_public_key(path.read_bytes())
        except (OSError, ValueError) as err:
            raise KeyFileError(f"cannot read public key {path}: {err}") from err
        if not isinstance(public, Ed25519PublicKey):
            raise KeyFileError(f"{path} is not an Ed25519 public key")
        return VerifyingKey(name, public)
