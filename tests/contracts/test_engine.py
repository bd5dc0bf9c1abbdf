"""Every rule kind, allowed and denied, with reasons that name the rule and the values judged."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smart.contracts import engine
from smart.contracts import facts as f
from smart.contracts.models import ROLE_LABEL
from smart.contracts.rules import Level

AT = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def evaluator(
    *rules: dict[str, Any],
    enforcement: str = "enforce",
    window: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> engine.Evaluator:
    bundle = {
        "contract": "test",
        "station": "pt-1",
        "stationLabels": labels or {},
        "enforcement": enforcement,
        "window": window or {},
        "timezone": "UTC",
        "rules": list(rules),
    }
    return engine.evaluator(bundle, "rev-1")


def cert(level: Level = Level.LEVEL_2, **changes: Any) -> f.Certification:
    base = f.Certification(
        method="PT", level=level, issued=AT - 700 * DAY, expires=AT + 300 * DAY, practical_samples=3
    )
    return dataclasses.replace(base, **changes)


def person(pid: str = "op-1", *certs: f.Certification, **changes: Any) -> f.Person:
    base = f.Person(
        id=pid,
        certifications=certs or (cert(),),
        exams=(f.Exam("near-vision", AT - 120 * DAY, "jaeger-1-12in"),),
        last_performed={"PT": AT - 7 * DAY},
    )
    return dataclasses.replace(base, **changes)


def facts(**changes: Any) -> f.Facts:
    base = f.Facts(people={"op-1": person()})
    return dataclasses.replace(base, **changes)


def event(**changes: Any) -> f.Event:
    return dataclasses.replace(f.Event(action="operate", at=AT, station="pt-1", person="op-1"), **changes)


def denied(decision: engine.Decision, rule: str) -> engine.Reason:
    assert decision.outcome == "deny", decision
    reason = next(r for r in decision.reasons if r.rule == rule)
    return reason


CREDENTIAL = {
    "kind": "credential",
    "id": "cert",
    "method": "PT",
    "minLevel": "level-2",
    "supervisor": {"minLevel": "level-2"},
    "recertifyEvery": "5 years",
    "lapseIfNotPerformedFor": "12 months",
    "practicalExam": {"minSamples": 2},
}


def test_gate_admits_level_2_operator_with_current_certification() -> None:
    assert evaluator(CREDENTIAL).evaluate(event(), facts()).outcome == "allow"


def test_gate_refuses_trainee_without_supervisor_badge_and_admits_with_one() -> None:
    trainee = person("op-1", cert(Level.TRAINEE))
    world = facts(people={"op-1": trainee, "sup-1": person("sup-1", cert(Level.LEVEL_3))})
    reason = denied(evaluator(CREDENTIAL).evaluate(event(), world), "cert")
    assert "supervisor" in reason.message and reason.values["person"] == "op-1"
    assert evaluator(CREDENTIAL).evaluate(event(supervisor="sup-1"), world).outcome == "allow"


def test_gate_refuses_operator_below_level_and_expired_and_rehired() -> None:
    low = facts(people={"op-1": person("op-1", cert(Level.LEVEL_1))})
    assert denied(evaluator(CREDENTIAL).evaluate(event(), low), "cert").values["required"] == Level.LEVEL_2
    expired = facts(people={"op-1": person("op-1", cert(expires=AT - DAY))})
    assert "no current PT" in denied(evaluator(CREDENTIAL).evaluate(event(), expired), "cert").message
    rehired = facts(people={"op-1": person("op-1", cert(basis="rehire"))})
    assert denied(evaluator(CREDENTIAL).evaluate(event(), rehired), "cert").values["basis"] == "rehire"


def test_certification_lapses_when_method_not_performed_for_12_months() -> None:
    idle = facts(people={"op-1": person(last_performed={"PT": AT - 400 * DAY})})
    reason = denied(evaluator(CREDENTIAL).evaluate(event(), idle), "cert")
    assert "lapsed" in reason.message and reason.values["last_performed"] == AT - 400 * DAY


EXAM = {
    "kind": "exam",
    "id": "vision",
    "exam": "near-vision",
    "every": "12 months",
    "acceptedTests": ["jaeger-1-12in", "snellen-20-25-16in"],
}


def test_gate_refuses_operator_whose_eye_exam_lapsed() -> None:
    assert evaluator(EXAM).evaluate(event(), facts()).outcome == "allow"
    old = facts(people={"op-1": person(exams=(f.Exam("near-vision", AT - 395 * DAY, "jaeger-1-12in"),))})
    reason = denied(evaluator(EXAM).evaluate(event(), old), "vision")
    assert reason.values["taken"] == AT - 395 * DAY and reason.values["every"] == "12 months"


def test_eye_exam_record_must_say_which_test() -> None:
    untyped = facts(people={"op-1": person(exams=(f.Exam("near-vision", AT - 10 * DAY, None),))})
    assert denied(evaluator(EXAM).evaluate(event(), untyped), "vision").values["test"] is None


UVA = {
    "kind": "measurement",
    "id": "uva",
    "quantity": "uv-a-intensity",
    "check": "uv-a",
    "unit": "µW/cm²",
    "limits": {"min": 1000},
}


def uva_check(value: float, unit: str = "µW/cm²", at: datetime = AT - timedelta(hours=1)) -> f.CheckRecord:
    return f.CheckRecord("uv-a", at, True, readings={"uv-a-intensity": f.Reading(value, unit)})


def test_line_refuses_uv_a_940_and_allows_1180() -> None:
    assert evaluator(UVA).evaluate(event(), facts(checks={"uv-a": uva_check(1180)})).outcome == "allow"
    reason = denied(evaluator(UVA).evaluate(event(), facts(checks={"uv-a": uva_check(940)})), "uva")
    assert reason.values["value"] == 940 and reason.values["min"] == 1000


def test_measurement_converts_units() -> None:
    ambient = {
        "kind": "measurement",
        "id": "ambient",
        "quantity": "ambient",
        "unit": "fc",
        "limits": {"max": 2},
    }
    ok = event(readings={"ambient": f.Reading(16.0, "lx")})  # 1.49 fc
    assert evaluator(ambient).evaluate(ok, facts()).outcome == "allow"
    bright = event(readings={"ambient": f.Reading(30.0, "lx")})  # 2.79 fc
    assert denied(evaluator(ambient).evaluate(bright, facts()), "ambient").values["unit"] == "lx"


def test_measurement_applies_only_when_attributes_match() -> None:
    rule = {
        "kind": "measurement",
        "id": "bath",
        "quantity": "conc",
        "unit": "mL/100mL",
        "limits": {"min": 0.1, "max": 0.4},
        "when": {"particles": "fluorescent"},
    }
    visible = event(attributes={"particles": "visible"}, readings={"conc": f.Reading(2.0, "mL/100mL")})
    assert evaluator(rule).evaluate(visible, facts()).outcome == "allow"
    fluorescent = event(
        attributes={"particles": "fluorescent"}, readings={"conc": f.Reading(2.0, "mL/100mL")}
    )
    assert denied(evaluator(rule).evaluate(fluorescent, facts()), "bath").values["max"] == 0.4


TAM = {
    "kind": "check",
    "id": "tam",
    "check": "tam-panel",
    "every": "1 day",
    "afterMaintenance": True,
    "exemptMaterialForms": ["aerosol"],
}


def test_line_refuses_when_tam_check_not_done_today() -> None:
    today = f.CheckRecord("tam-panel", AT - timedelta(hours=2), True)
    assert evaluator(TAM).evaluate(event(), facts(checks={"tam-panel": today})).outcome == "allow"
    yesterday = f.CheckRecord("tam-panel", AT - timedelta(hours=12), True)  # 21:00 the day before
    reason = denied(evaluator(TAM).evaluate(event(), facts(checks={"tam-panel": yesterday})), "tam")
    assert reason.values["check"] == "tam-panel" and reason.values["every"] == "1 day"


def test_failed_tam_check_locks_line_until_rerun_passes_and_aerosols_are_exempt() -> None:
    failed = f.CheckRecord("tam-panel", AT - timedelta(hours=1), False)
    assert (
        "locked"
        in denied(evaluator(TAM).evaluate(event(), facts(checks={"tam-panel": failed})), "tam").message
    )
    aerosol = facts(checks={}, lots={"A1": f.Lot("A1", "penetrant", AT + DAY, form="aerosol")})
    assert evaluator(TAM).evaluate(event(lots=("A1",)), aerosol).outcome == "allow"


def test_check_done_before_maintenance_does_not_count() -> None:
    check = f.CheckRecord("tam-panel", AT - timedelta(hours=3), True, equipment="LINE-1")
    line = f.EquipmentRecord("LINE-1", "penetrant-line", maintained_at=AT - timedelta(hours=1))
    world = facts(checks={"tam-panel": check}, equipment={"LINE-1": line})
    assert (
        denied(evaluator(TAM).evaluate(event(), world), "tam").values["maintained_at"] == line.maintained_at
    )


CAL = {
    "kind": "calibration",
    "id": "tc",
    "equipmentKinds": ["thermocouple-base-metal"],
    "every": "3 months",
    "requires": {"grade": "special-limits"},
}


def thermocouple(at: datetime, ok: bool = True, grade: str = "special-limits") -> f.EquipmentRecord:
    return f.EquipmentRecord(
        "TC-1", "thermocouple-base-metal", attributes={"grade": grade}, calibration=f.Calibration(at, ok)
    )


def test_thermocouple_past_calibration_is_refused() -> None:
    fresh = facts(equipment={"TC-1": thermocouple(AT - 30 * DAY)})
    assert evaluator(CAL).evaluate(event(equipment=("TC-1",)), fresh).outcome == "allow"
    stale = facts(equipment={"TC-1": thermocouple(AT - 100 * DAY)})
    assert (
        denied(evaluator(CAL).evaluate(event(equipment=("TC-1",)), stale), "tc").values["equipment"] == "TC-1"
    )


def test_gauge_found_out_of_tolerance_or_wrong_grade_is_refused() -> None:
    bad = facts(equipment={"TC-1": thermocouple(AT - DAY, ok=False)})
    assert (
        "out of tolerance" in denied(evaluator(CAL).evaluate(event(equipment=("TC-1",)), bad), "tc").message
    )
    grade = facts(equipment={"TC-1": thermocouple(AT - DAY, grade="standard")})
    assert (
        denied(evaluator(CAL).evaluate(event(equipment=("TC-1",)), grade), "tc").values["attribute"]
        == "grade"
    )


FURNACE_CLASS = {"kind": "furnaceClass", "id": "class", "uniformity": {"1": 3, "2": 6, "3": 8, "5": 14}}
SURVEY = {
    "kind": "survey",
    "id": "tus",
    "survey": "TUS",
    "intervals": [{"classes": ["2"], "instrumentation": ["B"], "every": "1 month"}],
}


def furnace(tus: datetime = AT - 10 * DAY, cls: str = "2") -> f.EquipmentRecord:
    return f.EquipmentRecord(
        "F-2",
        "furnace",
        attributes={"class": cls, "instrumentation": "B"},
        surveys={"TUS": tus},
        qualified_min=f.Reading(400.0, "°C"),
        qualified_max=f.Reading(1100.0, "°C"),
    )


def test_job_class_tighter_than_furnace_is_refused() -> None:
    load = event(
        equipment=("F-2",), attributes={"class": "3"}, readings={"setpoint": f.Reading(1500.0, "°F")}
    )
    assert evaluator(FURNACE_CLASS).evaluate(load, facts(equipment={"F-2": furnace()})).outcome == "allow"
    tight = dataclasses.replace(load, attributes={"class": "1"})
    reason = denied(evaluator(FURNACE_CLASS).evaluate(tight, facts(equipment={"F-2": furnace()})), "class")
    assert reason.values == {"furnace": "F-2", "job_class": "1", "furnace_class": "2"}
    hot = dataclasses.replace(load, readings={"setpoint": f.Reading(2100.0, "°F")})
    assert (
        denied(evaluator(FURNACE_CLASS).evaluate(hot, facts(equipment={"F-2": furnace()})), "class").values[
            "value"
        ]
        == 2100.0
    )


def test_furnace_tus_overdue_is_refused_with_monthly_meaning_same_day_next_month() -> None:
    due_today = facts(equipment={"F-2": furnace(tus=datetime(2026, 2, 10, 15, 0, tzinfo=UTC))})
    assert evaluator(SURVEY).evaluate(event(equipment=("F-2",)), due_today).outcome == "allow"
    overdue = facts(equipment={"F-2": furnace(tus=datetime(2026, 2, 9, 15, 0, tzinfo=UTC))})
    reason = denied(evaluator(SURVEY).evaluate(event(equipment=("F-2",)), overdue), "tus")
    assert reason.values["furnace"] == "F-2" and reason.values["every"] == "1 month"


def test_ppe_required_and_tinted_lenses_refused() -> None:
    rule = {"kind": "ppe", "id": "ppe", "required": ["nitrile-gloves"], "prohibited": ["sunglasses"]}
    assert evaluator(rule).evaluate(event(ppe=frozenset({"nitrile-gloves"})), facts()).outcome == "allow"
    shades = event(ppe=frozenset({"nitrile-gloves", "sunglasses"}))
    assert denied(evaluator(rule).evaluate(shades, facts()), "ppe").values["prohibited"] == frozenset(
        {"sunglasses"}
    )
    assert denied(evaluator(rule).evaluate(event(), facts()), "ppe").values["missing"] == frozenset(
        {"nitrile-gloves"}
    )


TRAVELER = {"kind": "traveler", "id": "po", "process": "penetrant", "requiredPoFields": ["retention"]}
LINE = f.PoLine("PO-7", "1", True, "P-100", ("S-1", "S-2"), ("penetrant",), "qa-1", {"retention": "10 years"})


def test_wrong_part_serial_for_the_po_is_refused() -> None:
    world = facts(po_lines={"PO-7/1": LINE})
    assert (
        evaluator(TRAVELER).evaluate(event(scan=f.Scan("PO-7", "1", "P-100", "S-2")), world).outcome
        == "allow"
    )
    wrong = event(scan=f.Scan("PO-7", "1", "P-100", "S-9"))
    assert denied(evaluator(TRAVELER).evaluate(wrong, world), "po").values["serial"] == "S-9"


def test_unreleased_or_unreviewed_po_or_missing_retention_is_refused() -> None:
    scan = event(scan=f.Scan("PO-7", "1", "P-100", "S-1"))
    for line, word in (
        (dataclasses.replace(LINE, released=False), "not released"),
        (dataclasses.replace(LINE, contract_reviewed_by=None), "contract-reviewed"),
        (dataclasses.replace(LINE, flowdowns={}), "retention"),
    ):
        assert (
            word in denied(evaluator(TRAVELER).evaluate(scan, facts(po_lines={"PO-7/1": line})), "po").message
        )


ORDER = {"kind": "stepOrder", "id": "order", "steps": ["penetrant-dwell", "wash", "dry", "developer"]}


def test_step_out_of_order_is_refused() -> None:
    world = facts(jobs={"J1": f.Job("J1", steps=("penetrant-dwell", "wash"))})
    assert evaluator(ORDER).evaluate(event(action="step", step="dry", job="J1"), world).outcome == "allow"
    reason = denied(
        evaluator(ORDER).evaluate(event(action="step", step="developer", job="J1"), world), "order"
    )
    assert reason.values["missing"] == ["dry"]


DWELL = {
    "kind": "dwell",
    "id": "dwell",
    "step": "penetrant-dwell",
    "baseMinutes": 10,
    "bands": [
        {"atLeast": 60, "atMost": 100, "factor": 1},
        {"atLeast": 40, "below": 60, "factor": 2},
        {"above": 100, "atMost": 120, "factor": 0.5, "floorMinutes": 5},
    ],
    "serviceInducedMinutes": 30,
}


def dwell(minutes: float, temp_f: float, **attrs: str) -> f.Event:
    return event(
        action="step",
        step="penetrant-dwell",
        attributes=attrs,
        readings={"dwell-time": f.Reading(minutes, "min"), "part-temperature": f.Reading(temp_f, "°F")},
    )


def test_penetrant_dwell_adjusted_for_temperature() -> None:
    assert evaluator(DWELL).evaluate(dwell(10, 72), facts()).outcome == "allow"
    assert denied(evaluator(DWELL).evaluate(dwell(12, 50), facts()), "dwell").values["required"] == 20
    assert evaluator(DWELL).evaluate(dwell(5, 110), facts()).outcome == "allow"
    assert (
        denied(evaluator(DWELL).evaluate(dwell(20, 72, flaws="service-induced"), facts()), "dwell").values[
            "required"
        ]
        == 30
    )
    assert (
        "outside every dwell band"
        in denied(evaluator(DWELL).evaluate(dwell(60, 130), facts()), "dwell").message
    )


LOT = {"kind": "lot", "id": "lot", "material": "penetrant"}


def test_expired_penetrant_lot_is_refused() -> None:
    good = facts(lots={"L1": f.Lot("L1", "penetrant", AT + 30 * DAY)})
    assert evaluator(LOT).evaluate(event(lots=("L1",)), good).outcome == "allow"
    old = facts(lots={"L1": f.Lot("L1", "penetrant", AT - DAY)})
    assert denied(evaluator(LOT).evaluate(event(lots=("L1",)), old), "lot").values["lot"] == "L1"
    assert denied(evaluator(LOT).evaluate(event(), good), "lot").values["material"] == "penetrant"


QUANTITY = {"kind": "quantity", "id": "qty"}


def test_shipping_needs_every_part_accounted_for() -> None:
    ok = facts(
        jobs={"J1": f.Job("J1", quantities={"received": 10, "accepted": 8, "rejected": 1, "split": 1})}
    )
    assert evaluator(QUANTITY).evaluate(event(action="ship", job="J1"), ok).outcome == "allow"
    short = facts(jobs={"J1": f.Job("J1", quantities={"received": 10, "accepted": 8})})
    reason = denied(evaluator(QUANTITY).evaluate(event(action="ship", job="J1"), short), "qty")
    assert reason.values["received"] == 10 and reason.values["accounted"] == 8


RELEASE = {
    "kind": "recordComplete",
    "id": "release",
    "requiredSteps": ["inspect"],
    "requiredMeasurements": ["part-temperature"],
    "signerMethod": "PT",
    "signerMinLevel": "level-2",
}


def test_release_refused_with_a_missing_measurement_or_an_open_ncr() -> None:
    job = f.Job(
        "J1", steps=("inspect",), measurements={"part-temperature": f.Reading(120, "°F")}, signed_by="op-1"
    )
    assert (
        evaluator(RELEASE).evaluate(event(action="release", job="J1"), facts(jobs={"J1": job})).outcome
        == "allow"
    )
    missing = dataclasses.replace(job, measurements={})
    reason = denied(
        evaluator(RELEASE).evaluate(event(action="release", job="J1"), facts(jobs={"J1": missing})), "release"
    )
    assert reason.values["missing"] == ["part-temperature"]
    ncr = dataclasses.replace(job, ncrs=(f.Ncr("NCR-1", open=True),))
    assert (
        denied(
            evaluator(RELEASE).evaluate(event(action="release", job="J1"), facts(jobs={"J1": ncr})), "release"
        ).values["ncr"]
        == "NCR-1"
    )
    use_as_is = dataclasses.replace(job, ncrs=(f.Ncr("NCR-2", open=False, disposition="use-as-is"),))
    assert (
        denied(
            evaluator(RELEASE).evaluate(event(action="release", job="J1"), facts(jobs={"J1": use_as_is})),
            "release",
        ).values["disposition"]
        == "use-as-is"
    )


def test_shipping_without_a_certificate_of_conformance_is_refused() -> None:
    rule = {
        "kind": "recordComplete",
        "id": "coc",
        "appliesTo": ["ship"],
        "requireCoc": True,
        "cocSignerAuthority": "coc-signature",
    }
    signer = f.Person("qa-1", authorities=("coc-signature",))
    signed = facts(people={"qa-1": signer}, jobs={"J1": f.Job("J1", coc_signed_by="qa-1")})
    assert evaluator(rule).evaluate(event(action="ship", job="J1"), signed).outcome == "allow"
    unsigned = facts(people={"qa-1": signer}, jobs={"J1": f.Job("J1")})
    assert (
        denied(evaluator(rule).evaluate(event(action="ship", job="J1"), unsigned), "coc").values["job"]
        == "J1"
    )


def test_shipping_happens_only_at_a_shipping_station() -> None:
    rule = {"kind": "stationRole", "id": "role", "roles": ["shipping"]}
    assert (
        evaluator(rule, labels={ROLE_LABEL: "shipping"}).evaluate(event(action="ship"), facts()).outcome
        == "allow"
    )
    reason = denied(
        evaluator(rule, labels={ROLE_LABEL: "inspection"}).evaluate(event(action="ship"), facts()), "role"
    )
    assert reason.values == {"station": "pt-1", "role": "inspection"}


PROCEDURE = {"kind": "procedure", "id": "proc", "method": "PT"}


def test_only_a_level_3_approved_validated_procedure_revision_runs() -> None:
    level3 = person("l3", cert(Level.LEVEL_3))
    proc = f.Procedure("PT-100", "C", "PT", approved_by="l3", validated=True)
    world = facts(people={"op-1": person(), "l3": level3}, procedures={"PT-100": proc})
    assert (
        evaluator(PROCEDURE).evaluate(event(procedure="PT-100", procedure_revision="C"), world).outcome
        == "allow"
    )
    old_rev = evaluator(PROCEDURE).evaluate(event(procedure="PT-100", procedure_revision="B"), world)
    assert denied(old_rev, "proc").values["approved"] == "C"
    by_level2 = facts(
        people={"op-1": person()}, procedures={"PT-100": dataclasses.replace(proc, approved_by="op-1")}
    )
    assert (
        "Level 3"
        in denied(
            evaluator(PROCEDURE).evaluate(event(procedure="PT-100", procedure_revision="C"), by_level2),
            "proc",
        ).message
    )


def test_tam_panel_finish_must_match_the_part() -> None:
    rule = {
        "kind": "match",
        "id": "finish",
        "equipmentKind": "tam-panel",
        "attribute": "finish",
        "eventAttribute": "part-finish",
    }
    world = facts(equipment={"TAM": f.EquipmentRecord("TAM", "tam-panel", attributes={"finish": "polished"})})
    assert (
        evaluator(rule)
        .evaluate(event(equipment=("TAM",), attributes={"part-finish": "polished"}), world)
        .outcome
        == "allow"
    )
    reason = denied(
        evaluator(rule).evaluate(
            event(equipment=("TAM",), attributes={"part-finish": "grit-blasted"}), world
        ),
        "finish",
    )
    assert reason.values == {"equipment": "TAM", "have": "polished", "wanted": "grit-blasted"}


def test_audit_mode_records_what_would_have_been_denied_but_allows() -> None:
    decision = evaluator(UVA, enforcement="audit").evaluate(event(), facts(checks={"uv-a": uva_check(940)}))
    assert decision.outcome == "warn" and decision.allowed
    assert decision.reasons[0].audit and decision.reasons[0].rule == "uva"
    assert "would have denied" in decision.reasons[0].message


def test_warn_severity_lets_the_action_go() -> None:
    rule = dict(UVA, severity="warn")
    decision = evaluator(rule).evaluate(event(), facts(checks={"uv-a": uva_check(940)}))
    assert decision.outcome == "warn" and decision.reasons[0].rule == "uva"


def test_station_fails_closed_outside_the_contract_window() -> None:
    window = {"notBefore": "2026-01-01T00:00:00+00:00", "notAfter": "2026-03-01T00:00:00+00:00"}
    decision = evaluator(PROCEDURE, window=window).evaluate(event(), facts())
    assert decision.outcome == "deny" and decision.reasons[0].rule == "contract.window"


@pytest.mark.parametrize(
    "kind", sorted(__import__("smart.contracts.rules", fromlist=["RULE_KINDS"]).RULE_KINDS)
)
def test_every_rule_kind_has_a_test_above(kind: str) -> None:
    source = open(__file__).read()
    assert f'"kind": "{kind}"' in source
