"""What a credential is: who holds it, of which kind, for what, from when until when, signed by whom.

SMART-ID issues six kinds of credential. ``certified`` says a person holds a
method certification at a level (NAS410/EN4179); ``training`` and ``safety``
say a course was completed; ``access`` lets a badge in at a station;
``audit`` grants read-only audit rights; ``utility`` covers everything else a
station may ask for (equipment use, a label printer, a furnace). The scope
says for what (``method: PT, level: 2``, ``station: pt-1``, ``furnace: F-3``).

The subject is the badge id, never a name: a credential travels to stations,
and personal data stays on the hub.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType


class Kind(enum.StrEnum):
    ACCESS = "access"
    AUDIT = "audit"
    CERTIFIED = "certified"
    TRAINING = "training"
    SAFETY = "safety"
    UTILITY = "utility"


class Reason(enum.StrEnum):
    """Why a station refused a credential; each is something a person can act on."""

    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    REVOKED = "revoked"
    SUSPENDED = "suspended"
    WRONG_STATION = "wrong_station"


def _frozen(scope: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType({str(k): str(v) for k, v in sorted(scope.items())})


def parse_scope(text: str) -> dict[str, str]:
    """``"method=PT, level=2"`` → ``{"method": "PT", "level": "2"}``; a ValueError names the bad part."""
    scope: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"scope part {part!r} is not key=value")
        scope[key.strip()] = value.strip()
    return scope


@dataclass(frozen=True, slots=True)
class Credential:
    """One signed credential, as issued by SMART-ID and as a station reads it back."""

    credential_id: str
    subject: str
    kind: Kind
    scope: Mapping[str, str]
    issued_at: datetime
    not_before: datetime
    expires_at: datetime
    issuer_key_id: str
    issuer: str = "smart-id"
    extra: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "scope", _frozen(self.scope))
        object.__setattr__(self, "extra", _frozen(self.extra))
        for name in ("issued_at", "not_before", "expires_at"):
            if getattr(self, name).tzinfo is None:
                raise ValueError(f"credential {self.credential_id}: {name} must be timezone-aware (UTC)")
        if self.expires_at <= self.not_before:
            raise ValueError(
                f"credential {self.credential_id}: expires_at {self.expires_at.isoformat()} "
                f"is not after not_before {self.not_before.isoformat()}"
            )

    @property
    def station(self) -> str | None:
        """The one station this credential is for, when its scope names one."""
        return self.scope.get("station")

    def describe(self) -> str:
        scope = ", ".join(f"{k}: {v}" for k, v in self.scope.items())
        return f"{self.kind.value} credential {self.credential_id} ({scope})"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A credential a station will not accept, with the reason and the detail to show."""

    reason: Reason
    detail: str
    credential_id: str | None = None

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Revocation:
    """An entry of the revocation list: this credential id is revoked or suspended since ``at``."""

    credential_id: str
    status: Reason
    at: datetime
    reason: str = ""

    def __post_init__(self) -> None:
        if self.status not in (Reason.REVOKED, Reason.SUSPENDED):
            raise ValueError(f"revocation of {self.credential_id}: status must be revoked or suspended")
