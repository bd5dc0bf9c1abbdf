"""E-signatures at the hub: who approves or dispositions is proved by a SMART-ID credential that verifies.

A name typed into a form proves nothing. An approval (a procedure revision,
an NCR disposition) is signed by presenting the signer's credentials: the
tokens SMART-ID issued to the badge (read for the signed-in login's person,
or handed in by a client that scanned the badge), checked exactly as a
station checks a badge (:mod:`smart.access.admission`): signature by the
pinned ``smart-id`` issuer key, validity window, not revoked or suspended,
and then the permits (``approve_procedure``: a certified credential at
Level 3 in the method). What is recorded is the badge, the credential ids
that carried the permit and each token's SHA-256: the ledger entry that
records the approval is the signature's trace, covered by the node's signed
chain head.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from smart.access import admission
from smart.access.credential import Credential, Revocation
from smart.access.verify import Verifier
from smart.hub.clients.store import Refused
from smart.keys import VerifyingKey

#: Where the hub checks a credential: no station scope applies there.
HUB = "hub"


class CredentialSource(Protocol):
    """What signing needs of SMART-ID: the revocation list, and a signed-in person's badge and tokens."""

    def revocations(self) -> list[Revocation]: ...

    def person(self, employee_id: str) -> Any: ...

    def credentials(self, employee_id: str | None = None) -> list[Any]: ...


@dataclass(frozen=True, slots=True)
class Signature:
    """A verified approval: the badge, what it was allowed to do, the credentials that allowed it."""

    badge: str
    action: str
    method: str | None
    at: datetime
    credential_ids: tuple[str, ...]
    token_sha256: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "badge": self.badge,
            "action": self.action,
            "method": self.method,
            "at": self.at.isoformat(),
            "credentials": list(self.credential_ids),
            "tokenSha256": list(self.token_sha256),
        }


class Signer:
    """Verifies a signer's credentials against the pinned SMART-ID key and SMART-ID's revocation list."""

    def __init__(
        self, smartid: CredentialSource, *, issuer_keys: Sequence[VerifyingKey], clock: Callable[[], datetime]
    ) -> None:
        self.smartid = smartid
        self.keys: Mapping[str, VerifyingKey] = {key.key_id: key for key in issuer_keys}
        self.clock = clock

    def sign(
        self,
        action: str,
        *,
        badge: str,
        tokens: Sequence[str],
        method: str | None = None,
        field: str = "approver",
    ) -> Signature:
        """The signature of ``badge`` for ``action``; :class:`Refused` names ``field`` and every reason."""
        now = self.clock()
        verifier = Verifier(
            keys=self.keys, revocations={r.credential_id: r for r in self.smartid.revocations()}
        )
        permit = admission.admit(
            action, badge=badge, tokens=tokens, verifier=verifier, now=now, station=HUB, method=method
        )
        if not permit.allowed:
            raise Refused(
                field, f"badge {badge} may not {action.replace('_', ' ')}: " + "; ".join(permit.reasons)
            )
        used = set(permit.credential_ids)
        carried = [
            t
            for t in tokens
            if (c := verifier.verify(t, now=now, station=HUB)) and getattr(c, "credential_id", None) in used
        ]
        return Signature(
            badge=badge,
            action=action,
            method=method,
            at=now,
            credential_ids=tuple(permit.credential_ids),
            token_sha256=tuple(hashlib.sha256(t.encode()).hexdigest() for t in carried),
        )

    def sign_as(
        self, employee_id: str | None, action: str, *, method: str | None = None, field: str = "approver"
    ) -> Signature:
        """Sign for the signed-in login's person with the credentials SMART-ID holds for them."""
        if employee_id is None:
            raise Refused(field, "this login is not linked to a person in SMART-ID, so it cannot sign")
        person = self.smartid.person(employee_id)
        tokens = [c.token for c in self.smartid.credentials(employee_id) if c.status == "active"]
        return self.sign(action, badge=person.badge_id, tokens=tokens, method=method, field=field)

    def sign_with_role(
        self, employee_id: str | None, role: str, *, action: str, field: str = "signer"
    ) -> Signature:
        """Sign as a signed-in login whose hub role carries the authority (the quality manager).

        The role is the login's; the person behind it must still hold SMART-ID credentials that verify
        now (a person whose credentials were all revoked or suspended signs nothing).
        """
        if employee_id is None:
            raise Refused(field, "this login is not linked to a person in SMART-ID, so it cannot sign")
        person = self.smartid.person(employee_id)
        now = self.clock()
        verifier = Verifier(
            keys=self.keys, revocations={r.credential_id: r for r in self.smartid.revocations()}
        )
        good: list[tuple[str, str]] = []
        reasons: list[str] = []
        for held in self.smartid.credentials(employee_id):
            if held.status != "active":
                continue
            # an access credential names its station: checked there, as that station would check it
            outcome = verifier.verify(held.token, now=now, station=held.credential.station or HUB)
            if isinstance(outcome, Credential) and outcome.subject == person.badge_id:
                good.append((outcome.credential_id, held.token))
            else:
                reasons.append(str(outcome))
        if not good:
            raise Refused(
                field,
                f"badge {person.badge_id} holds no credential that verifies now: "
                f"{'; '.join(reasons) or 'none issued'}",
            )
        return Signature(
            badge=person.badge_id,
            action=f"{action} as {role}",
            method=None,
            at=now,
            credential_ids=tuple(c for c, _ in good),
            token_sha256=tuple(hashlib.sha256(t.encode()).hexdigest() for _, t in good),
        )
