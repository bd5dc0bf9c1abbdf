"""A trainee's supervisor (or instructor) is judged by every currency rule applied to an operator."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smart.contracts import engine
from smart.contracts import facts as f
from smart.contracts.rules import Level
from tests.contracts.test_engine import evaluator

AT = datetime(2026, 9, 14, 13, 45, tzinfo=UTC)
DAY = timedelta(days=1)

RULE = {
    "kind": "credential",
    "id": "mt-cert",
    "method": "MT",
    "minLevel": "level-2",
    "supervisor": {"minLevel": "level-2", "instructorAllowed": True},
    "recertifyEvery": "5 years",
    "lapseIfNotPerformedFor": "12 months",
    "practicalExam": {"minSamples": 2},
}


def mt_cert(level: Level, **changes: Any) -> f.Certification:
    base = f.Certification("MT", level, issued=AT - 1000 * DAY, expires=AT + 800 * DAY, practical_samples=2)
    return dataclasses.replace(base, **changes)


def sup(**changes: Any) -> f.Person:
    """A Level 3 supervisor who passes everything; ``changes`` break one rule at a time."""
    cert_changes = {k: v for k, v in changes.items() if k in f.Certification.__dataclass_fields__}
    person_changes = {k: v for k, v in changes.items() if k not in cert_changes}
    base = f.Person(
        "sv-4",
        certifications=(mt_cert(cert_changes.pop("level", Level.LEVEL_3), **cert_changes),),
        last_performed={"MT": AT - 30 * DAY},
    )
    return dataclasses.replace(base, **person_changes)


def judge(supervisor: f.Person) -> engine.Decision:
    trainee = f.Person("tr-8", (mt_cert(Level.TRAINEE),), last_performed={"MT": AT - 2 * DAY})
    world = f.Facts(people={"tr-8": trainee, supervisor.id: supervisor})
    event = f.Event("operate", AT, "mt-1", person="tr-8", supervisor=supervisor.id)
    return evaluator(RULE).evaluate(event, world)


def test_a_current_level_3_supervises_a_trainee() -> None:
    assert judge(sup()).outcome == "allow"


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"basis": "rehire"}, "rests on rehire, not an exam"),
        # recertification: 5 years from issue; issued 5 years and a day ago is past it
        ({"issued": datetime(2021, 9, 13, 13, 45, tzinfo=UTC)}, "past recertification"),
        ({"last_performed": {"MT": AT - 366 * DAY}}, "certification lapsed"),
        ({"revoked": True, "revoked_at": AT - timedelta(minutes=1)}, "holds no current MT"),
        ({"revoked": True}, "holds no current MT"),
        ({"expires": AT}, "holds no current MT"),
        ({"issued": AT + timedelta(seconds=1)}, "holds no current MT"),
        ({"practical_samples": 1}, "too few samples"),
    ],
    ids=[
        "rehire",
        "past-recert",
        "lapsed",
        "revoked-a-minute-before",
        "revoked-undated",
        "expired-at-event",
        "issued-after-event",
        "practical",
    ],
)
def test_a_supervisor_failing_any_currency_rule_does_not_qualify(changes: dict[str, Any], words: str) -> None:
    decision = judge(sup(**changes))
    assert decision.outcome == "deny"
    reason = decision.reasons[0]
    assert reason.rule == "mt-cert" and words in reason.message, reason.message
    assert "supervisor does not qualify" in reason.message and reason.values["supervisor"] == "sv-4"


@pytest.mark.parametrize(
    ("changes"),
    [
        # exactly 5 years since issue on the shop's calendar is still current the whole due day
        {"issued": datetime(2021, 9, 14, 6, 0, tzinfo=UTC)},
        # performed 12 months ago to the day: current through the due day
        {"last_performed": {"MT": datetime(2025, 9, 14, 20, 0, tzinfo=UTC)}},
        # a revocation dated after the event does not count for it
        {"revoked": True, "revoked_at": AT + timedelta(seconds=1)},
        {"expires": AT + timedelta(seconds=1)},
        {"issued": AT},
    ],
    ids=[
        "recert-due-day",
        "performed-12-months-to-the-day",
        "revoked-after",
        "expires-a-second-after",
        "issued-at-event",
    ],
)
def test_a_supervisor_at_each_boundary_still_qualifies(changes: dict[str, Any]) -> None:
    assert judge(sup(**changes)).outcome == "allow"


def test_a_supervisor_whose_only_performance_is_after_the_event_has_lapsed() -> None:
    assert judge(sup(last_performed={"MT": AT + DAY})).outcome == "deny"
    earlier = sup(last_performed={"MT": AT + DAY}, performed={"MT": (AT - 40 * DAY,)})
    assert judge(earlier).outcome == "allow"


def test_an_instructor_below_level_2_supervises_only_when_current() -> None:
    instructor = sup(level=Level.LEVEL_1, instructor=True)
    assert judge(instructor).outcome == "allow"
    assert (
        "rests on rehire"
        in judge(sup(level=Level.LEVEL_1, instructor=True, basis="rehire")).reasons[0].message
    )
    plain = judge(sup(level=Level.LEVEL_1))
    assert plain.outcome == "deny" and plain.reasons[0].values["supervisor_level"] == Level.LEVEL_1


def test_a_trainee_cannot_supervise_themselves() -> None:
    trainee = f.Person("tr-8", (mt_cert(Level.TRAINEE),), last_performed={"MT": AT - 2 * DAY})
    world = f.Facts(people={"tr-8": trainee})
    event = f.Event("operate", AT, "mt-1", person="tr-8", supervisor="tr-8")
    assert evaluator(RULE).evaluate(event, world).outcome == "deny"
