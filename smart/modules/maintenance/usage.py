"""Equipment usage counters with service thresholds, and the recall of jobs measured with a bad gauge.

**Usage counters.** Some upkeep is due by use, not by the calendar: a UV-A
lamp's bulb after so many burning hours, a furnace door seal after so many
cycles, an MT unit's contacts after so many shots. Each counter is one
equipment and one task (``lamp-bulb`` every 1500 h): it counts up from the
last service and reads *ok*, *due* (within the warning margin of its
threshold) or *overdue* (at or past it). Calendar calibrations stay in the
contract's calibration rule; this file only counts.

**Recall (AS9100D 7.1.5.2, DOMAIN rule 27).** When a gauge is found out of
tolerance, everything it measured since it was last known good is suspect:
:func:`recall` lists every job that used it from its last in-tolerance
calibration up to the finding, for the impact review. With no good
calibration on record, nothing it measured can be vouched for, and every
earlier use is listed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from smart.contracts import facts as f

CounterUnit = Literal["cycles", "hours"]
ServiceStatus = Literal["ok", "due", "overdue"]


class CounterError(ValueError):
    """A counter that cannot be: a threshold ≤ 0, a negative count, a run that ends before it starts."""


@dataclass(frozen=True, slots=True)
class Counter:
    """Use of one equipment toward one service task since that task was last done."""

    equipment: str
    task: str
    unit: CounterUnit
    #: Service when the count since the last service reaches this.
    service_every: float
    #: Call it due this much before the threshold (time to plan the work).
    due_within: float = 0.0
    since_service: float = 0.0
    #: Lifetime count, never reset (an audit and replacement-planning figure).
    total: float = 0.0
    last_service_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.service_every <= 0:
            raise CounterError(f"{self.equipment} {self.task}: service threshold must be positive")
        if self.due_within < 0 or self.due_within >= self.service_every:
            raise CounterError(f"{self.equipment} {self.task}: due margin must be in [0, threshold)")

    @property
    def status(self) -> ServiceStatus:
        if self.since_service >= self.service_every:
            return "overdue"
        if self.since_service >= self.service_every - self.due_within:
            return "due"
        return "ok"

    @property
    def remaining(self) -> float:
        """Count left before the threshold (negative once overdue)."""
        return self.service_every - self.since_service

    def describe(self) -> str:
        """The status in words for the station's screen and the maintenance schedule."""
        used = f"{self.since_service:g} {self.unit} since service"
        if self.status == "overdue":
            return f"{self.equipment} {self.task} overdue: {used}, due at {self.service_every:g}"
        if self.status == "due":
            return f"{self.equipment} {self.task} due: {self.remaining:g} {self.unit} left ({used})"
        return f"{self.equipment} {self.task} ok: {self.remaining:g} {self.unit} left"


def count(counter: Counter, amount: float = 1.0) -> Counter:
    """Add ``amount`` (cycles or hours) of use."""
    if amount < 0:
        raise CounterError(f"{counter.equipment}: cannot count {amount:g} {counter.unit}")
    return replace(counter, since_service=counter.since_service + amount, total=counter.total + amount)


def run(counter: Counter, *, started: datetime, stopped: datetime) -> Counter:
    """Add a period of running to an hours counter (a cycles counter counts the run as one cycle)."""
    if stopped < started:
        raise CounterError(f"{counter.equipment}: run stops at {stopped} before it starts at {started}")
    if counter.unit == "cycles":
        return count(counter, 1.0)
    return count(counter, (stopped - started) / timedelta(hours=1))


def serviced(counter: Counter, *, at: datetime) -> Counter:
    """The task was done: count again from zero (the lifetime total stays)."""
    return replace(counter, since_service=0.0, last_service_at=at)


@dataclass(frozen=True, slots=True)
class Use:
    """A job measured or processed with an equipment at a time (from the ledger)."""

    job: str
    equipment: str
    at: datetime


@dataclass(frozen=True, slots=True)
class RecalledJob:
    job: str
    #: When the suspect equipment was used on it, oldest first.
    uses: tuple[datetime, ...]


@dataclass(frozen=True, slots=True)
class Recall:
    """The jobs to review after ``equipment`` was found out of tolerance at ``found_at``."""

    equipment: str
    found_at: datetime
    #: The last in-tolerance calibration before the finding; ``None`` if there is none on record.
    last_good: datetime | None
    jobs: tuple[RecalledJob, ...]

    @property
    def message(self) -> str:
        since = (
            f"since its last good calibration {self.last_good.isoformat()}"
            if self.last_good is not None
            else "with no good calibration on record (every earlier use)"
        )
        names = ", ".join(job.job for job in self.jobs) or "none"
        return (
            f"{self.equipment} found out of tolerance {self.found_at.isoformat()}: "
            f"{len(self.jobs)} job(s) measured {since} need impact review: {names}"
        )


def recall(
    *, equipment: str, found_at: datetime, calibrations: Iterable[f.Calibration], uses: Iterable[Use]
) -> Recall:
    """Every job that used ``equipment`` from its last good calibration before ``found_at`` up to it.

    ``calibrations`` is the equipment's calibration history (any order);
    ``uses`` may hold other equipment's uses too, which are skipped.
    """
    good = [c.at for c in calibrations if c.in_tolerance and c.at <= found_at]
    last_good = max(good) if good else None
    times: dict[str, list[datetime]] = {}
    for use in uses:
        if use.equipment != equipment or use.at > found_at:
            continue
        if last_good is not None and use.at < last_good:
            continue
        times.setdefault(use.job, []).append(use.at)
    jobs = sorted(
        (RecalledJob(job, tuple(sorted(when))) for job, when in times.items()),
        key=lambda r: (r.uses[0], r.job),
    )
    return Recall(equipment, found_at, last_good, tuple(jobs))
