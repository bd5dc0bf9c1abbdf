"""What "daily", "weekly" and "monthly" mean (DOMAIN rule 23), encoded once."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from smart.contracts import intervals

UTC_ZONE = ZoneInfo("UTC")


def test_monthly_runs_to_the_same_day_next_month_inclusive() -> None:
    done = datetime(2026, 3, 15, 14, 0, tzinfo=UTC)
    assert intervals.expires(done, intervals.parse("1 month"), UTC_ZONE) == datetime(2026, 4, 16, tzinfo=UTC)


def test_month_end_clamps_to_the_last_day_of_a_shorter_month() -> None:
    monthly = intervals.parse("1 month")
    assert intervals.expires(datetime(2026, 1, 31, 9, 0, tzinfo=UTC), monthly, UTC_ZONE) == datetime(
        2026, 3, 1, tzinfo=UTC
    )
    assert intervals.expires(datetime(2028, 1, 31, 9, 0, tzinfo=UTC), monthly, UTC_ZONE) == datetime(
        2028, 3, 1, tzinfo=UTC
    )  # leap year: good through 29 February


def test_weekly_is_seven_calendar_days_counting_the_day_of_the_check() -> None:
    monday = datetime(2026, 3, 9, 16, 0, tzinfo=UTC)
    weekly = intervals.parse("7 days")
    assert intervals.current(monday, weekly, datetime(2026, 3, 15, 23, 59, tzinfo=UTC), UTC_ZONE)
    assert not intervals.current(monday, weekly, datetime(2026, 3, 16, 0, 0, tzinfo=UTC), UTC_ZONE)


def test_daily_means_the_same_calendar_day_in_the_contracts_time_zone() -> None:
    chicago = ZoneInfo("America/Chicago")
    done = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)  # 23:00 on 9 March in Chicago
    daily = intervals.parse("1 day")
    assert not intervals.current(done, daily, datetime(2026, 3, 10, 6, 0, tzinfo=UTC), chicago)
    assert intervals.current(done, daily, datetime(2026, 3, 10, 4, 30, tzinfo=UTC), chicago)


def test_hours_are_elapsed_time() -> None:
    done = datetime(2026, 3, 10, 6, 10, tzinfo=UTC)
    shift = intervals.parse("8 hours")
    assert intervals.current(done, shift, done + timedelta(hours=7, minutes=59), UTC_ZONE)
    assert not intervals.current(done, shift, done + timedelta(hours=8), UTC_ZONE)


@pytest.mark.parametrize(
    "text", ["5 minutes", "8 hours", "1 day", "7 days", "1 month", "6 months", "5 years"]
)
@pytest.mark.parametrize("zone", ["UTC", "America/Chicago", "Europe/London"])
def test_the_quick_bounds_never_disagree_with_the_calendar(text: str, zone: str) -> None:
    interval, tz, rng = intervals.parse(text), ZoneInfo(zone), random.Random(text + zone)
    for _ in range(2000):
        done = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 3 * 365 * 86400))
        at = done + timedelta(
            seconds=rng.randint(-86400, int(interval.longest.total_seconds() * 1.2) + 86400)
        )
        assert intervals.current(done, interval, at, tz) == (at < intervals.expires(done, interval, tz))


def test_an_interval_that_is_not_one_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'fortnightly' is not an interval"):
        intervals.parse("fortnightly")
