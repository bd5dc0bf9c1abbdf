"""How long a check stays current: the shop's one meaning of "daily", "weekly" and "monthly".

Shops argue over what "monthly" means (DOMAIN rule 23, S20), so SMART
encodes it here once; the contracts engine (gate checks, calibrations,
surveys, shelf life) and the access pillar (eye exams, recertification,
lapse, courses) both ask this module and nothing else.

Something done with an interval is **current through its due day**: from
the moment it is done until the end of the due day in the shop's time zone
(a contract's ``timezone``), and no longer current from the first moment of
the next day (:func:`expires`). The due day (:func:`due`) is the last day
on which doing it again is on time:

- ``days`` and ``weeks`` are calendar days counting the day of the check
  as the first: a ``1 day`` ("daily") check is due again by the end of the
  day it was done; a ``7 days`` ("weekly") check done on a Monday is
  current through Sunday and not on the next Monday, the eighth calendar day.
- ``months`` and ``years`` step the calendar to the same day of the month
  that many months later, and that day is the due day: a monthly check done
  15 March is current through 15 April; a 12-month eye exam of 2025-03-15 is
  current on 2026-03-15 and not on 2026-03-16. When the month has no such
  day, the due day is its last day (31 January → 28 or 29 February;
  29 February 2028 + 1 year → 28 February 2029).
- ``minutes`` and ``hours`` are elapsed time, with no due day: a check every
  ``8 hours`` done at 06:10 is current until 14:10, exclusive.

Why the due day is inclusive: the standards give a due date ("same day next
month"), and a check redone on its due date is on time, so the one before it
must still be current that day; counting a daily check as good for today
only is the same rule for days (the due day of ``1 day`` is the day itself).

The arithmetic is one function each: :func:`add_months` (the month-end
rule), :func:`due` (the due day), :func:`end_of_day` (a day to the instant
it ends, in a zone), :func:`expires` (the first instant no longer current),
:func:`current`. The textual form ``"12 months"`` (:func:`parse`,
:data:`PATTERN`) is how contracts write an interval and how an interval
prints itself; the access schemes' YAML form (``{years: 5}``) is read into
the same :class:`Interval` by ``smart.access.schemes``.
"""

from __future__ import annotations

import calendar
import functools
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Literal, get_args

Unit = Literal["minute", "hour", "day", "week", "month", "year"]
UNITS: tuple[Unit, ...] = get_args(Unit)

#: What a contract may write: a positive count and a unit, singular or plural.
PATTERN = r"^[1-9][0-9]{0,3} (minute|hour|day|week|month|year)s?$"
_PATTERN = re.compile(PATTERN)

_DAYS_PER: dict[str, int] = {"day": 1, "week": 7}
_MONTHS_PER: dict[str, int] = {"month": 1, "year": 12}

#: Per unit and count, bounds on how long after ``done`` an interval can end (DST and month lengths
#: included), so most checks are decided by one subtraction and no calendar arithmetic.
_BOUNDS: dict[str, tuple[timedelta, timedelta]] = {
    "minute": (timedelta(minutes=1), timedelta(minutes=1)),
    "hour": (timedelta(hours=1), timedelta(hours=1)),
    "day": (timedelta(days=1), timedelta(days=1)),
    "week": (timedelta(days=7), timedelta(days=7)),
    "month": (timedelta(days=27), timedelta(days=33)),
    "year": (timedelta(days=364), timedelta(days=367)),
}


@dataclass(frozen=True, slots=True)
class Interval:
    """A positive count of one unit: ``Interval(12, "month")`` prints as ``12 months``."""

    count: int
    unit: Unit
    shortest: timedelta = field(default=timedelta(0), compare=False, repr=False)
    longest: timedelta = field(default=timedelta(0), compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.unit not in _BOUNDS:
            raise ValueError(f"interval unit {self.unit!r} is not one of {', '.join(UNITS)}")
        if self.count < 1:
            raise ValueError(f"an interval counts at least one {self.unit}, not {self.count}")
        low, high = _BOUNDS[self.unit]
        if self.unit in ("minute", "hour"):
            shortest = longest = low * self.count
        elif self.unit in _DAYS_PER:  # counting the day of the check, ±1 h of DST
            shortest = low * self.count - timedelta(days=1, hours=1)
            longest = high * self.count + timedelta(hours=1)
        else:
            shortest, longest = low * self.count, high * self.count
        object.__setattr__(self, "shortest", shortest)
        object.__setattr__(self, "longest", longest)

    @property
    def elapsed(self) -> bool:
        """Whether this is elapsed time (minutes, hours) rather than calendar days or months."""
        return self.unit in ("minute", "hour")

    def __str__(self) -> str:
        return f"{self.count} {self.unit}{'s' if self.count != 1 else ''}"


def parse(text: str) -> Interval:
    """``"12 months"`` → ``Interval(12, "month")``; raises ``ValueError`` naming the text otherwise."""
    match = _PATTERN.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not an interval; expected e.g. '1 day', '8 hours', '12 months'")
    count = int(text.split()[0])
    return Interval(count, match.group(1))  # type: ignore[arg-type]


def add_months(day: date, months: int) -> date:
    """``day`` moved by ``months`` calendar months (negative: back), clamped to that month's last day."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def due(done: date, interval: Interval) -> date:
    """The last calendar day on which something done on ``done`` is current: when it is due again.

    Raises ``ValueError`` for minutes and hours, which are elapsed time and have no due day.
    """
    if interval.unit in _DAYS_PER:
        return done + timedelta(days=interval.count * _DAYS_PER[interval.unit] - 1)
    if interval.unit in _MONTHS_PER:
        return add_months(done, interval.count * _MONTHS_PER[interval.unit])
    raise ValueError(f"{interval} is elapsed time and has no due day; ask expires() for the instant")


def end_of_day(day: date, zone: tzinfo) -> datetime:
    """The first instant after ``day`` in ``zone``: when something current through ``day`` stops being."""
    return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=zone)


@functools.lru_cache(maxsize=8192)
def expires(done: datetime, interval: Interval, zone: tzinfo) -> datetime:
    """The first instant at which something done at ``done`` (aware) is no longer current.

    Cached: a station asks about the same few calibrations, checks and exams at every decision,
    and calendar arithmetic in a time zone costs microseconds each time.
    """
    if interval.unit == "minute":
        return done + timedelta(minutes=interval.count)
    if interval.unit == "hour":
        return done + timedelta(hours=interval.count)
    return end_of_day(due(done.astimezone(zone).date(), interval), zone)


def current(done: datetime, interval: Interval, at: datetime, zone: tzinfo) -> bool:
    """Whether something done at ``done`` is still current at ``at`` (aware; days counted in ``zone``)."""
    span = at - done
    if span < interval.shortest:
        return True
    if span >= interval.longest:
        return False
    return at < expires(done, interval, zone)
