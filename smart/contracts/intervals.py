"""How often: the one place that says what "daily", "weekly" and "monthly" mean.

Shops argue over what "monthly" means (DOMAIN rule 23, S20), so SMART
encodes it once and every rule uses it:

- ``minutes`` and ``hours`` are elapsed time: a check every ``8 hours`` done
  at 06:10 is good until 14:10.
- ``days`` and ``weeks`` are calendar days in the contract's time zone,
  counting the day of the check as the first: a ``1 day`` check is good for
  the rest of that calendar day ("done today"); a ``7 days`` (weekly) check
  done on a Monday is good through Sunday.
- ``months`` and ``years`` run to the same day of the month that many
  months later, inclusive ("monthly" done on 15 March is good through 15
  April); when that month is shorter, the due day is its last day (31
  January → 28 or 29 February).

A check is current at a moment when the moment is before the end of its
interval; :func:`expires` gives that end.
"""

from __future__ import annotations

import calendar
import functools
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Literal

IntervalUnit = Literal["minute", "hour", "day", "week", "month", "year"]

#: What a contract may write: a positive count and a unit, singular or plural.
PATTERN = r"^[1-9][0-9]{0,3} (minute|hour|day|week|month|year)s?$"
_PATTERN = re.compile(PATTERN)


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
    count: int
    unit: IntervalUnit
    shortest: timedelta = field(default=timedelta(0), compare=False, repr=False)
    longest: timedelta = field(default=timedelta(0), compare=False, repr=False)

    def __post_init__(self) -> None:
        low, high = _BOUNDS[self.unit]
        if self.unit in ("minute", "hour"):
            shortest = longest = low * self.count
        elif self.unit in ("day", "week"):  # counting the day of the check, ±1 h of DST
            shortest = low * self.count - timedelta(days=1, hours=1)
            longest = high * self.count + timedelta(hours=1)
        else:
            shortest, longest = low * self.count, high * self.count
        object.__setattr__(self, "shortest", shortest)
        object.__setattr__(self, "longest", longest)

    def __str__(self) -> str:
        return f"{self.count} {self.unit}{'s' if self.count != 1 else ''}"


def parse(text: str) -> Interval:
    """``"12 months"`` → ``Interval(12, "month")``; raises ``ValueError`` naming the text otherwise."""
    match = _PATTERN.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not an interval; expected e.g. '1 day', '8 hours', '12 months'")
    count = int(text.split()[0])
    return Interval(count, match.group(1))  # type: ignore[arg-type]


def _add_months(moment: datetime, months: int) -> datetime:
    total = moment.month - 1 + months
    year, month = moment.year + total // 12, total % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@functools.lru_cache(maxsize=8192)
def expires(done: datetime, interval: Interval, zone: tzinfo) -> datetime:
    """The first moment at which something done at ``done`` is no longer current (aware datetime).

    Cached: a station asks about the same few calibrations, checks and exams at every decision,
    and calendar arithmetic in a time zone costs microseconds each time.
    """
    if interval.unit == "minute":
        return done + timedelta(minutes=interval.count)
    if interval.unit == "hour":
        return done + timedelta(hours=interval.count)
    local = done.astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval.unit in ("day", "week"):
        days = interval.count * (7 if interval.unit == "week" else 1)
        end = (midnight + timedelta(days=days)).replace(tzinfo=None)
    else:
        months = interval.count * (12 if interval.unit == "year" else 1)
        end = (_add_months(midnight, months) + timedelta(days=1)).replace(tzinfo=None)
    return _localize(end, zone)


def _localize(naive: datetime, zone: tzinfo) -> datetime:
    return naive.replace(tzinfo=zone)


def current(done: datetime, interval: Interval, at: datetime, zone: tzinfo) -> bool:
    """Whether something done at ``done`` is still current at ``at``."""
    span = at - done
    if span < interval.shortest:
        return True
    if span >= interval.longest:
        return False
    return at < expires(done, interval, zone)
