"""What a station knows when it decides: the event in front of it and the facts in its local store.

Both are frozen dataclasses so the compiled rules read attributes, not
dictionaries, on the hot path. The node agent builds them from its mirrors
(credentials, equipment records, checks, lots, jobs, PO lines) and from
the event a module raised; :func:`event_from_json` and
:func:`facts_from_json` are the typed edge for JSON (tests, the bench,
NATS messages). Times are aware datetimes; every rule is judged at the
time of the event (``Event.at``), never at "now".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from pydantic import TypeAdapter

from smart.contracts.rules import Level

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Reading:
    value: float
    unit: str


@dataclass(frozen=True, slots=True)
class Certification:
    method: str
    level: Level
    issued: datetime
    expires: datetime
    technique: str | None = None
    techniques: tuple[str, ...] = ()
    revoked: bool = False
    basis: str = "initial-exam"
    instructor: bool = False
    practical_samples: int = 0
    practical_samples_per_technique: Mapping[str, int] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Exam:
    exam: str
    taken: datetime
    test: str | None = None
    passed: bool = True


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    certifications: tuple[Certification, ...] = ()
    exams: tuple[Exam, ...] = ()
    last_performed: Mapping[str, datetime] = field(default_factory=lambda: _EMPTY)
    authorities: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Calibration:
    at: datetime
    in_tolerance: bool = True


@dataclass(frozen=True, slots=True)
class EquipmentRecord:
    id: str
    kind: str
    attributes: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    calibration: Calibration | None = None
    maintained_at: datetime | None = None
    surveys: Mapping[str, datetime] = field(default_factory=lambda: _EMPTY)
    qualified_min: Reading | None = None
    qualified_max: Reading | None = None


@dataclass(frozen=True, slots=True)
class CheckRecord:
    check: str
    at: datetime
    passed: bool
    equipment: str | None = None
    readings: Mapping[str, Reading] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Lot:
    id: str
    material: str
    expires: datetime
    form: str = "bulk"
    opened: datetime | None = None


@dataclass(frozen=True, slots=True)
class PoLine:
    po: str
    line: str
    released: bool
    part: str
    serials: tuple[str, ...] = ()
    operations: tuple[str, ...] = ()
    contract_reviewed_by: str | None = None
    flowdowns: Mapping[str, str] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Ncr:
    id: str
    open: bool
    disposition: str | None = None
    design_authority_approval: str | None = None


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    steps: tuple[str, ...] = ()
    measurements: Mapping[str, Reading] = field(default_factory=lambda: _EMPTY)
    signed_by: str | None = None
    ncrs: tuple[Ncr, ...] = ()
    quantities: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    coc_signed_by: str | None = None
    serials: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Procedure:
    id: str
    revision: str
    method: str
    approved_by: str | None = None
    validated: bool = False


@dataclass(frozen=True, slots=True)
class Scan:
    po: str
    line: str
    part: str | None = None
    serial: str | None = None
    operation: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """Something a person or machine is about to do, or just did, at a station."""

    action: str
    at: datetime
    station: str
    person: str | None = None
    supervisor: str | None = None
    equipment: tuple[str, ...] = ()
    readings: Mapping[str, Reading] = field(default_factory=lambda: _EMPTY)
    attributes: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    step: str | None = None
    job: str | None = None
    lots: tuple[str, ...] = ()
    ppe: frozenset[str] = frozenset()
    scan: Scan | None = None
    procedure: str | None = None
    procedure_revision: str | None = None


@dataclass(frozen=True, slots=True)
class Facts:
    """The station's local knowledge at decision time."""

    people: Mapping[str, Person] = field(default_factory=lambda: _EMPTY)
    equipment: Mapping[str, EquipmentRecord] = field(default_factory=lambda: _EMPTY)
    checks: Mapping[str, CheckRecord] = field(default_factory=lambda: _EMPTY)
    lots: Mapping[str, Lot] = field(default_factory=lambda: _EMPTY)
    po_lines: Mapping[str, PoLine] = field(default_factory=lambda: _EMPTY)
    jobs: Mapping[str, Job] = field(default_factory=lambda: _EMPTY)
    procedures: Mapping[str, Procedure] = field(default_factory=lambda: _EMPTY)


def po_key(po: str, line: str) -> str:
    """Key of a PO line in ``Facts.po_lines``."""
    return f"{po}/{line}"


_EVENT = TypeAdapter(Event)
_FACTS = TypeAdapter(Facts)


def event_from_json(value: Any) -> Event:
    return _EVENT.validate_python(value)


def facts_from_json(value: Any) -> Facts:
    return _FACTS.validate_python(value)
