"""What "daily", "weekly" and "monthly" mean (DOMAIN rule 23), encoded once and used by both pillars."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from smart import intervals
from smart.access import issuing
from smart.access.derive import Status, standings
from smart.access.records import Record, RecordKind
from smart.access.schemes import SchemeError, load_courses
from smart.contracts import engine
from smart.contracts import facts as f

UTC_ZONE = ZoneInfo("UTC")
CHICAGO = ZoneInfo("America/Chicago")


def test_monthly_runs_to_the_same_day_next_month_inclusive() -> None:
    done = datetime(2026, 3, 15, 14, 0, tzinfo=UTC)
    assert intervals.due(done.date(), intervals.parse("1 month")) == date(2026, 4, 15)
    assert intervals.expires(done, intervals.parse("1 month"), UTC_ZONE) == datetime(2026, 4, 16, tzinfo=UTC)


def test_one_month_after_31_january_is_the_last_day_of_february() -> None:
    assert intervals.add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert intervals.add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert intervals.add_months(date(2026, 3, 15), -12) == date(2025, 3, 15)


def test_month_end_clamps_to_the_last_day_of_a_shorter_month() -> None:
    monthly = intervals.parse("1 month")
    assert intervals.expires(datetime(2026, 1, 31, 9, 0, tzinfo=UTC), monthly, UTC_ZONE) == datetime(
        2026, 3, 1, tzinfo=UTC
    )
    assert intervals.expires(datetime(2028, 1, 31, 9, 0, tzinfo=UTC), monthly, UTC_ZONE) == datetime(
        2028, 3, 1, tzinfo=UTC
    )  # leap year: good through 29 February


def test_a_yearly_check_done_on_29_february_is_due_on_28_february() -> None:
    yearly = intervals.parse("1 year")
    assert intervals.due(date(2028, 2, 29), yearly) == date(2029, 2, 28)
    assert intervals.due(date(2028, 2, 29), intervals.parse("4 years")) == date(2032, 2, 29)
    assert intervals.due(date(2028, 2, 29), intervals.parse("12 months")) == date(2029, 2, 28)
    done = datetime(2028, 2, 29, 10, 0, tzinfo=UTC)
    assert intervals.current(done, yearly, datetime(2029, 2, 28, 23, 59, tzinfo=UTC), UTC_ZONE)
    assert not intervals.current(done, yearly, datetime(2029, 3, 1, 0, 0, tzinfo=UTC), UTC_ZONE)


def test_weekly_is_seven_calendar_days_counting_the_day_of_the_check() -> None:
    monday = datetime(2026, 3, 9, 16, 0, tzinfo=UTC)
    weekly = intervals.parse("7 days")
    assert intervals.due(monday.date(), weekly) == date(2026, 3, 15)  # Sunday
    assert intervals.due(monday.date(), intervals.parse("1 week")) == date(2026, 3, 15)
    assert intervals.current(monday, weekly, datetime(2026, 3, 15, 23, 59, tzinfo=UTC), UTC_ZONE)
    assert not intervals.current(monday, weekly, datetime(2026, 3, 16, 0, 0, tzinfo=UTC), UTC_ZONE)


def test_daily_check_done_today_is_current_until_the_end_of_today_in_the_contracts_time_zone() -> None:
    done = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)  # 23:00 on 9 March in Chicago
    daily = intervals.parse("1 day")
    assert intervals.expires(done, daily, CHICAGO) == datetime(2026, 3, 10, 0, 0, tzinfo=CHICAGO)
    assert intervals.current(done, daily, datetime(2026, 3, 10, 4, 30, tzinfo=UTC), CHICAGO)
    assert not intervals.current(done, daily, datetime(2026, 3, 10, 6, 0, tzinfo=UTC), CHICAGO)
    # the same check in a UTC contract is done on 10 March and good through it
    assert intervals.expires(done, daily, UTC_ZONE) == datetime(2026, 3, 11, tzinfo=UTC)


def test_hours_are_elapsed_time() -> None:
    done = datetime(2026, 3, 10, 6, 10, tzinfo=UTC)
    shift = intervals.parse("8 hours")
    assert intervals.current(done, shift, done + timedelta(hours=7, minutes=59), UTC_ZONE)
    assert not intervals.current(done, shift, done + timedelta(hours=8), UTC_ZONE)
    with pytest.raises(ValueError, match="no due day"):
        intervals.due(done.date(), shift)


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
    with pytest.raises(ValueError, match="at least one month"):
        intervals.Interval(0, "month")


def test_a_scheme_period_reads_as_the_same_interval_a_contract_writes(tmp_path: Path) -> None:
    good = tmp_path / "courses.yaml"
    good.write_text(
        "courses:\n"
        "  - {course: a, kind: safety, title: A, valid_for: {years: 1}}\n"
        "  - {course: b, kind: safety, title: B, valid_for: {months: 12}}\n"
        "  - {course: c, kind: safety, title: C, valid_for: {years: 1, months: 6}}\n"
        "  - {course: d, kind: safety, title: D, valid_for: {days: 7}}\n"
    )
    loaded = {name: course.valid_for for name, course in load_courses(good).items()}
    assert loaded == {
        "a": intervals.parse("1 year"),
        "b": intervals.parse("12 months"),
        "c": intervals.parse("18 months"),
        "d": intervals.parse("7 days"),
    }
    mixed = tmp_path / "mixed.yaml"
    mixed.write_text("courses:\n  - {course: a, kind: safety, title: A, valid_for: {months: 1, days: 3}}\n")
    with pytest.raises(SchemeError, match=r"courses\.0\.valid_for: .*months or calendar days, not both"):
        load_courses(mixed)


# The same eye exam, judged on the same days by the contracts engine (at the gate) and by the access
# derivation (at the hub, issuing the credential): a 12-month near-vision exam of 2025-03-15 is
# current through 2026-03-15 and not on 2026-03-16.

EXAM_DAY = date(2025, 3, 15)
DUE_DAY = date(2026, 3, 15)
TAKEN = datetime(2025, 3, 15, 15, 0, tzinfo=CHICAGO)


def _gate(at: datetime) -> bool:
    bundle = {
        "contract": "penetrant",
        "station": "pt-1",
        "enforcement": "enforce",
        "timezone": "America/Chicago",
        "rules": [{"kind": "exam", "id": "vision", "exam": "near-vision", "every": "12 months"}],
    }
    person = f.Person(id="op-1", exams=(f.Exam("near-vision", TAKEN.astimezone(UTC), "jaeger-1-12in"),))
    event = f.Event(action="operate", at=at, station="pt-1", person="op-1")
    decision = engine.evaluator(bundle, "rev-1").evaluate(event, f.Facts(people={"op-1": person}))
    return decision.outcome == "allow"


def _records() -> list[Record]:
    certified_on = date(2024, 6, 3)
    exams_on = certified_on - timedelta(days=30)
    return [
        Record(RecordKind.EXAM, exams_on, method="PT", exam="general", score=84),
        Record(RecordKind.EXAM, exams_on, method="PT", exam="specific", score=80),
        Record(RecordKind.EXAM, exams_on, method="PT", exam="practical", score=91, samples=2),
        Record(RecordKind.CERTIFICATION, certified_on, method="PT", level="2", scheme="NAS410"),
        Record(RecordKind.EYE_EXAM, EXAM_DAY, test="near_vision", test_type="jaeger-1-at-12in"),
        Record(RecordKind.EYE_EXAM, date(2024, 1, 10), test="colour_vision", test_type="ishihara"),
        Record(RecordKind.PERFORMANCE, date(2025, 12, 1), method="PT"),
    ]


def _hub(today: date) -> Status:
    (pt,) = standings(_records(), today=today)
    return pt.status


def test_12_month_eye_exam_of_2025_03_15_is_current_on_2026_03_15_at_the_gate_and_at_the_hub() -> None:
    assert intervals.due(EXAM_DAY, intervals.parse("12 months")) == DUE_DAY
    last_minute = datetime(2026, 3, 15, 23, 59, tzinfo=CHICAGO)
    assert _gate(last_minute) is True
    assert _hub(DUE_DAY) is Status.CURRENT
    next_morning = datetime(2026, 3, 16, 0, 1, tzinfo=CHICAGO)
    assert _gate(next_morning) is False
    assert _hub(DUE_DAY + timedelta(days=1)) is Status.SUSPENDED


def test_a_credential_issued_over_the_eye_exam_expires_when_the_gate_stops_accepting_the_exam() -> None:
    (pt,) = standings(_records(), today=date(2026, 1, 5))
    assert pt.current and pt.valid_until == DUE_DAY
    credential = issuing.from_standing(
        pt,
        subject="B-0042",
        now=datetime(2026, 1, 5, 8, 0, tzinfo=CHICAGO),
        lifetime=timedelta(days=365),
        issuer_key_id="k",
        zone=CHICAGO,
    )
    gate_expiry = intervals.expires(TAKEN, intervals.parse("12 months"), CHICAGO)
    assert credential.expires_at == gate_expiry == datetime(2026, 3, 16, 0, 0, tzinfo=CHICAGO)
    assert _gate(gate_expiry - timedelta(seconds=1)) and not _gate(gate_expiry)
