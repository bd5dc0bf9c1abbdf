"""QACentral's edge models: dispositions, evidence and CAPAs as the API, pages and CLI take them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Disposition = Literal["use-as-is", "repair", "rework", "scrap"]


class _In(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class DispositionIn(_In):
    """What is to happen to the part (DOMAIN rule 32); signed by the person deciding, never typed.

    ``use-as-is`` and ``repair`` need the design authority's approval reference, recorded as such;
    ``scrap`` needs how the part is marked and controlled. ``close`` with ``evidence`` closes the NCR
    too (the re-inspection after rework or repair, how the scrapped part was made unusable).
    """

    disposition: Disposition
    design_authority_approval: str | None = Field(default=None, max_length=200)
    marking: str | None = Field(default=None, max_length=300)
    close: bool = False
    evidence: str | None = Field(default=None, max_length=1000)
    badge: str | None = None
    tokens: tuple[str, ...] = Field(default=(), max_length=50)

    @model_validator(mode="after")
    def _rule_32(self) -> DispositionIn:
        if self.disposition in ("use-as-is", "repair") and not self.design_authority_approval:
            raise ValueError(
                f"design_authority_approval: {self.disposition} accepts a part that does not meet the "
                "drawing and needs the design authority's approval reference"
            )
        if self.disposition == "scrap" and not self.marking:
            raise ValueError("marking: a scrapped part is marked and controlled until unusable; say how")
        if self.close and not self.evidence and self.disposition != "use-as-is":
            raise ValueError("evidence: an NCR closes only on its evidence")
        return self


class EvidenceIn(_In):
    note: str = Field(min_length=1, max_length=2000)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class CapaIn(_In):
    id: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9._-]+$")
    ncrs: tuple[str, ...] = Field(min_length=1)
    root_cause: str = Field(min_length=1, max_length=2000)
    action: str = Field(min_length=1, max_length=2000)
    owner: str = Field(min_length=1, max_length=80)
    due_on: date


class VerificationIn(_In):
    effective: bool
    verification: str = Field(min_length=1, max_length=2000)


class CapaView(BaseModel):
    id: str
    ncrs: list[str]
    root_cause: str
    action: str
    owner: str
    due_on: date
    status: str
    verification: str | None
    verified_by: str | None
    verified_at: datetime | None
    opened_by: str
    opened_at: datetime
    overdue: bool = False


class NcrView(BaseModel):
    """An NCR as its station's entries tell it (the latest), with the hub's evidence and decisions."""

    id: str
    station: str
    job: str | None
    part: str | None
    serial: str | None
    open: bool
    disposition: str | None
    record: dict[str, Any]
    opened_at: datetime
    events: list[dict[str, Any]] = []
    evidence: list[dict[str, Any]] = []
    decisions: list[dict[str, Any]] = []


class Yield(BaseModel):
    """First-pass yield of one station, part or customer: jobs through with no NCR over all jobs."""

    by: str
    key: str
    jobs: int
    first_pass: int
    rate: float | None
