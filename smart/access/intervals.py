"""Calendar intervals as the standards count them: months and years are calendar steps, not day counts.

"Every 12 months" from 31 January is 31 January next year; one month from
31 January is 28 (or 29) February — the same day next month, or that month's
last day when it has no such day. Certification schemes say their intervals
in these words, so the arithmetic lives here once and every rule uses it.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import ClassVar


def add_months(day: date, months: int) -> date:
    """``day`` moved by ``months`` calendar months, clamped to the month's last day."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


@dataclass(frozen=True, slots=True)
class Interval:
    """A period such as "12 months", "5 years" or "7 days", as a scheme states it."""

    __pydantic_config__: ClassVar[dict[str, str]] = {"extra": "forbid"}

    years: int = 0
    months: int = 0
    days: int = 0

    def after(self, day: date) -> date:
        """The first day on which something done on ``day`` is no longer current."""
        return add_months(day, self.years * 12 + self.months) + timedelta(days=self.days)

    def after_instant(self, moment: datetime) -> datetime:
        moved = self.after(moment.date())
        return datetime.combine(moved, moment.timetz())

    def describe(self) -> str:
        parts = [
            f"{n} {unit}{'' if n == 1 else 's'}"
            for n, unit in ((self.years, "year"), (self.months, "month"), (self.days, "day"))
            if n
        ]
        return " ".join(parts) or "0 days"
