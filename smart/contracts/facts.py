"""What a station knows when it decides: the event in front of it and the facts in its local store.

Both are frozen dataclasses so the compiled rules read attributes, not
dictionaries, on the hot path. The node agent builds them from its mirrors
(credentials, equipment records, checks, lots, jobs, PO lines) and from
the event a module raised; :func:`event_from_json` and
:func:`facts_from_json` are the typed edge for JSON (tests, the bench,
NATS messages). Times are aware datetimes; every rule is judged at the
time of the event (``Event.at``), never at "now".

A record dated after the event never counts for it, whatever its kind, so an
audit that re-judges the past with today's records gets the answer the
station gave then. Records that are replaced as time goes on (a check's
latest run, a gauge's calibration, a furnace's surveys, a maintenance, a
person's last performance) therefore carry their earlier values beside the
latest (``check_history``, ``calibrations``, ``survey_records``,
``maintenances``, ``performed``); a fact whose only record is later than the
event is, for that event, no record at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal, TypeVar

from pydantic import TypeAdapter

from smart.contracts.families.vocabulary import Level

_EMPTY: Mapping[str, Any] = MappingProxyType({})

T = TypeVar("T")


def latest(times: Iterable[datetime | None], at: datetime) -> datetime | None:
    """The latest of ``times`` at or before ``at``: what was on record when ``at`` happened."""
    best: datetime | None = None
    for when in times:
        if when is not None and when <= at and (best is None or when > best):
            best = when
    return best


def _latest_by(records: Iterable[T | None], at: datetime, when: Callable[[T], datetime]) -> T | None:
    best: T | None = None
    for record in records:
        if record is not None and when(record) <= at and (best is None or when(record) > when(best)):
            best = record
    return best


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
    #: When the revocation took effect; ``None`` with ``revoked``: revoked at every time (fail closed).
    revoked_at: datetime | None = None
    basis: str = "initial-exam"
    instructor: bool = False
    practical_samples: int = 0
    practical_samples_per_technique: Mapping[str, int] = field(default_factory=lambda: _EMPTY)

    def valid_at(self, at: datetime) -> bool:
        """Issued by ``at``, not yet expired, and not revoked by then."""
        return self.issued <= at < self.expires and not self.revoked_by(at)

    def revoked_by(self, at: datetime) -> bool:
        return self.revoked and (self.revoked_at is None or self.revoked_at <= at)


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
    #: Earlier performances of each method (``last_performed`` is the latest), for judging the past.
    performed: Mapping[str, tuple[datetime, ...]] = field(default_factory=lambda: _EMPTY)

    def last_performed_by(self, method: str, at: datetime) -> datetime | None:
        """The person's last performance of ``method`` at or before ``at``."""
        last = self.last_performed.get(method)
        earlier = self.performed.get(method)
        if not earlier:  # the usual case at a station: one date, judged without building anything
            return last if last is not None and last <= at else None
        return latest((last, *earlier), at)


@dataclass(frozen=True, slots=True)
class Calibration:
    at: datetime
    in_tolerance: bool = True
    #: The first instant it is no longer current, as the hub's maintenance schedule set it (the end of
    #: the due day, the certificate's or the contract's, the sooner): from then on the calibration
    #: rule refuses even where the rule's own interval would not.
    due: datetime | None = None


@dataclass(frozen=True, slots=True)
class Survey:
    """One TUS or SAT of a furnace, in one of its qualified ranges (``None``: the furnace's one range)."""

    #: ``TUS`` or ``SAT``.
    survey: str
    at: datetime
    range: str | None = None
    passed: bool = True


@dataclass(frozen=True, slots=True)
class QualifiedRange:
    """A temperature range a furnace is qualified for (a vacuum furnace may hold several)."""

    id: str
    min: Reading
    max: Reading


@dataclass(frozen=True, slots=True)
class UsageLimit:
    """Upkeep due by use, not by the calendar: a lamp bulb every 1500 hours, a door seal every 400 cycles."""

    task: str
    unit: Literal["cycles", "hours"]
    #: Service when the use since the last service reaches this.
    every: float
    #: Call it due this much before ``every`` (time to plan the work).
    due_within: float = 0.0

    def __post_init__(self) -> None:
        if self.every <= 0 or not 0 <= self.due_within < self.every:
            raise ValueError(
                f"usage limit {self.task}: every must be > 0 and due_within in [0, every), "
                f"got every={self.every:g} due_within={self.due_within:g}"
            )


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
    #: Earlier calibrations (``calibration`` is the latest), for judging the past.
    calibrations: tuple[Calibration, ...] = ()
    #: Earlier maintenances (``maintained_at`` is the latest).
    maintenances: tuple[datetime, ...] = ()
    #: Every survey on record, by range; ``surveys`` (kind → latest date) counts as the one range's.
    survey_records: tuple[Survey, ...] = ()
    #: The furnace's qualified ranges; none: ``qualified_min``–``qualified_max`` is its one range.
    qualified_ranges: tuple[QualifiedRange, ...] = ()
    #: Upkeep counted by use (the hub's maintenance schedule sets them; none: nothing is counted).
    usage_limits: tuple[UsageLimit, ...] = ()

    def calibration_by(self, at: datetime) -> Calibration | None:
        """The calibration in force at ``at``: the latest one dated at or before it."""
        latest_one = self.calibration
        if not self.calibrations:
            return latest_one if latest_one is not None and latest_one.at <= at else None
        return _latest_by((latest_one, *self.calibrations), at, _calibrated_at)

    def maintained_by(self, at: datetime) -> datetime | None:
        """The last maintenance at or before ``at``."""
        if not self.maintenances:
            last = self.maintained_at
            return last if last is not None and last <= at else None
        return latest((self.maintained_at, *self.maintenances), at)

    def ranges(self) -> tuple[QualifiedRange, ...]:
        """The qualified ranges; the one ``qualified_min``–``qualified_max`` range has id ``""``."""
        if self.qualified_ranges:
            return self.qualified_ranges
        if self.qualified_min is not None and self.qualified_max is not None:
            return (QualifiedRange("", self.qualified_min, self.qualified_max),)
        return ()

    def surveyed_by(self, survey: str, at: datetime, range_id: str | None = None) -> Survey | None:
        """The last passed ``survey`` at or before ``at``, in ``range_id`` (``None``: in any range).

        ``surveys`` (kind → date) counts as a survey of the furnace's one unnamed range (``""``).
        """
        dated = [Survey(survey, when) for kind, when in self.surveys.items() if kind == survey]
        dated += [r for r in self.survey_records if r.survey == survey and r.passed]
        if range_id is not None:
            dated = [r for r in dated if (r.range or "") == range_id]
        return _latest_by(dated, at, lambda r: r.at)


@dataclass(frozen=True, slots=True)
class UsageCount:
    """Use of one equipment toward one upkeep task since the task was last done (kept at the station)."""

    #: ``<equipment>/<task>``.
    id: str
    equipment: str
    task: str
    since_service: float = 0.0
    #: Lifetime use, never reset.
    total: float = 0.0
    last_service_at: datetime | None = None
    last_service_by: str | None = None


def usage_key(equipment: str, task: str) -> str:
    """Key of a :class:`UsageCount` among the station's records."""
    return f"{equipment}/{task}"


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
    #: Quantity left in the lot, in ``unit`` (``None``: its stock is not tracked).
    on_hand: float | None = None
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class Material:
    """A consumable's reorder terms at a station, keyed by the material name its lots carry (hub-owned)."""

    id: str
    unit: str
    #: Reorder when the stock projected one lead time ahead falls below this.
    min_stock: float
    lead_time_days: float
    #: Daily use assumed while the station has recorded none.
    planned_daily_use: float = 0.0
    #: Orders come in multiples of this; 0: any quantity.
    pack_size: float = 0.0
    #: Ordered and not yet received (the hub raises it when it orders).
    on_order: float = 0.0

    def __post_init__(self) -> None:
        if self.min_stock < 0 or self.lead_time_days <= 0 or self.planned_daily_use < 0:
            raise ValueError(
                f"material {self.id}: min_stock and planned_daily_use must be >= 0, lead_time_days > 0"
            )
        if self.pack_size < 0 or self.on_order < 0:
            raise ValueError(f"material {self.id}: pack_size and on_order must be >= 0")


@dataclass(frozen=True, slots=True)
class Consumption:
    at: datetime
    lot: str
    quantity: float


@dataclass(frozen=True, slots=True)
class StockRecord:
    """A material's recent use at a station and its open reorder signal, if any (kept at the station)."""

    #: The material's name.
    id: str
    #: Use within the reorder window (older use is dropped).
    used: tuple[Consumption, ...] = ()
    #: ``node_seq`` of the open ``inventory.reorder`` entry; ``None``: no signal open.
    reorder_entry: int | None = None
    reorder_at: datetime | None = None
    reorder_quantity: float | None = None


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
class NcrDecision:
    """A station's NCR decided at the hub (QACentral) by a signer whose credential verified there.

    Keyed by the NCR's id; the station's QA applies it as its own disposition would be applied
    (use-as-is and repair only with the design authority's approval), naming ``decided_by``.
    """

    id: str
    decided_by: str
    decided_at: datetime
    disposition: str | None = None
    design_authority_approval: str | None = None
    #: Close the NCR with ``evidence`` (re-inspection after rework or repair, how scrap was made unusable).
    close: bool = False
    evidence: str | None = None


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    steps: tuple[str, ...] = ()
    #: The latest reading of each quantity on the job (what limits and record rules judge).
    measurements: Mapping[str, Reading] = field(default_factory=lambda: _EMPTY)
    signed_by: str | None = None
    ncrs: tuple[Ncr, ...] = ()
    quantities: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    coc_signed_by: str | None = None
    serials: tuple[str, ...] = ()
    #: The PO line and part the traveler scanned (older records lack them).
    po: str | None = None
    line: str | None = None
    part: str | None = None
    #: Every step's own readings, by step: the part temperature of the dwell and of the drying are
    #: two results on the record, not one overwriting the other (older records lack them).
    step_measurements: Mapping[str, Mapping[str, Reading]] = field(default_factory=lambda: _EMPTY)


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
    #: Earlier runs of each check (``checks`` holds the latest), for judging the past.
    check_history: Mapping[str, tuple[CheckRecord, ...]] = field(default_factory=lambda: _EMPTY)

    def check_by(self, name: str, at: datetime) -> CheckRecord | None:
        """The last run of check ``name`` at or before ``at`` (passed or not)."""
        record = self.checks.get(name)
        earlier = self.check_history.get(name)
        if not earlier:
            return record if record is not None and record.at <= at else None
        return _latest_by((record, *earlier), at, _checked_at)


def _calibrated_at(calibration: Calibration) -> datetime:
    return calibration.at


def _checked_at(record: CheckRecord) -> datetime:
    return record.at


def po_key(po: str, line: str) -> str:
    """Key of a PO line in ``Facts.po_lines``."""
    return f"{po}/{line}"


_EVENT = TypeAdapter(Event)
_FACTS = TypeAdapter(Facts)


def event_from_json(value: Any) -> Event:
    return _EVENT.validate_python(value)


def facts_from_json(value: Any) -> Facts:
    return _FACTS.validate_python(value)
