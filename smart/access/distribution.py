"""The KV buckets stations mirror for access: issuers' public keys, revocations, each station's badges.

Layout (all JetStream KV buckets in the hub domain, mirrored by each station
into its own domain — see ``smart.bus.mirror``):

- ``access-keys``: key = issuer key id, value = ``VerifyingKey.to_json()``;
- ``access-revocations``: key = credential id, value =
  ``{"status": "revoked"|"suspended", "at": ISO-8601 UTC}``; a lifted
  suspension is a delete of the key. The hub's reason stays on the hub (it
  may name a person's health or conduct); the station says "revoked at …";
- ``access-station-<station>``: key = badge id, value =
  ``{"badge": id, "credentials": [token, …]}`` — only badges allowed at that
  station (holding an access credential for it), and only what enforcement
  needs: no name, no employee id, no address.

Each station's NATS user may read only the first two and its own
``access-station-<station>`` bucket (see ``stationauth``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.kv import KeyValue

from smart.access.credential import Reason, Revocation
from smart.access.verify import DEFAULT_CLOCK_SKEW, Verifier
from smart.bus import buckets
from smart.keys import VerifyingKey

KEYS_BUCKET = "access-keys"
REVOCATIONS_BUCKET = "access-revocations"
_BADGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def station_bucket(station: str) -> str:
    """The bucket of credentials for ``station``'s badges."""
    return f"access-station-{station}"


def station_buckets(station: str) -> tuple[str, ...]:
    """Every access bucket ``station`` mirrors (and may read)."""
    return (KEYS_BUCKET, REVOCATIONS_BUCKET, station_bucket(station))


def valid_badge(badge: str) -> bool:
    """Badge ids are the KV keys of a station's bucket, so they use only KV-safe characters."""
    return bool(_BADGE.match(badge))


@dataclass(frozen=True, slots=True)
class BadgeCredentials:
    """What a station holds for one badge: the tokens it will verify when that badge is scanned."""

    badge: str
    credentials: tuple[str, ...]

    def to_bytes(self) -> bytes:
        return json.dumps({"badge": self.badge, "credentials": list(self.credentials)}).encode()

    @classmethod
    def from_bytes(cls, value: bytes) -> BadgeCredentials:
        body = json.loads(value)
        return cls(badge=str(body["badge"]), credentials=tuple(str(t) for t in body["credentials"]))


def revocation_bytes(revocation: Revocation) -> bytes:
    return json.dumps({"status": revocation.status.value, "at": revocation.at.isoformat()}).encode()


def revocation_from(credential_id: str, value: bytes) -> Revocation:
    body = json.loads(value)
    return Revocation(
        credential_id=credential_id,
        status=Reason(body["status"]),
        at=datetime.fromisoformat(body["at"]),
        reason=str(body.get("reason", "")),
    )


async def bucket(js: JetStreamContext, name: str) -> KeyValue:
    """The hub's bucket ``name``, created (history 1, direct gets) if missing."""
    try:
        return await js.key_value(name)
    except nats.js.errors.BucketNotFoundError:
        return await js.create_key_value(KeyValueConfig(bucket=name, history=1, direct=True))


async def publish_keys(kv: KeyValue, keys: Iterable[VerifyingKey]) -> None:
    for key in keys:
        await kv.put(key.key_id, json.dumps(key.to_json()).encode())


async def publish_revocation(kv: KeyValue, revocation: Revocation) -> None:
    await kv.put(revocation.credential_id, revocation_bytes(revocation))


async def lift_revocation(kv: KeyValue, credential_id: str) -> None:
    """Remove a suspension from the list (a revocation is never lifted: issue a new credential)."""
    await kv.delete(credential_id)


async def publish_badges(kv: KeyValue, badges: Sequence[BadgeCredentials]) -> None:
    """Make the station bucket hold exactly ``badges``: put each, delete badges no longer allowed."""
    wanted = {b.badge: b for b in badges}
    for badge in wanted.values():
        await kv.put(badge.badge, badge.to_bytes())
    for key in await _keys(kv):
        if key not in wanted:
            await kv.delete(key)


async def _keys(kv: KeyValue) -> list[str]:
    return list(await buckets.live_entries(kv))


async def _entries(kv: KeyValue) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for key in await _keys(kv):
        try:
            entry = await kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            continue  # deleted between listing and reading
        if entry.value is not None:
            found[key] = entry.value
    return found


async def read_keys(kv: KeyValue) -> dict[str, VerifyingKey]:
    """The mirrored public keys by key id (each checked against its own id)."""
    keys = {}
    for key_id, value in (await _entries(kv)).items():
        key = VerifyingKey.from_json(json.loads(value))
        if key.key_id != key_id:
            raise ValueError(f"bucket {KEYS_BUCKET}: entry {key_id} holds key {key.key_id}")
        keys[key_id] = key
    return keys


async def read_revocations(kv: KeyValue) -> dict[str, Revocation]:
    return {cid: revocation_from(cid, value) for cid, value in (await _entries(kv)).items()}


async def read_badges(kv: KeyValue) -> dict[str, BadgeCredentials]:
    return {badge: BadgeCredentials.from_bytes(value) for badge, value in (await _entries(kv)).items()}


async def station_verifier(js: JetStreamContext, *, clock_skew: timedelta = DEFAULT_CLOCK_SKEW) -> Verifier:
    """A :class:`Verifier` over what ``js`` (a station's own JetStream domain) mirrors now.

    A node agent keeps it current by watching the two buckets and updating
    ``verifier.keys`` / ``verifier.revocations`` (plain dicts) in place.
    """
    keys = await read_keys(await js.key_value(KEYS_BUCKET))
    revocations = await read_revocations(await js.key_value(REVOCATIONS_BUCKET))
    return Verifier(keys=keys, revocations=revocations, clock_skew=clock_skew)
