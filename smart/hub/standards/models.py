"""StandardsCentral's edge models: what the API, the pages and the CLI take and show."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

Text = Field(min_length=1, max_length=200)


class _In(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class SpecRevisionIn(_In):
    """A spec revision: ASTM E1417 rev 21, AMS2750 rev G, a customer spec; what it supersedes."""

    spec: str = Text
    revision: str = Field(min_length=1, max_length=40)
    title: str = Text
    effective_on: date
    supersedes: str | None = None


class SpecRevisionView(SpecRevisionIn):
    added_by: str
    added_at: datetime
    in_force: bool = False


class ProcedureIn(_In):
    """A procedure or technique sheet for one method, and the stations that run it."""

    id: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    method: str = Field(min_length=1, max_length=40)
    title: str = Text
    stations: tuple[str, ...] = Field(min_length=1)


class ProcedureView(ProcedureIn):
    added_by: str
    added_at: datetime


class RevisionIn(_In):
    """A procedure revision as drafted: when it takes effect, what it supersedes, the spec it follows."""

    revision: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9._-]+$")
    effective_on: date
    supersedes: str | None = None
    validated: bool = Field(description="The special process is validated under this revision (8.5.1 f).")
    spec: str | None = None
    spec_revision: str | None = None
    document: str = Field(default="", max_length=500, description="Where the controlled document is.")


class RevisionView(RevisionIn):
    procedure: str
    drafted_by: str
    drafted_at: datetime
    approved_by: str | None = None
    approved_at: datetime | None = None
    signature: dict[str, Any] | None = None
    approval_entry: int | None = None
    in_force: bool = False

    @property
    def approved(self) -> bool:
        return self.approved_by is not None


class ApprovalIn(_In):
    """An approval by a badge presenting its SMART-ID credential tokens (a client that scanned the badge).

    Signed-in people leave both out: their own credentials are read from SMART-ID.
    """

    badge: str | None = None
    tokens: tuple[str, ...] = ()

    @field_validator("tokens")
    @classmethod
    def _tokens(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(value) > 50:
            raise ValueError("at most 50 tokens")
        return value


class Publication(BaseModel):
    procedure: str
    station: str
    revision: str | None
    kv_revision: int | None
    at: datetime
