"""Offline verification on a station: is this token a credential we accept here, now?

A station answers with nothing but what it mirrors from the hub: the issuers'
public keys and the revocation list. No call to any hub, so a station with
the hub down still admits the people it should and refuses the rest. The
order of the checks is the order a person fixes things in: a token that is
not ours (format, key, signature) first, then time (not yet valid, expired,
allowing the configured clock skew), then the revocation list, then whether
the credential is for this station at all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import structlog
from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import OKPKey

from smart.access import tokens
from smart.access.credential import Credential, Reason, Refusal, Revocation
from smart.keys import VerifyingKey

log = structlog.get_logger("smart.access.verify")

#: Clock skew a station tolerates by default between its clock and the hub's (a setting).
DEFAULT_CLOCK_SKEW = timedelta(seconds=120)


class _UnknownKey(Exception):
    def __init__(self, key_id: object) -> None:
        self.key_id = key_id


class Verifier:
    """Checks tokens against the mirrored public keys and revocation list of one station.

    ``keys`` and ``revocations`` are read at each call, so a station agent that
    keeps them up to date from its KV mirrors (by key id and by credential id)
    needs no other hook.
    """

    def __init__(
        self,
        *,
        keys: Mapping[str, VerifyingKey],
        revocations: Mapping[str, Revocation],
        clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
    ) -> None:
        self.keys = keys
        self.revocations = revocations
        self.clock_skew = clock_skew
        self._jwks: dict[str, tuple[VerifyingKey, OKPKey]] = {}

    def _jwk(self, key_id: object) -> OKPKey:
        if not isinstance(key_id, str):
            raise _UnknownKey(key_id)
        known = self.keys.get(key_id)
        if known is None:
            raise _UnknownKey(key_id)
        cached = self._jwks.get(key_id)
        if cached is None or cached[0] is not known:
            cached = (known, tokens.jwk(known))
            self._jwks[key_id] = cached
        return cached[1]

    def verify(self, token: str, *, now: datetime, station: str) -> Credential | Refusal:
        """The credential ``token`` carries if ``station`` should accept it at ``now``, else why not."""
        try:
            signed = jws.deserialize_compact(
                token, lambda obj: self._jwk(obj.headers().get("kid")), algorithms=[tokens.ALGORITHM]
            )
        except _UnknownKey as err:
            return Refusal(
                Reason.UNKNOWN_KEY, f"signed by key {err.key_id!r}, which this station does not hold"
            )
        except BadSignatureError:
            return Refusal(Reason.BAD_SIGNATURE, "the signature does not match the token's contents")
        except (JoseError, ValueError, UnicodeError) as err:
            return Refusal(Reason.MALFORMED, f"not a signed credential token ({type(err).__name__})")
        head = signed.headers()
        if head.get("typ") != tokens.TOKEN_TYPE:
            return Refusal(Reason.MALFORMED, f"token type {head.get('typ')!r} is not {tokens.TOKEN_TYPE}")
        try:
            values: Any = json.loads(signed.payload)
            if not isinstance(values, dict):
                raise tokens.TokenError("claims are not a JSON object")
            credential = tokens.from_claims(values, key_id=str(head["kid"]))
        except (ValueError, tokens.TokenError) as err:
            return Refusal(Reason.MALFORMED, str(err))
        return self.check(credential, now=now, station=station)

    def check(self, credential: Credential, *, now: datetime, station: str) -> Credential | Refusal:
        """Time, revocation list and station of a credential whose signature is already good."""
        if now.tzinfo is None:
            raise ValueError(
                "verify: 'now' must be timezone-aware (UTC); a station clock without a zone is ambiguous"
            )
        cid = credential.credential_id
        if now + self.clock_skew < credential.not_before:
            return Refusal(
                Reason.NOT_YET_VALID,
                f"{credential.describe()} is valid from {credential.not_before.isoformat()}",
                cid,
            )
        if now - self.clock_skew >= credential.expires_at:
            return Refusal(
                Reason.EXPIRED, f"{credential.describe()} expired at {credential.expires_at.isoformat()}", cid
            )
        revoked = self.revocations.get(cid)
        if revoked is not None and revoked.at <= now + self.clock_skew:
            return Refusal(
                revoked.status,
                f"{credential.describe()} was {revoked.status.value} at {revoked.at.isoformat()}"
                + (f": {revoked.reason}" if revoked.reason else ""),
                cid,
            )
        if credential.station is not None and credential.station != station:
            return Refusal(
                Reason.WRONG_STATION,
                f"{credential.describe()} is for station {credential.station}, not {station}",
                cid,
            )
        return credential


def verify(
    token: str,
    now: datetime,
    station: str,
    *,
    keys: Mapping[str, VerifyingKey],
    revocations: Mapping[str, Revocation],
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
) -> Credential | Refusal:
    """One-off :meth:`Verifier.verify` (a station agent keeps a :class:`Verifier` instead)."""
    return Verifier(keys=keys, revocations=revocations, clock_skew=clock_skew).verify(
        token, now=now, station=station
    )
