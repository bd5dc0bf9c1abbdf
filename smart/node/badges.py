"""SMART-ID's signed badges at a station: issuer keys, revocations and credentials, verified offline.

SMART-ID (the Vault hub) publishes three buckets (:mod:`smart.access.distribution`):
its issuers' public keys, the revocation list, and per station the badges
allowed there with their signed credential tokens. The station's leaf
mirrors them into its own domain and :class:`StationBadges` keeps what they
hold in the node agent's store as well, so a restart with every hub down
still knows them.

The Gatekeeper asks :meth:`StationBadges.judge` at badge-in and job start:
the badge must hold an ``access`` credential for this station whose
signature verifies against a held issuer key, which is in its validity
window and not revoked or suspended. Personal data never comes here: a
token names a badge id, never a person.

**When it applies.** A floor without SMART-ID (the embedded demo, most
tests) has no issuer keys, and people are judged by their records alone.
From the first issuer key a station holds, every badge needs its signed
access credential, and that stays so: the requirement is remembered in
the store, so a bucket emptied or lost later refuses every badge (fail
closed) instead of quietly going back to records only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

import structlog

from smart.access import distribution
from smart.access.credential import Credential, Kind, Refusal, Revocation
from smart.access.verify import Verifier
from smart.contracts import engine
from smart.keys import VerifyingKey
from smart.node.store import StationStore

log = structlog.get_logger("smart.node.badges")

#: The rule id the Gatekeeper's reasons carry for a badge without a good signed credential.
RULE = "access.signed-badge"
#: Mirrored-items key under which the store remembers that this station requires signed badges.
_REQUIRED = ("access-required", "signed-badges")


class StationBadges:
    """The station's view of SMART-ID: keys, revocations, badges; :meth:`judge` a badge at a moment."""

    def __init__(self, station: str, store: StationStore) -> None:
        self.station = station
        self.store = store
        self.keys: dict[str, VerifyingKey] = {}
        self.revocations: dict[str, Revocation] = {}
        self.badges: dict[str, tuple[str, ...]] = {}
        self.verifier = Verifier(keys=self.keys, revocations=self.revocations)
        self.station_bucket = distribution.station_bucket(station)
        self.buckets = distribution.station_buckets(station)
        self._load()
        #: Signed badges are required here: an issuer key is, or once was, held (kept in the store).
        self.required = bool(self.keys) or self.store.mirrored(*_REQUIRED) is not None

    def _load(self) -> None:
        for bucket in self.buckets:
            for key, value in self.store.mirrored_items(bucket).items():
                self._apply(bucket, key, value)

    def apply(self, bucket: str, key: str, revision: int, value: bytes | None) -> bool:
        """One change of a mirrored access bucket, kept in the store; False if it was not newer."""
        if not self.store.put_mirrored(bucket, key, revision, value):
            return False
        self._apply(bucket, key, value)
        if self.keys and not self.required:
            self.store.put_mirrored(*_REQUIRED, 1, b"true")
            self.required = True
        return True

    def _apply(self, bucket: str, key: str, value: bytes | None) -> None:
        try:
            if bucket == distribution.KEYS_BUCKET:
                if value is None:
                    self.keys.pop(key, None)
                else:
                    verifying = VerifyingKey.from_json(json.loads(value))
                    if verifying.key_id != key:
                        raise ValueError(f"entry {key} holds key {verifying.key_id}")
                    self.keys[key] = verifying
            elif bucket == distribution.REVOCATIONS_BUCKET:
                if value is None:
                    self.revocations.pop(key, None)
                else:
                    self.revocations[key] = distribution.revocation_from(key, value)
            elif bucket == self.station_bucket:
                if value is None:
                    self.badges.pop(key, None)
                else:
                    self.badges[key] = distribution.BadgeCredentials.from_bytes(value).credentials
        except (ValueError, KeyError, TypeError, UnicodeError) as err:  # unreadable: as if absent
            log.error(
                "station.access_item_unreadable", station=self.station, bucket=bucket, key=key, error=str(err)
            )
            if bucket == distribution.KEYS_BUCKET:
                self.keys.pop(key, None)
            elif bucket == self.station_bucket:
                self.badges.pop(key, None)

    def judge(self, badge: str | None, now: datetime) -> tuple[engine.Reason, ...]:
        """Why ``badge`` may not be let in at ``now`` by its signed credentials (empty: it may)."""
        if not self.required or badge is None:
            return ()
        tokens = self.badges.get(badge, ())
        if not tokens:
            return (
                _reason(
                    f"badge {badge} holds no SMART-ID access credential for {self.station}",
                    badge=badge,
                ),
            )
        refusals: list[Refusal] = []
        for token in tokens:
            found = self.verifier.verify(token, now=now, station=self.station)
            if isinstance(found, Refusal):
                refusals.append(found)
            elif _grants_access(found, self.station):
                return ()
        if not refusals:
            return (
                _reason(
                    f"badge {badge}'s SMART-ID credentials grant no access to {self.station}",
                    badge=badge,
                ),
            )
        why = "; ".join(f"{r.reason.value}: {r.detail}" for r in refusals)
        return (
            _reason(
                f"badge {badge} has no valid SMART-ID access credential for {self.station} ({why})",
                badge=badge,
                refusals=[r.reason.value for r in refusals],
            ),
        )

    def summary(self) -> Mapping[str, Any]:
        return MappingProxyType(
            {
                "required": self.required,
                "keys": len(self.keys),
                "revocations": len(self.revocations),
                "badges": len(self.badges),
            }
        )


def _grants_access(credential: Credential, station: str) -> bool:
    return credential.kind is Kind.ACCESS and credential.scope.get("station") == station


def _reason(message: str, **values: Any) -> engine.Reason:
    return engine.Reason(RULE, message, MappingProxyType(values))
