"""From a derived standing (or an explicit grant) to a credential ready to sign.

A credential never outlives what backs it: a certified credential issued
today expires no later than the day its near-vision exam, its
recertification or its lapse falls due. So a station that never hears from
the hub again still refuses the inspector on the day the eye exam runs out.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta

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
    standing: Standing, *, subject: str, now: datetime, lifetime: timedelta, issuer_key_id: str
) -> Credential:
    """A credential for a current standing, expiring at ``now + lifetime`` or when its backing falls due."""
    if not standing.current:
        raise NotCurrentError(
            f"{standing.describe()} is {standing.status.value}: " + "; ".join(standing.reasons)
        )
    expires_at = now + lifetime
    if standing.valid_until is not None:
        expires_at = min(expires_at, midnight(standing.valid_until))
    return new_credential(
        subject=subject,
        kind=standing.kind,
        scope=standing.scope,
        now=now,
        expires_at=expires_at,
        issuer_key_id=issuer_key_id,
    )
