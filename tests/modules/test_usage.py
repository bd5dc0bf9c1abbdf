"""Usage counters due and overdue by use; the AS9100D 7.1.5.2 recall of jobs measured with a bad gauge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smart.contracts import facts as f
from smart.modules.maintenance import usage
from smart.node import records

AT = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def bulb(since_service: float = 0.0, total: float = 0.0) -> usage.Counter:
    return usage.Counter(
        "uv-lamp-2",
        "lamp-bulb",
        "hours",
        service_every=1500.0,
        due_within=100.0,
        since_service=since_service,
        total=total,
    )


def test_a_counter_is_ok_then_due_within_its_margin_then_overdue() -> None:
    assert bulb(since_service=1399.0).status == "ok"
    assert bulb(since_service=1400.0).status == "due"
    assert bulb(since_service=1500.0).status == "overdue"
    assert bulb(since_service=1450.0).describe() == (
        "uv-lamp-2 lamp-bulb due: 50 hours left (1450 hours since service)"
    )
    assert "overdue: 1520 hours since service, due at 1500" in bulb(since_service=1520.0).describe()


def test_running_hours_count_up_and_service_resets_but_keeps_the_total() -> None:
    counter = usage.run(
        bulb(since_service=1395.0, total=9000.0), started=AT, stopped=AT + timedelta(hours=7.5)
    )
    assert counter.since_service == pytest.approx(1402.5) and counter.status == "due"
    assert counter.total == pytest.approx(9007.5)
    fresh = usage.serviced(counter, at=AT + DAY)
    assert (fresh.since_service, fresh.last_service_at, fresh.status) == (0.0, AT + DAY, "ok")
    assert fresh.total == pytest.approx(9007.5)


def test_a_cycles_counter_counts_each_run_once() -> None:
    seal = usage.Counter("furnace-3", "door-seal", "cycles", service_every=2.0)
    seal = usage.run(seal, started=AT, stopped=AT + timedelta(hours=6))
    assert seal.status == "ok"
    assert usage.count(seal).status == "overdue"


def test_bad_counters_and_counts_are_refused() -> None:
    with pytest.raises(usage.CounterError, match="threshold must be positive"):
        usage.Counter("x", "t", "cycles", service_every=0.0)
    with pytest.raises(usage.CounterError, match="due margin"):
        usage.Counter("x", "t", "cycles", service_every=10.0, due_within=10.0)
    with pytest.raises(usage.CounterError, match="cannot count -1"):
        usage.count(bulb(), -1.0)
    with pytest.raises(usage.CounterError, match="before it starts"):
        usage.run(bulb(), started=AT, stopped=AT - DAY)


CALIBRATIONS = (
    f.Calibration(AT - 400 * DAY),
    f.Calibration(AT - 180 * DAY),
    f.Calibration(AT, in_tolerance=False),
)
USES = (
    usage.Use("J-0990", "uv-meter-7", AT - 200 * DAY),  # before the last good calibration
    usage.Use("J-1001", "uv-meter-7", AT - 150 * DAY),
    usage.Use("J-1002", "uv-meter-3", AT - 100 * DAY),  # another meter
    usage.Use("J-1003", "uv-meter-7", AT - 30 * DAY),
    usage.Use("J-1001", "uv-meter-7", AT - 20 * DAY),
    usage.Use("J-1004", "uv-meter-7", AT),  # the morning it was found
    usage.Use("J-1005", "uv-meter-7", AT + DAY),  # after: refused by the calibration rule, not suspect
)


def test_recall_lists_every_job_measured_since_the_last_good_calibration() -> None:
    found = usage.recall(equipment="uv-meter-7", found_at=AT, calibrations=CALIBRATIONS, uses=USES)
    assert found.last_good == AT - 180 * DAY
    assert [(job.job, job.uses) for job in found.jobs] == [
        ("J-1001", (AT - 150 * DAY, AT - 20 * DAY)),
        ("J-1003", (AT - 30 * DAY,)),
        ("J-1004", (AT,)),
    ]
    assert "3 job(s) measured since its last good calibration" in found.message
    assert found.message.endswith("J-1001, J-1003, J-1004")


def test_with_no_good_calibration_every_earlier_use_is_recalled() -> None:
    found = usage.recall(equipment="uv-meter-7", found_at=AT, calibrations=[CALIBRATIONS[2]], uses=USES)
    assert found.last_good is None
    assert [job.job for job in found.jobs] == ["J-0990", "J-1001", "J-1003", "J-1004"]
    assert "no good calibration on record" in found.message


def test_a_gauge_never_used_since_its_calibration_recalls_nothing() -> None:
    found = usage.recall(equipment="uv-meter-9", found_at=AT, calibrations=CALIBRATIONS, uses=USES)
    assert found.jobs == () and found.message.endswith("need impact review: none")


def test_an_equipment_record_with_an_impossible_usage_limit_is_refused_naming_the_task() -> None:
    good = {"id": "UV-LAMP-1", "kind": "uv-lamp"}
    assert records.parse("equipment", good).usage_limits == ()  # records from before counters still read
    bad = {**good, "usage_limits": [{"task": "bulb", "unit": "hours", "every": 100, "due_within": 100}]}
    with pytest.raises(records.RecordError, match="usage limit bulb: every must be > 0"):
        records.parse("equipment", bad)
    with pytest.raises(records.RecordError, match="usage_limits"):
        records.parse("equipment", {**good, "usage_limits": [{"task": "bulb", "unit": "days", "every": 3}]})
