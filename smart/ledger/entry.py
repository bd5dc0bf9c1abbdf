"""A ledger entry: one thing that happened at one node, as canonical JSON bytes kept verbatim.

The bytes are RFC 8785 (JCS) canonical JSON, so the same facts always give
the same bytes and the same SHA-256 on every machine. The bytes, not the
parsed fields, are what is stored, hashed, shipped and proven: parsing is
only ever a view of them. Each entry names the hash of its node's previous
entry (``prev``), so a node's entries form a chain that a single signature
over its head covers.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import rfc8785

#: ``prev`` of a node's first entry: no entry came before it.
GENESIS = bytes(32)

#: The top-level fields of an entry; JCS orders them by code point, as here.
FIELDS = ("actor", "contract", "data", "kind", "node", "node_seq", "prev", "subject", "ts")

_FIELD_SET = frozenset(FIELDS)

_NODE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_KIND = re.compile(r"^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)+$")
_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

# The tail of an entry from its top-level ``node`` key on. After ``node`` come only
# ``node_seq`` (a number) and strings, and a ``"`` inside a JSON string is always
# escaped, so the last ``"node":`` in canonical bytes is the top-level one.
_CHAIN_TAIL = re.compile(
    rb'"node":"([a-z0-9][a-z0-9._-]{0,62})","node_seq":(0|[1-9][0-9]{0,17}),"prev":"([0-9a-f]{64})","subject":"'
)


class EntryError(ValueError):
    """Entry bytes or fields that are not a valid ledger entry; the message says which field and why."""


def utc_now() -> str:
    """The current time as entries carry it: UTC, microseconds, ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def valid_node(node: str) -> bool:
    return bool(_NODE.match(node))


def entry_hash(raw: bytes) -> bytes:
    """SHA-256 of the entry bytes: what ``prev`` and a chain head name."""
    return hashlib.sha256(raw).digest()


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry: its canonical bytes (``raw``) and the fields read from them."""

    node: str
    node_seq: int
    prev: bytes
    ts: str
    actor: str
    kind: str
    subject: str
    data: Mapping[str, Any]
    contract: str | None
    raw: bytes = field(repr=False)
    hash: bytes = field(repr=False)

    @classmethod
    def create(
        cls,
        *,
        node: str,
        node_seq: int,
        prev: bytes,
        kind: str,
        subject: str,
        data: Mapping[str, Any],
        actor: str,
        contract: str | None = None,
        ts: str | None = None,
    ) -> Entry:
        """Build an entry from its fields, checking each, and encode it canonically."""
        body = {
            "actor": actor,
            "contract": contract,
            "data": dict(data),
            "kind": kind,
            "node": node,
            "node_seq": node_seq,
            "prev": prev.hex() if isinstance(prev, bytes) else prev,
            "subject": subject,
            "ts": ts if ts is not None else utc_now(),
        }
        _check_fields(body, where=f"entry {node}#{node_seq}")
        try:
            raw = canonical_json(body)
        except (rfc8785.CanonicalizationError, TypeError, ValueError) as err:
            raise EntryError(f"entry {node}#{node_seq} ({kind}): not canonical JSON: {err}") from err
        return cls._from_body(body, raw)

    @classmethod
    def from_bytes(cls, raw: bytes, *, canonical: bool = True) -> Entry:
        """Read entry bytes, refusing anything that is not a well-formed entry.

        With ``canonical`` the bytes must also be exactly the RFC 8785 encoding
        of what they say (costly: a full re-encode), so no two byte strings
        can claim the same entry.
        """
        try:
            # orjson: strict RFC 8259 (no NaN, valid UTF-8 only), and about three times as fast as
            # the standard library's decoder, which the hub notices taking a station's backlog.
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as err:
            raise EntryError(f"entry bytes are not JSON: {err}") from err
        if not isinstance(body, dict):
            raise EntryError("entry bytes are not a JSON object")
        _check_fields(body)
        if canonical:
            why = not_canonical(raw, body)
            if why is not None:
                raise EntryError(f"{_where(body, None)}: not RFC 8785 canonical JSON: {why}")
        return cls._from_body(body, bytes(raw))

    @classmethod
    def _from_body(cls, body: dict[str, Any], raw: bytes) -> Entry:
        return cls(  # positionally, in the order of the fields (the hub builds thousands a second)
            body["node"],
            body["node_seq"],
            bytes.fromhex(body["prev"]),
            body["ts"],
            body["actor"],
            body["kind"],
            body["subject"],
            body["data"],
            body["contract"],
            raw,
            hashlib.sha256(raw).digest(),
        )

    def as_json(self) -> dict[str, Any]:
        """The fields as plain JSON values (``prev`` as hex), for people and web pages."""
        return json.loads(self.raw)  # type: ignore[no-any-return]


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of ``value``; the standard library's encoder where it provably agrees.

    For JSON of strings, safe integers, booleans and nulls with ASCII keys,
    JCS and ``json.dumps(sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)`` produce the same bytes (same escapes, same order,
    same integers), and the latter is several times faster, which a node
    appending thousands of entries a second notices. Anything else (floats,
    non-ASCII keys, big integers) goes to the ``rfc8785`` encoder.
    """
    if _plain(value):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    return rfc8785.dumps(value)


# A number that might not be a safe integer (a fraction, an exponent, 16+ digits), or the same bytes
# inside a string (which only sends the entry to the exact check). Looked for in ``data`` alone: the
# other fields are strings (timestamps, hashes) and ``node_seq``, an integer by its field check.
_MAYBE_NOT_SAFE_INT = re.compile(rb"[0-9][.eE]")  # integers past 2^53: OPT_STRICT_INTEGER refuses them


def not_canonical(raw: bytes, body: Any) -> str | None:
    """Why ``raw`` (which parsed as ``body``) is not the RFC 8785 encoding of it; ``None`` if it is.

    Two readers must never disagree on what an entry says: a duplicated key (one reader keeps
    the first, another the last), a number in another form, whitespace or another key order
    all let the same bytes be read two ways or the same facts be hashed two ways.

    The quick test: orjson's sorted compact encoding of ``body`` equals ``raw``, for an entry
    of ASCII with no number but safe integers. There orjson and JCS agree byte for byte (same
    escapes, code-point key order, integers as digits); a parsed duplicate key has lost one of
    its copies, so it can never pass. Anything else gets the exact, slower comparison.
    """
    # The first ``"data":`` is the top-level key (the strings before it have their quotes
    # escaped); the last ``"node":`` ends data and kind (see ``_CHAIN_TAIL``).
    data_at, tail_at = raw.find(b'"data":'), raw.rfind(b'"node":')
    if (
        0 < data_at < tail_at
        and raw.isascii()
        and _MAYBE_NOT_SAFE_INT.search(raw, data_at, tail_at) is None
        and _orjson_sorted(body) == raw
    ):
        return None
    try:
        again = canonical_json(body)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as err:
        return f"cannot be encoded canonically: {err}"
    if again == raw:
        return None
    duplicate = _duplicate_key(raw)
    if duplicate is not None:
        return duplicate
    at = next(
        (i for i, (a, b) in enumerate(zip(raw, again, strict=False)) if a != b), min(len(raw), len(again))
    )
    return (
        f"byte {at} is {raw[at : at + 12]!r}, the canonical form has {again[at : at + 12]!r} there "
        "(whitespace, key order or number form)"
    )


def _orjson_sorted(body: Any) -> bytes | None:
    try:
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER)
    except orjson.JSONEncodeError:  # an integer past 2^53: JCS writes it as a double, to the exact check
        return None


def _duplicate_key(raw: bytes) -> str | None:
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in items:
            if key in seen and not found:
                found.append(key)
            seen.add(key)
        return dict(items)

    try:
        json.loads(raw, object_pairs_hook=pairs)
    except ValueError:
        return None
    return f"key {found[0]!r} appears twice in one object (readers would disagree on it)" if found else None


def _plain(value: Any) -> bool:
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-(2**53) < value < 2**53)
    if kind is dict:
        return all(type(k) is str and k.isascii() and _plain(v) for k, v in value.items())
    if kind is list:
        return all(_plain(v) for v in value)
    return False


def chain_fields(raw: bytes) -> tuple[str, int, bytes]:
    """``(node, node_seq, prev)`` of entry bytes without parsing the whole entry.

    A verifier re-deriving a million links cannot afford a full JSON parse
    of each; this reads the three fields from the canonical tail. It relies
    on the bytes having been checked as a canonical entry when they were
    ingested, and raises :class:`EntryError` if the tail is not as a
    canonical entry has it.
    """
    at = raw.rfind(b'"node":')
    match = _CHAIN_TAIL.match(raw, at) if at > 0 else None
    if match is None or not raw.startswith(b'{"actor":"') or not raw.endswith(b'"}'):
        raise EntryError("entry bytes do not have the canonical shape of an entry")
    return match.group(1).decode(), int(match.group(2)), bytes.fromhex(match.group(3).decode())


def _check_fields(body: Mapping[str, Any], *, where: str | None = None) -> None:
    """Each field as an entry has it; ``where`` (else the entry's node#seq) opens the error.

    Written for the hub, which checks every entry of every station's backlog: the message is
    built only on failure.
    """
    if body.keys() != _FIELD_SET:
        keys = set(body)
        missing = sorted(set(FIELDS) - keys)
        extra = sorted(keys - set(FIELDS))
        raise EntryError(f"{_where(body, where)}: fields missing {missing} / unexpected {extra}")
    node, seq, prev, ts, kind = body["node"], body["node_seq"], body["prev"], body["ts"], body["kind"]
    actor, subject, contract = body["actor"], body["subject"], body["contract"]
    if not isinstance(node, str) or not _NODE.match(node):
        raise EntryError(
            f"{_where(body, where)}: node must be lower-case letters, digits, '.', '_' or '-' (got {node!r})"
        )
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**53:
        raise EntryError(f"{_where(body, where)}: node_seq must be an integer from 0 to 2^53-1 (got {seq!r})")
    if not isinstance(prev, str) or not _HEX64.match(prev):
        raise EntryError(f"{_where(body, where)}: prev must be 64 lower-case hex digits")
    if not isinstance(ts, str) or not _TS.match(ts):
        raise EntryError(
            f"{_where(body, where)}: ts must be UTC with microseconds, e.g. 2026-01-31T12:00:00.000000Z"
        )
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise EntryError(
            f"{_where(body, where)}: kind must be dotted words, e.g. gate.decision (got {kind!r})"
        )
    if not isinstance(actor, str) or not actor:
        raise EntryError(f"{_where(body, where)}: actor must be a non-empty string")
    if not isinstance(subject, str) or not subject:
        raise EntryError(f"{_where(body, where)}: subject must be a non-empty string")
    if contract is not None and (not isinstance(contract, str) or not contract):
        raise EntryError(f"{_where(body, where)}: contract must be the revision in force (a string) or null")
    if not isinstance(body["data"], dict):
        raise EntryError(f"{_where(body, where)}: data must be a JSON object")


def _where(body: Mapping[str, Any], where: str | None) -> str:
    return where if where is not None else f"entry {body.get('node')!r}#{body.get('node_seq')!r}"
