"""Who did the work or decided the impact: a SMART-ID credential that verifies, never a typed name.

A maintenance order is closed, and a recall's impact review dispositioned,
by the person whose credential (the signed token their badge carries) the
hub verifies now, exactly as a station verifies a badge: signed by an
issuer key SMART-ID published (``access-keys``), in its validity window,
not revoked or suspended (``access-revocations``), for that station if it
names one. The credential must also be of the kind that gives the right:

- closing a maintenance order: a ``utility`` credential scoped
  ``work: maintenance`` (the shop's maintenance technicians);
- dispositioning an impact review (AS9100D 7.1.5.2): a ``certified``
  credential at Level 3, or a ``utility`` credential scoped
  ``authority: quality-manager``.

The ledger entry names the credential's subject (the badge) and id; the
signed-in login that entered it is recorded beside, as who typed it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from smart.access.credential import Credential, Kind, Refusal
from smart.access.verify import Verifier

Right = Literal["maintenance", "disposition"]
#: Where the hub reads the issuers' keys and revocations now (the KV buckets on a real hub).
VerifierSource = Callable[[], Awaitable[Verifier]]


class NotAuthorised(ValueError):
    """The credential does not verify or does not give the right; the message says why."""

    field = "credential"


@dataclass(frozen=True, slots=True)
class Signer:
    badge: str
    credential_id: str
    describe: str


def gives(credential: Credential, right: Right) -> bool:
    scope = credential.scope
    if right == "maintenance":
        return credential.kind is Kind.UTILITY and scope.get("work") == "maintenance"
    if credential.kind is Kind.CERTIFIED:
        return scope.get("level") in ("3", "level-3")
    return credential.kind is Kind.UTILITY and scope.get("authority") == "quality-manager"


async def verify(source: VerifierSource, token: str, *, right: Right, station: str, now: datetime) -> Signer:
    """The signer ``token`` proves for ``right`` at ``station`` now; :class:`NotAuthorised` if none."""
    verifier = await source()
    outcome = verifier.verify(token.strip(), now=now, station=station)
    if isinstance(outcome, Refusal):
        raise NotAuthorised(f"the credential does not verify: {outcome}")
    if not gives(outcome, right):
        wanted = (
            "a utility credential scoped work: maintenance"
            if right == "maintenance"
            else "a Level 3 certified credential or a utility credential scoped authority: quality-manager"
        )
        raise NotAuthorised(f"{outcome.describe()} does not give this right; {wanted} does")
    return Signer(outcome.subject, outcome.credential_id, outcome.describe())
