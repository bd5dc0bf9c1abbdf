"""Nonconformance records: opened on a reject, dispositioned under DOMAIN rule 32, closed with evidence.

A reject at a station is a fact about a part that must travel with the job
until someone with the authority to do so decides what happens to it. The
record says what was measured against which limits, by whom, when, and which
rule and standard refused it, so the NCR answers an auditor's question on its
own (DOMAIN "job audit" item 6: NCRs and who authorised each disposition).

Dispositions (rule 32, AS9100D 8.7):

- **use-as-is** and **repair** accept a part that does not meet the drawing:
  only the design authority (the customer's engineering, or a delegate the
  PO names) may allow that, so both are refused without its approval
  reference;
- **rework** brings the part back to the drawing; it is re-inspected before
  the record closes;
- **scrap**: the part is marked and controlled until it is made unusable;
  the record closes only when that is recorded.

Use-as-is closes the record at disposition; the others close on the evidence
above. An open NCR blocks release: the Guardian reads ``facts.Job.ncrs``,
which :func:`to_fact` builds from these records.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal, get_args

from smart.contracts import engine
from smart.contracts import facts as f

Disposition = Literal["use-as-is", "repair", "rework", "scrap"]
DISPOSITIONS: tuple[Disposition, ...] = get_args(Disposition)
#: Dispositions that accept a nonconforming part: only with the design authority's approval (rule 32).
NEED_DESIGN_AUTHORITY: frozenset[str] = frozenset({"use-as-is", "repair"})


class NcrRefused(ValueError):
    """A disposition or closure the rules do not allow; ``reason`` says which and why, for the ledger."""

    def __init__(self, reason: engine.Reason) -> None:
        super().__init__(reason.message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Nonconformance:
    """One NCR: what was found, against what, by whom and when, and what was decided about it."""

    id: str
    station: str
    characteristic: str
    opened_at: datetime
    #: The person whose measurement was rejected (an id, never a name).
    opened_by: str | None
    #: The contract rule that refused the measurement, and the standard clauses it cites.
    rule: str
    message: str
    job: str | None = None
    part: str | None = None
    serial: str | None = None
    measured: float | None = None
    unit: str | None = None
    limit_min: float | None = None
    limit_max: float | None = None
    limit_unit: str | None = None
    cites: tuple[str, ...] = ()
    disposition: Disposition | None = None
    dispositioned_by: str | None = None
    dispositioned_at: datetime | None = None
    design_authority_approval: str | None = None
    closed_by: str | None = None
    closed_at: datetime | None = None
    #: Re-inspection result (rework, repair) or how a scrapped part was made unusable.
    closing_evidence: str | None = None

    @property
    def open(self) -> bool:
        return self.closed_at is None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "station": self.station,
            "characteristic": self.characteristic,
            "openedAt": self.opened_at.isoformat(),
            "openedBy": self.opened_by,
            "rule": self.rule,
            "message": self.message,
            "job": self.job,
            "part": self.part,
            "serial": self.serial,
            "measured": self.measured,
            "unit": self.unit,
            "limits": {"min": self.limit_min, "max": self.limit_max, "unit": self.limit_unit},
            "cites": list(self.cites),
            "disposition": self.disposition,
            "dispositionedBy": self.dispositioned_by,
            "dispositionedAt": _iso(self.dispositioned_at),
            "designAuthorityApproval": self.design_authority_approval,
            "closedBy": self.closed_by,
            "closedAt": _iso(self.closed_at),
            "closingEvidence": self.closing_evidence,
            "open": self.open,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Nonconformance:
        limits = raw.get("limits") or {}
        disposition = raw.get("disposition")
        if disposition is not None and disposition not in DISPOSITIONS:
            raise ValueError(f"NCR {raw.get('id')}: disposition {disposition!r} is not one of {DISPOSITIONS}")
        return cls(
            id=raw["id"],
            station=raw["station"],
            characteristic=raw["characteristic"],
            opened_at=datetime.fromisoformat(raw["openedAt"]),
            opened_by=raw.get("openedBy"),
            rule=raw["rule"],
            message=raw["message"],
            job=raw.get("job"),
            part=raw.get("part"),
            serial=raw.get("serial"),
            measured=raw.get("measured"),
            unit=raw.get("unit"),
            limit_min=limits.get("min"),
            limit_max=limits.get("max"),
            limit_unit=limits.get("unit"),
            cites=tuple(raw.get("cites", ())),
            disposition=disposition,
            dispositioned_by=raw.get("dispositionedBy"),
            dispositioned_at=_time(raw.get("dispositionedAt")),
            design_authority_approval=raw.get("designAuthorityApproval"),
            closed_by=raw.get("closedBy"),
            closed_at=_time(raw.get("closedAt")),
            closing_evidence=raw.get("closingEvidence"),
        )


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


#: What a NATS KV key may not hold: the hub's disposition reaches the station under a key with this id.
_NOT_IN_A_KEY = re.compile(r"[^A-Za-z0-9_=.-]")


def ncr_id(*, station: str, at: datetime, characteristic: str, job: str | None) -> str:
    """A readable id unique per station, job, characteristic and second: ``NCR-pt-1-20260310T0900-J1-uv``.

    A job or characteristic with spaces, slashes or accents (``TR 2026/001``) would give an id no
    ``station-records`` key can hold, and the hub's disposition could never reach the station; such
    characters become ``_``.
    """
    raw = f"NCR-{station}-{at.strftime('%Y%m%dT%H%M%S')}-{job or 'nojob'}-{characteristic}"
    return _NOT_IN_A_KEY.sub("_", raw)


def open_from_reason(
    reason: engine.Reason, event: f.Event, *, cites: tuple[str, ...] = (), ncr: str | None = None
) -> Nonconformance:
    """An NCR for the measurement ``reason`` refused in ``event``: values, limits, job, part and who."""
    values = reason.values
    characteristic = str(values.get("quantity") or reason.rule)
    part = event.scan.part if event.scan and event.scan.part else event.attributes.get("part")
    serial = event.scan.serial if event.scan and event.scan.serial else event.attributes.get("serial")
    return Nonconformance(
        id=ncr or ncr_id(station=event.station, at=event.at, characteristic=characteristic, job=event.job),
        station=event.station,
        characteristic=characteristic,
        opened_at=event.at,
        opened_by=event.person,
        rule=reason.rule,
        message=reason.message,
        job=event.job,
        part=part,
        serial=serial,
        measured=_number(values.get("value")),
        unit=_text(values.get("unit")),
        limit_min=_number(values.get("min")),
        limit_max=_number(values.get("max")),
        limit_unit=_text(values.get("limit_unit")),
        cites=cites,
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _refuse(ncr: Nonconformance, rule: str, message: str, **values: Any) -> NcrRefused:
    return NcrRefused(engine.Reason(rule, message, MappingProxyType({"ncr": ncr.id, **values})))


def dispose(
    ncr: Nonconformance,
    *,
    disposition: str,
    by: str,
    at: datetime,
    design_authority_approval: str | None = None,
) -> Nonconformance:
    """Record what is to happen to the part; use-as-is and repair need the design authority's approval."""
    if not ncr.open:
        raise _refuse(ncr, "ncr.closed", f"NCR {ncr.id} is closed; open a new one to change its outcome")
    if ncr.disposition is not None:
        raise _refuse(
            ncr,
            "ncr.already-dispositioned",
            f"NCR {ncr.id} is already dispositioned {ncr.disposition} by {ncr.dispositioned_by}",
            disposition=ncr.disposition,
        )
    if disposition not in DISPOSITIONS:
        raise _refuse(
            ncr,
            "ncr.disposition",
            f"{disposition!r} is not a disposition; expected one of {', '.join(DISPOSITIONS)}",
            disposition=disposition,
        )
    approval = (design_authority_approval or "").strip() or None
    if disposition in NEED_DESIGN_AUTHORITY and approval is None:
        raise _refuse(
            ncr,
            "ncr.design-authority",
            f"NCR {ncr.id}: {disposition} accepts a part that does not meet the drawing and needs the "
            "design authority's approval reference (DOMAIN rule 32); rework or scrap need none",
            disposition=disposition,
        )
    chosen: Disposition = next(d for d in DISPOSITIONS if d == disposition)
    done = replace(
        ncr,
        disposition=chosen,
        dispositioned_by=by,
        dispositioned_at=at,
        design_authority_approval=approval if chosen in NEED_DESIGN_AUTHORITY else None,
    )
    if chosen == "use-as-is":
        return replace(done, closed_by=by, closed_at=at, closing_evidence=f"use-as-is per {approval}")
    return done


def close(ncr: Nonconformance, *, by: str, at: datetime, evidence: str) -> Nonconformance:
    """Close a dispositioned NCR on its evidence: re-inspection after rework or repair, unusable scrap."""
    if not ncr.open:
        raise _refuse(ncr, "ncr.closed", f"NCR {ncr.id} is already closed")
    if ncr.disposition is None:
        raise _refuse(ncr, "ncr.undispositioned", f"NCR {ncr.id} has no disposition yet; it stays open")
    if not evidence.strip():
        what = (
            "how the scrapped part was made unusable"
            if ncr.disposition == "scrap"
            else f"the re-inspection after {ncr.disposition}"
        )
        raise _refuse(ncr, "ncr.evidence", f"NCR {ncr.id} closes only on {what}", disposition=ncr.disposition)
    return replace(ncr, closed_by=by, closed_at=at, closing_evidence=evidence.strip())


def to_fact(ncr: Nonconformance) -> f.Ncr:
    """What the rule engine needs of an NCR (``facts.Job.ncrs``): open or not, disposition, approval."""
    return f.Ncr(
        id=ncr.id,
        open=ncr.open,
        disposition=ncr.disposition,
        design_authority_approval=ncr.design_authority_approval,
    )


def job_facts(ncrs: list[Nonconformance] | tuple[Nonconformance, ...], job: str) -> tuple[f.Ncr, ...]:
    """The NCR facts of one job, oldest first, for ``dataclasses.replace(job, ncrs=...)``."""
    mine = sorted((n for n in ncrs if n.job == job), key=lambda n: (n.opened_at, n.id))
    return tuple(to_fact(n) for n in mine)
