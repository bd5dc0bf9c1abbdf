"""Rules scoped by when, equipment, material, survey, furnace type and range; unknowns fail closed."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from smart.contracts import bundle, engine, manifests
from smart.contracts import facts as f
from smart.contracts.models import SmartContract, Station
from tests.contracts.test_engine import evaluator

ROOT = Path(__file__).resolve().parents[2]
AT = datetime(2026, 7, 21, 7, 5, tzinfo=UTC)
DAY = timedelta(days=1)

BATH = {
    "kind": "measurement",
    "id": "mt-bath-fluorescent",
    "quantity": "bath-concentration",
    "unit": "mL/100mL",
    "limits": {"min": 0.1, "max": 0.4},
    "when": {"particles": "fluorescent"},
}


def bath(value: float, **attributes: str) -> f.Event:
    readings = {"bath-concentration": f.Reading(value, "mL/100mL")}
    return f.Event("operate", AT, "mt-1", person="op-2", attributes=attributes, readings=readings)


def test_a_rule_scoped_to_an_attribute_the_event_lacks_fails_closed() -> None:
    decision = evaluator(BATH).evaluate(bath(0.25), f.Facts())
    assert decision.outcome == "deny"
    reason = decision.reasons[0]
    assert reason.message == "unknown particles: the bath-concentration limits cannot be chosen"
    assert reason.values["attribute"] == "particles"


def test_a_scoped_rule_judges_its_own_events_and_leaves_the_others() -> None:
    assert evaluator(BATH).evaluate(bath(0.1, particles="fluorescent"), f.Facts()).outcome == "allow"
    assert evaluator(BATH).evaluate(bath(0.4, particles="fluorescent"), f.Facts()).outcome == "allow"
    assert evaluator(BATH).evaluate(bath(0.0999, particles="fluorescent"), f.Facts()).outcome == "deny"
    assert evaluator(BATH).evaluate(bath(0.4001, particles="fluorescent"), f.Facts()).outcome == "deny"
    assert evaluator(BATH).evaluate(bath(1.8, particles="visible"), f.Facts()).outcome == "allow"


def test_an_attribute_that_rules_a_rule_out_wins_over_one_that_is_missing() -> None:
    rule = dict(BATH, when={"particles": "fluorescent", "carrier": "oil"})
    assert evaluator(rule).evaluate(bath(2.0, particles="visible"), f.Facts()).outcome == "allow"
    reason = evaluator(rule).evaluate(bath(2.0, particles="fluorescent"), f.Facts()).reasons[0]
    assert reason.message.startswith("unknown carrier:")


def test_a_step_scoped_rule_fails_closed_on_a_step_event_naming_no_step() -> None:
    rule = {
        "kind": "measurement",
        "id": "dry",
        "appliesTo": ["step"],
        "quantity": "part-temperature",
        "unit": "°F",
        "limits": {"max": 140},
        "when": {"step": "dry"},
    }
    hot = {"part-temperature": f.Reading(150, "°F")}
    assert evaluator(rule).evaluate(f.Event("step", AT, "pt-1", readings=hot), f.Facts()).outcome == "deny"
    wash = f.Event("step", AT, "pt-1", step="wash", readings=hot)
    assert evaluator(rule).evaluate(wash, f.Facts()).outcome == "allow"


WATER_BREAK = {
    "kind": "check",
    "id": "water-break",
    "check": "water-break",
    "every": "1 day",
    "when": {"carrier": "water"},
}


def mt_event(**changes: Any) -> f.Event:
    return dataclasses.replace(f.Event("operate", AT, "mt-1", person="op-2"), **changes)


def test_a_water_break_check_is_due_for_water_carriers_only() -> None:
    none_done = f.Facts()
    assert (
        evaluator(WATER_BREAK).evaluate(mt_event(attributes={"carrier": "oil"}), none_done).outcome == "allow"
    )
    water = mt_event(attributes={"carrier": "water"})
    assert (
        evaluator(WATER_BREAK).evaluate(water, none_done).reasons[0].message == "water-break check not done"
    )
    done = f.Facts(checks={"water-break": f.CheckRecord("water-break", AT - timedelta(hours=6), True)})
    assert evaluator(WATER_BREAK).evaluate(water, done).outcome == "allow"
    yesterday = f.Facts(checks={"water-break": f.CheckRecord("water-break", AT - timedelta(hours=8), True)})
    assert evaluator(WATER_BREAK).evaluate(water, yesterday).outcome == "deny"  # 23:05 the day before
    unknown = evaluator(WATER_BREAK).evaluate(mt_event(), none_done)
    assert unknown.reasons[0].message == "unknown carrier: the water-break check's scope cannot be chosen"


def test_a_check_can_be_scoped_to_equipment_kinds_and_materials() -> None:
    rule = {
        "kind": "check",
        "id": "settle",
        "check": "settling",
        "every": "8 hours",
        "equipmentKinds": ["wet-horizontal-unit"],
        "materials": ["magnetic-particles"],
    }
    world = f.Facts(
        equipment={
            "WH-1": f.EquipmentRecord("WH-1", "wet-horizontal-unit"),
            "Y-1": f.EquipmentRecord("Y-1", "yoke"),
        },
        lots={
            "MP-1": f.Lot("MP-1", "magnetic-particles", AT + DAY),
            "CL-1": f.Lot("CL-1", "cleaner", AT + DAY),
        },
    )
    wet = mt_event(equipment=("WH-1",), lots=("MP-1",))
    assert evaluator(rule).evaluate(wet, world).outcome == "deny"
    assert evaluator(rule).evaluate(mt_event(equipment=("Y-1",), lots=("MP-1",)), world).outcome == "allow"
    assert evaluator(rule).evaluate(mt_event(equipment=("WH-1",), lots=("CL-1",)), world).outcome == "allow"
    stranger = evaluator(rule).evaluate(mt_event(equipment=("WH-9",), lots=("MP-1",)), world)
    assert stranger.outcome == "deny" and "unknown equipment WH-9" in stranger.reasons[0].message
    done = dataclasses.replace(
        world, checks={"settling": f.CheckRecord("settling", AT - timedelta(hours=8), True)}
    )
    assert evaluator(rule).evaluate(wet, done).outcome == "deny"  # 8 hours is elapsed time: due at 07:05
    done = dataclasses.replace(
        world, checks={"settling": f.CheckRecord("settling", AT - timedelta(hours=7, minutes=59), True)}
    )
    assert evaluator(rule).evaluate(wet, done).outcome == "allow"


VACUUM_SAT = {
    "kind": "survey",
    "id": "vacuum-sat",
    "survey": "SAT",
    "furnaceTypes": ["vacuum"],
    "perQualifiedRange": True,
    "intervals": [{"classes": ["2"], "instrumentation": ["A"], "every": "12 months"}],
}
LOW = f.QualifiedRange("low", f.Reading(400, "°C"), f.Reading(800, "°C"))
HIGH = f.QualifiedRange("high", f.Reading(800, "°C"), f.Reading(1250, "°C"))


def vacuum(*surveys: f.Survey, kind: str | None = "vacuum") -> f.EquipmentRecord:
    attributes = {"class": "2", "instrumentation": "A"} | ({"type": kind} if kind else {})
    return f.EquipmentRecord(
        "VF-1", "furnace", attributes=attributes, qualified_ranges=(LOW, HIGH), survey_records=surveys
    )


def load(furnace: f.EquipmentRecord) -> engine.Decision:
    event = f.Event("operate", AT, "ht-1", person="op-2", equipment=("VF-1",))
    return evaluator(VACUUM_SAT).evaluate(event, f.Facts(equipment={"VF-1": furnace}))


def test_a_vacuum_furnace_needs_a_sat_in_each_qualified_range_yearly() -> None:
    year_ago = datetime(2025, 7, 21, 23, 0, tzinfo=UTC)  # 12 months to the day: current all that day
    assert (
        load(vacuum(f.Survey("SAT", year_ago, "low"), f.Survey("SAT", AT - 30 * DAY, "high"))).outcome
        == "allow"
    )
    one_range = load(vacuum(f.Survey("SAT", AT - 30 * DAY, "low")))
    assert one_range.outcome == "deny" and one_range.reasons[0].values["range"] == "high"
    stale = load(
        vacuum(
            f.Survey("SAT", datetime(2025, 7, 20, 23, 0, tzinfo=UTC), "low"),
            f.Survey("SAT", AT - 30 * DAY, "high"),
        )
    )
    assert stale.outcome == "deny" and stale.reasons[0].values["range"] == "low"


def test_a_tus_or_a_failed_sat_does_not_stand_for_a_sat() -> None:
    tus = load(vacuum(f.Survey("TUS", AT - DAY, "low"), f.Survey("SAT", AT - DAY, "high")))
    assert tus.outcome == "deny" and tus.reasons[0].values["range"] == "low"
    failed = load(vacuum(f.Survey("SAT", AT - DAY, "low", passed=False), f.Survey("SAT", AT - DAY, "high")))
    assert failed.outcome == "deny"


def test_a_survey_rule_scoped_to_vacuum_leaves_other_furnaces_and_refuses_an_unknown_type() -> None:
    assert load(vacuum(kind="atmosphere")).outcome == "allow"
    unknown = load(vacuum(kind=None))
    assert unknown.outcome == "deny"
    assert unknown.reasons[0].message == "unknown furnace type of VF-1: the SAT rule cannot be chosen"


def test_a_load_must_fall_inside_one_of_the_furnace_s_qualified_ranges() -> None:
    rule = {"kind": "furnaceClass", "id": "class", "uniformity": {"2": 6}}
    furnace = vacuum()

    def at(value: float, unit: str) -> str:
        event = f.Event(
            "operate",
            AT,
            "ht-1",
            equipment=("VF-1",),
            attributes={"class": "2"},
            readings={"setpoint": f.Reading(value, unit)},
        )
        return evaluator(rule).evaluate(event, f.Facts(equipment={"VF-1": furnace})).outcome

    assert at(1250, "°C") == "allow" and at(1250.001, "°C") == "deny"
    assert at(400, "°C") == "allow" and at(399.99, "°C") == "deny"
    assert at(2282, "°F") == "allow"  # 1250 °C exactly, converted before it is placed
    assert at(752, "°F") == "allow"  # 400 °C


# -- the reference contracts say it ---------------------------------------------------------------


def reference(contract_name: str, station_id: str) -> engine.Evaluator:
    loaded = [item.manifest for item in manifests.load([ROOT / "contracts"])]
    contract = next(m for m in loaded if isinstance(m, SmartContract) and m.metadata.name == contract_name)
    station = next(m for m in loaded if isinstance(m, Station) and m.spec.station_id == station_id)
    compiled = bundle.compile_bundle(contract, station)
    return engine.evaluator(compiled, bundle.revision_of(compiled))


def test_the_magnetic_particle_contract_asks_a_water_break_test_only_of_water_baths() -> None:
    mt = reference("magnetic-particle", "mt-1")
    water = mt_event(attributes={"carrier": "water", "particles": "fluorescent"})
    assert "mt-water-break-daily" in {r.rule for r in mt.evaluate(water, f.Facts(), kinds=["check"]).reasons}
    oil = mt_event(attributes={"carrier": "oil", "particles": "fluorescent"})
    assert "mt-water-break-daily" not in {
        r.rule for r in mt.evaluate(oil, f.Facts(), kinds=["check"]).reasons
    }


def test_heat_treat_contract_asks_vacuum_furnaces_a_sat_per_range_and_scopes_survey_readings() -> None:
    ht = reference("heat-treat", "ht-1")
    decision = ht.evaluate(
        f.Event("operate", AT, "ht-1", equipment=("VF-1",)),
        f.Facts(
            equipment={
                "VF-1": vacuum(
                    f.Survey("SAT", AT - 30 * DAY, "low"),
                    f.Survey("TUS", AT - 5 * DAY, "low"),
                    f.Survey("TUS", AT - 5 * DAY, "high"),
                )
            }
        ),
        kinds=["survey"],
    )
    assert {r.rule: r.values.get("range") for r in decision.reasons}.get("ht-vacuum-sat-each-range") == "high"
    tus = f.Event(
        "survey",
        AT,
        "ht-1",
        attributes={"survey": "TUS"},
        readings={"reading-interval": f.Reading(2, "min"), "start-below-survey": f.Reading(100, "Δ°F")},
    )
    assert ht.evaluate(tus, f.Facts(), kinds=["measurement"]).outcome == "allow"  # no junction distance asked
    sat = f.Event(
        "survey",
        AT,
        "ht-1",
        attributes={"survey": "SAT"},
        readings={"test-junction-distance": f.Reading(76, "mm")},
    )
    assert ht.evaluate(sat, f.Facts(), kinds=["measurement"]).outcome == "allow"
    unsaid = f.Event("survey", AT, "ht-1", readings={"test-junction-distance": f.Reading(70, "mm")})
    assert {
        r.values.get("attribute") for r in ht.evaluate(unsaid, f.Facts(), kinds=["measurement"]).reasons
    } == {"survey"}


@pytest.mark.parametrize("carrier", ["oil", "water"])
def test_the_reference_bath_rules_need_the_particle_type(carrier: str) -> None:
    mt = reference("magnetic-particle", "mt-1")
    event = mt_event(attributes={"carrier": carrier})
    reasons = mt.evaluate(event, f.Facts(), kinds=["measurement"]).reasons
    assert "unknown particles: the bath-concentration limits cannot be chosen" in {r.message for r in reasons}
