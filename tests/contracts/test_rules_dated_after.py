"""Nothing dated after an event makes it compliant, for every kind of record; re-judging gives the same."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smart.contracts import engine
from smart.contracts import facts as f
from smart.contracts.rules import Level
from tests.contracts.test_engine import evaluator

AT = datetime(2026, 11, 3, 10, 20, tzinfo=UTC)
DAY = timedelta(days=1)
LATER = AT + timedelta(seconds=1)

CERT = {
    "kind": "credential",
    "id": "cert",
    "method": "PT",
    "minLevel": "level-2",
    "lapseIfNotPerformedFor": "12 months",
}
EXAM = {"kind": "exam", "id": "eyes", "exam": "near-vision", "every": "12 months"}
CHECK = {"kind": "check", "id": "tam", "check": "tam-panel", "every": "1 day", "afterMaintenance": True}
READING = {
    "kind": "measurement",
    "id": "uva",
    "quantity": "uv-a-intensity",
    "check": "uv-a",
    "unit": "µW/cm²",
    "limits": {"min": 1000},
}
CAL = {"kind": "calibration", "id": "cal", "equipmentKinds": ["light-meter"], "every": "6 months"}
TUS = {
    "kind": "survey",
    "id": "tus",
    "survey": "TUS",
    "intervals": [{"classes": ["2"], "instrumentation": ["B"], "every": "1 month"}],
}
SAT = {
    "kind": "survey",
    "id": "sat",
    "survey": "SAT",
    "intervals": [{"classes": ["2"], "instrumentation": ["B"], "every": "3 months"}],
}
EVERY = (CERT, EXAM, CHECK, READING, CAL, TUS, SAT)


def operator(**changes: Any) -> f.Person:
    base = f.Person(
        "op-3",
        (f.Certification("PT", Level.LEVEL_2, AT - 400 * DAY, AT + 400 * DAY),),
        exams=(f.Exam("near-vision", AT - 100 * DAY),),
        last_performed={"PT": AT - 5 * DAY},
    )
    return dataclasses.replace(base, **changes)


def tam(at: datetime, passed: bool = True) -> f.CheckRecord:
    return f.CheckRecord("tam-panel", at, passed, equipment="LINE-2")


def uva(at: datetime, value: float) -> f.CheckRecord:
    return f.CheckRecord("uv-a", at, True, readings={"uv-a-intensity": f.Reading(value, "µW/cm²")})


def meter(**changes: Any) -> f.EquipmentRecord:
    base = f.EquipmentRecord("UVM-5", "light-meter", calibration=f.Calibration(AT - 50 * DAY))
    return dataclasses.replace(base, **changes)


def furnace(**changes: Any) -> f.EquipmentRecord:
    base = f.EquipmentRecord(
        "F-9",
        "furnace",
        attributes={"class": "2", "instrumentation": "B"},
        surveys={"TUS": AT - 20 * DAY, "SAT": AT - 60 * DAY},
    )
    return dataclasses.replace(base, **changes)


def world(**changes: Any) -> f.Facts:
    base = f.Facts(
        people={"op-3": operator()},
        equipment={
            "UVM-5": meter(),
            "F-9": furnace(),
            "LINE-2": f.EquipmentRecord("LINE-2", "penetrant-line", maintained_at=AT - 10 * DAY),
        },
        checks={"tam-panel": tam(AT - timedelta(hours=2)), "uv-a": uva(AT - timedelta(hours=2), 1150)},
    )
    return dataclasses.replace(base, **changes)


def decide(facts: f.Facts) -> engine.Decision:
    event = f.Event("operate", AT, "pt-1", person="op-3", equipment=("UVM-5", "F-9", "LINE-2"))
    return evaluator(*EVERY).evaluate(event, facts)


def denied_by(decision: engine.Decision) -> set[str]:
    return {reason.rule for reason in decision.reasons}


def test_the_shop_as_it_stood_is_allowed() -> None:
    assert decide(world()).outcome == "allow"


# -- a record dated after the event, and nothing before it: never counts ------------------------

ONLY_LATER: list[tuple[str, Callable[[f.Facts], f.Facts]]] = [
    (
        "cert",
        lambda w: dataclasses.replace(
            w,
            people={
                "op-3": operator(
                    certifications=(f.Certification("PT", Level.LEVEL_2, LATER, AT + 900 * DAY),)
                )
            },
        ),
    ),
    ("cert", lambda w: dataclasses.replace(w, people={"op-3": operator(last_performed={"PT": LATER})})),
    (
        "eyes",
        lambda w: dataclasses.replace(w, people={"op-3": operator(exams=(f.Exam("near-vision", LATER),))}),
    ),
    ("tam", lambda w: dataclasses.replace(w, checks={**w.checks, "tam-panel": tam(LATER)})),
    ("uva", lambda w: dataclasses.replace(w, checks={**w.checks, "uv-a": uva(LATER, 1300)})),
    (
        "cal",
        lambda w: dataclasses.replace(
            w, equipment={**w.equipment, "UVM-5": meter(calibration=f.Calibration(LATER))}
        ),
    ),
    (
        "tus",
        lambda w: dataclasses.replace(
            w, equipment={**w.equipment, "F-9": furnace(surveys={"TUS": LATER, "SAT": AT - 60 * DAY})}
        ),
    ),
    (
        "sat",
        lambda w: dataclasses.replace(
            w, equipment={**w.equipment, "F-9": furnace(surveys={"TUS": AT - 20 * DAY, "SAT": LATER})}
        ),
    ),
    (
        "tus",
        lambda w: dataclasses.replace(
            w,
            equipment={
                **w.equipment,
                "F-9": furnace(surveys={"SAT": AT - 60 * DAY}, survey_records=(f.Survey("TUS", LATER),)),
            },
        ),
    ),
]


@pytest.mark.parametrize(
    ("rule", "change"),
    ONLY_LATER,
    ids=[
        "certification-issued-after",
        "performed-only-after",
        "eye-exam-after",
        "check-after",
        "check-reading-after",
        "calibration-after",
        "tus-after",
        "sat-after",
        "tus-record-after",
    ],
)
def test_a_record_dated_a_second_after_the_event_does_not_count(
    rule: str, change: Callable[[f.Facts], f.Facts]
) -> None:
    decision = decide(change(world()))
    assert decision.outcome == "deny" and rule in denied_by(decision), decision


def test_a_record_dated_at_the_event_counts() -> None:
    at_event = dataclasses.replace(
        world(),
        checks={"tam-panel": tam(AT), "uv-a": uva(AT, 1000)},
        equipment={
            **world().equipment,
            "UVM-5": meter(calibration=f.Calibration(AT)),
            "F-9": furnace(surveys={"TUS": AT, "SAT": AT}),
        },
    )
    assert decide(at_event).outcome == "allow"


# -- re-judging the past with today's records gives the same answer -------------------------------


def today(past: f.Facts) -> f.Facts:
    """The same shop a week on: every record renewed after the event, the earlier ones kept as history."""
    week = AT + 7 * DAY
    person = past.people["op-3"]
    renewed = dataclasses.replace(
        person,
        certifications=(*person.certifications, f.Certification("PT", Level.LEVEL_3, week, week + 900 * DAY)),
        exams=(*person.exams, f.Exam("near-vision", week)),
        last_performed={"PT": week},
        performed={"PT": tuple(t for t in (person.last_performed.get("PT"),) if t is not None)},
    )
    equipment = dict(past.equipment)
    m = equipment["UVM-5"]
    equipment["UVM-5"] = dataclasses.replace(
        m, calibration=f.Calibration(week), calibrations=tuple(c for c in (m.calibration,) if c is not None)
    )
    fu = equipment["F-9"]
    equipment["F-9"] = dataclasses.replace(
        fu,
        surveys={"TUS": week, "SAT": week},
        survey_records=tuple(f.Survey(kind, when) for kind, when in fu.surveys.items()),
    )
    line = equipment["LINE-2"]
    equipment["LINE-2"] = dataclasses.replace(
        line, maintained_at=AT + DAY, maintenances=tuple(t for t in (line.maintained_at,) if t is not None)
    )
    return dataclasses.replace(
        past,
        people={"op-3": renewed},
        equipment=equipment,
        checks={"tam-panel": tam(week), "uv-a": uva(week, 1400)},
        check_history={name: (record,) for name, record in past.checks.items()},
    )


PASTS: list[Callable[[], f.Facts]] = [
    world,
    lambda: dataclasses.replace(
        world(), checks={**world().checks, "uv-a": uva(AT - timedelta(hours=1), 940)}
    ),
    lambda: dataclasses.replace(
        world(), checks={**world().checks, "tam-panel": tam(AT - timedelta(hours=1), False)}
    ),
    lambda: dataclasses.replace(
        world(), equipment={**world().equipment, "UVM-5": meter(calibration=f.Calibration(AT - 190 * DAY))}
    ),
    lambda: dataclasses.replace(
        world(),
        equipment={**world().equipment, "F-9": furnace(surveys={"TUS": AT - 40 * DAY, "SAT": AT - 60 * DAY})},
    ),
    lambda: dataclasses.replace(
        world(),
        equipment={
            **world().equipment,
            "F-9": furnace(surveys={"TUS": AT - 20 * DAY, "SAT": AT - 100 * DAY}),
        },
    ),
    lambda: dataclasses.replace(
        world(), people={"op-3": operator(exams=(f.Exam("near-vision", AT - 370 * DAY),))}
    ),
    lambda: dataclasses.replace(world(), people={"op-3": operator(last_performed={"PT": AT - 400 * DAY})}),
    lambda: dataclasses.replace(
        world(),
        equipment={
            **world().equipment,
            "LINE-2": f.EquipmentRecord("LINE-2", "penetrant-line", maintained_at=AT - timedelta(hours=1)),
        },
    ),
]


@pytest.mark.parametrize(
    "past",
    PASTS,
    ids=[
        "allowed",
        "uva-940",
        "tam-failed",
        "calibration-overdue",
        "tus-overdue",
        "sat-overdue",
        "eye-exam-13-months",
        "not-performed-400-days",
        "maintained-after-the-check",
    ],
)
def test_an_audit_with_todays_records_gives_the_answer_of_the_day(past: Callable[[], f.Facts]) -> None:
    then = decide(past())
    again = decide(today(past()))
    assert again.outcome == then.outcome
    assert denied_by(again) == denied_by(then)
    assert [r.message for r in again.reasons] == [r.message for r in then.reasons]


def test_later_records_do_allow_a_later_event() -> None:
    """The history is kept for the past; the renewed records still judge what comes after them."""
    overdue = dataclasses.replace(
        world(), equipment={**world().equipment, "UVM-5": meter(calibration=f.Calibration(AT - 190 * DAY))}
    )
    event = f.Event("operate", AT + 8 * DAY, "pt-1", person="op-3", equipment=("UVM-5",))
    assert evaluator(CAL).evaluate(event, today(overdue)).outcome == "allow"


def test_the_history_crosses_the_json_edge() -> None:
    """The hub publishes records as JSON; their earlier values arrive with them."""
    facts = f.facts_from_json(
        {
            "checks": {
                "tam-panel": {"check": "tam-panel", "at": "2026-11-10T08:00:00+00:00", "passed": True}
            },
            "check_history": {
                "tam-panel": [{"check": "tam-panel", "at": "2026-11-03T07:00:00+00:00", "passed": True}]
            },
            "equipment": {
                "VF-1": {
                    "id": "VF-1",
                    "kind": "furnace",
                    "calibration": {"at": "2026-11-05T00:00:00+00:00"},
                    "calibrations": [{"at": "2026-06-01T00:00:00+00:00"}],
                    "survey_records": [{"survey": "SAT", "at": "2026-10-01T00:00:00+00:00", "range": "low"}],
                    "qualified_ranges": [
                        {
                            "id": "low",
                            "min": {"value": 400, "unit": "°C"},
                            "max": {"value": 800, "unit": "°C"},
                        }
                    ],
                }
            },
        }
    )
    assert facts.check_by("tam-panel", AT) == f.CheckRecord(
        "tam-panel", AT - timedelta(hours=3, minutes=20), True
    )
    furnace = facts.equipment["VF-1"]
    assert furnace.calibration_by(AT) == f.Calibration(datetime(2026, 6, 1, tzinfo=UTC))
    assert furnace.surveyed_by("SAT", AT, "low") is not None and furnace.ranges()[0].id == "low"
