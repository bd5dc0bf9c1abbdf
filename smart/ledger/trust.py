"""What a verifier trusts, and for what: the log's key and origin, the witnesses, the nodes.

A key is trusted for one role only. The **log** key (pinned by its name and
the log's origin, both compared with every checkpoint) is the only key that
may sign checkpoints; a **witness** key only adds cosignatures; a **node** key
only signs its own chain heads. A verifier given a bag of keys with no roles
could be told by any of them what the log says (a station's node key signing
a checkpoint, say); so every verifier (``smart verify``, ``bundle.verify``,
the station's witness, ``smart ledger verify``) takes a :class:`Trust`.

The keys that are trusted are established by the hub's administrator, never
by a row the application role can insert: a node or witness key counts only
with a :class:`Registration` signed by the administrator's key
(``ledger-admin`` in the keys directory), whose public half verifiers are
provisioned with. The trust file (``smart ledger keys``) lists only keys so
established, each with its role.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from smart.keys import KeyFileError, KeyStore, SigningKey, VerifyingKey

#: The administrator's key: it signs registrations of node and witness keys, and nothing else.
ADMIN_KEY = "ledger-admin"
#: The administrator's decisions (on alarms) go on the ledger as this node's entries, signed with a
#: key of their own: the administrator's key signs registrations and decisions only.
ADMIN_NODE = "ledger-admin"
ADMIN_NODE_KEY = "ledger-admin-log"
#: The log's key in the keys directory (the hub's).
LOG_KEY = "hub"
#: The origin line of the hub's checkpoints (C2SP: a schema-less URL naming the log).
ORIGIN = "smart.local/ledger"
FORMAT = "smart-ledger-trust/v1"
REGISTRATION = "smart-ledger-registration/v1"

Role = Literal["node", "witness"]


class TrustError(ValueError):
    """A trust file or registration that cannot be read or does not hold; the message says where."""


@dataclass(frozen=True, slots=True)
class Registration:
    """The administrator's statement "``key`` is trusted as ``role`` ``name``", signed by ``ledger-admin``."""

    role: Role
    name: str
    key: VerifyingKey

    def statement(self) -> bytes:
        """The signed bytes: canonical JSON, so one statement has one encoding."""
        return rfc8785.dumps(
            {
                "format": REGISTRATION,
                "role": self.role,
                "name": self.name,
                "key_name": self.key.name,
                "ed25519": base64.b64encode(self.key.raw).decode(),
            }
        )

    def sign(self, admin: SigningKey) -> bytes:
        if admin.name != ADMIN_KEY:
            raise TrustError(f"registrations are signed by the {ADMIN_KEY} key, not {admin.name!r}")
        return admin.sign(self.statement())

    def verifies(self, signature: bytes, admin: VerifyingKey) -> bool:
        return admin.verify(signature, self.statement())


@dataclass(frozen=True, slots=True)
class Trust:
    """The keys a verifier holds, by role. ``nodes`` maps a node to its head key; ``witnesses`` by name."""

    log: VerifyingKey
    origin: str = ORIGIN
    witnesses: Mapping[str, VerifyingKey] = field(default_factory=lambda: MappingProxyType({}))
    nodes: Mapping[str, VerifyingKey] = field(default_factory=lambda: MappingProxyType({}))

    def to_bytes(self) -> bytes:
        body = {
            "format": FORMAT,
            "log": {"origin": self.origin, **self.log.to_json()},
            "witnesses": [self.witnesses[name].to_json() for name in sorted(self.witnesses)],
            "nodes": [{"node": node, **self.nodes[node].to_json()} for node in sorted(self.nodes)],
        }
        return json.dumps(body, indent=2).encode() + b"\n"

    @classmethod
    def from_bytes(cls, raw: bytes, *, where: str = "trust file") -> Trust:
        try:
            body: Any = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as err:
            raise TrustError(f"{where}: not JSON: {err}") from err
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise TrustError(
                f"{where}: not a {FORMAT} file (a list of keys without roles is not trusted: "
                "export one with `smart ledger keys`)"
            )
        log = body.get("log")
        if not isinstance(log, dict) or not isinstance(log.get("origin"), str) or not log["origin"]:
            raise TrustError(f"{where}: log: must name the log's key and its origin")
        witnesses: dict[str, VerifyingKey] = {}
        nodes: dict[str, VerifyingKey] = {}
        for at, item in enumerate(_list(body, "witnesses", where)):
            key = _key(item, f"{where}: witnesses[{at}]")
            witnesses[key.name] = key
        for at, item in enumerate(_list(body, "nodes", where)):
            key = _key(item, f"{where}: nodes[{at}]")
            if not isinstance(item.get("node"), str):
                raise TrustError(f"{where}: nodes[{at}].node: must name the node")
            nodes[item["node"]] = key
        return cls(
            _key(log, f"{where}: log"), log["origin"], MappingProxyType(witnesses), MappingProxyType(nodes)
        )

    def roles_of(self, key: VerifyingKey) -> list[str]:
        """Every role ``key`` (by its bytes) holds here: a key with two roles is a provisioning mistake."""
        roles = ["log"] if key.raw == self.log.raw else []
        roles += [f"witness {n}" for n, k in self.witnesses.items() if k.raw == key.raw]
        roles += [f"node {n}" for n, k in self.nodes.items() if k.raw == key.raw]
        return roles


def load(path: Path, *, origin: str = ORIGIN) -> Trust:
    """A trust file, or a provisioned keys directory (``hub.pub`` the log, ``witness-*.pub`` witnesses).

    A keys directory is the administrator's own act of provisioning: its ``hub`` key is the
    log's, its ``witness-…`` keys are witnesses; no other key in it is trusted for anything a
    bundle proves.
    """
    if path.is_dir():
        store = KeyStore(path)
        try:
            log = store.verifying_key(LOG_KEY)
            witnesses = {p.stem: store.verifying_key(p.stem) for p in sorted(path.glob("witness-*.pub"))}
        except KeyFileError as err:
            raise TrustError(f"keys directory {path}: {err}") from err
        return Trust(log, origin, MappingProxyType(witnesses))
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise TrustError(f"cannot read the trust file {path}: {err}") from err
    return Trust.from_bytes(raw, where=str(path))


def _list(body: Mapping[str, Any], name: str, where: str) -> list[dict[str, Any]]:
    items = body.get(name, [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise TrustError(f"{where}: {name}: must be a list of keys")
    return items


def _key(item: Mapping[str, Any], where: str) -> VerifyingKey:
    try:
        raw = base64.b64decode(str(item["ed25519"]), validate=True)
        key = VerifyingKey(str(item["name"]), Ed25519PublicKey.from_public_bytes(raw))
    except (KeyError, ValueError, binascii.Error) as err:
        raise TrustError(f"{where}: not an Ed25519 public key with a name: {err}") from err
    if "key_id" in item and item["key_id"] != key.key_id:
        raise TrustError(f"{where}: key_id {item['key_id']} does not match the key's bytes ({key.key_id})")
    return key
