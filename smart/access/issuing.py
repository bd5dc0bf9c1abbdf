"""From a derived standing (or an explicit grant) to a credential ready to sign.

A credential never outlives what backs it: a certified credential issued
today expires no later than the end of the day its near-vision exam, its
recertification or its lapse falls due (:mod:`smart.intervals`: current
through the due day). So a station that never hears from the hub again
still refuses the inspector the day after the eye exam runs out.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from smart import intervals
from smart.access.credential import Credential, Kind
from smart.access.derive import Standing


class NotCurrentError(ValueError):
    """The records do not support the credential asked for; the message says why."""


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=UTC)


def new_credential(
    *,
    subject: str,
    kind: Kind,
    scope: Mapping[str, str],
    now: datetime,
    expires_at: datetime,
    issuer_key_id: str,
    not_before: datetime | None = None,
) -> Credential:
    return Credential(
        credential_id=str(uuid.uuid4()),
        subject=subject,
        kind=kind,
        scope=scope,
        issued_at=now,
        not_before=not_before or now,
        expires_at=expires_at,
        issuer_key_id=issuer_key_id,
    )


def from_standing(
    standing: Standing,
    *,
    subject: str,
    now: datetime,
    lifetime: timedelta,
    issuer_key_id: str,
    zone: tzinfo = UTC,
) -> Credential:
    """A credential for a current standing, expiring at ``now + lifetime`` or when its backing runs out.

    Its backing runs out at the end of ``standing.valid_until`` in ``zone``, the shop's time zone.
    """
    if not standing.current:
        raise NotCurrentError(
            f"{standing.describe()} is {standing.status.value}: " + "; ".join(standing.reasons)
        )
    expires_at = now + lifetime
    if standing.valid_until is not None:
        expires_at = min(expires_at, intervals.end_of_day(standing.valid_until, zone))
    return new_credential(
        subject=subject,
        kind=standing.kind,
        scope=standing.scope,
        now=now,
        expires_at=expires_at,
        issuer_key_id=issuer_key_id,
    )
