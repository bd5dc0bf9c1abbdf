"""The reference penetrant contract, compiled for pt-1, judging DOMAIN.md's walked-through job."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

from smart.contracts import bundle, engine, manifests
from smart.contracts import facts as f
from smart.contracts.models import SmartContract, Station
from smart.contracts.rules import Level

ROOT = Path(__file__).resolve().parents[2]
AT = datetime(2026, 5, 12, 8, 30, tzinfo=UTC)
DAY = timedelta(days=1)


def pt1() -> engine.Evaluator:
    loaded = [item.manifest for item in manifests.load([ROOT / "contracts"])]
    contract = next(m for m in loaded if isinstance(m, SmartContract) and m.metadata.name == "penetrant")
    station = next(m for m in loaded if isinstance(m, Station) and m.spec.station_id == "pt-1")
    compiled = bundle.compile_bundle(contract, station)
    return engine.evaluator(compiled, bundle.revision_of(compiled))


def shop() -> f.Facts:
    operator = f.Person(
        id="op-7",
        certifications=(
            f.Certification(
                "PT",
                Level.LEVEL_2,
                issued=AT - 3 * 365 * DAY,
                expires=AT + 2 * 365 * DAY,
                practical_samples=3,
            ),
        ),
        exams=(
            f.Exam("near-vision", AT - 120 * DAY, "jaeger-1-12in"),
            f.Exam("color-contrast", AT - 400 * DAY),
        ),
        last_performed={"PT": AT - 7 * DAY},
    )
    level3 = f.Person("l3-1", (f.Certification("PT", Level.LEVEL_3, AT - 900 * DAY, AT + 900 * DAY),))
    morning = AT - timedelta(hours=1)
    return f.Facts(
        people={"op-7": operator, "l3-1": level3},
        equipment={
            "UV-METER-1": f.EquipmentRecord(
                "UV-METER-1", "light-meter", calibration=f.Calibration(AT - 60 * DAY)
            ),
            "TAM-146040": f.EquipmentRecord("TAM-146040", "tam-panel", attributes={"finish": "grit-blasted"}),
        },
        checks={
            "uv-a-intensity": f.CheckRecord(
                "uv-a-intensity",
                morning,
                True,
                readings={
                    "uv-a-intensity": f.Reading(1180, "µW/cm²"),
                    "ambient-white-light": f.Reading(1.5, "fc"),
                },
            ),
            "tam-panel": f.CheckRecord("tam-panel", morning, True),
        },
        lots={"PEN-2291": f.Lot("PEN-2291", "penetrant", AT + 200 * DAY)},
        po_lines={
            "PO-4411/1": f.PoLine(
                "PO-4411",
                "1",
                True,
                "BRK-220",
                ("SN-001", "SN-002"),
                ("penetrant",),
                "qa-2",
                {"spec": "ASTM E1417-21", "retention": "10 years after final payment"},
            )
        },
        procedures={"PT-PROC-12": f.Procedure("PT-PROC-12", "D", "PT", approved_by="l3-1", validated=True)},
    )


def badge_in(**changes: object) -> f.Event:
    event = f.Event(
        action="operate",
        at=AT,
        station="pt-1",
        person="op-7",
        equipment=("UV-METER-1", "TAM-146040"),
        attributes={"part-finish": "grit-blasted"},
        lots=("PEN-2291",),
        ppe=frozenset({"nitrile-gloves"}),
        scan=f.Scan("PO-4411", "1", "BRK-220", "SN-002"),
        procedure="PT-PROC-12",
        procedure_revision="D",
    )
    return dataclasses.replace(event, **changes)  # type: ignore[arg-type]


def test_the_walked_through_job_is_allowed_at_pt_1() -> None:
    decision = pt1().evaluate(badge_in(), shop())
    assert decision.outcome == "allow", decision.to_json()


def test_the_walked_through_job_is_refused_for_each_deny_path() -> None:
    evaluator, facts = pt1(), shop()
    old_eyes = dataclasses.replace(
        facts.people["op-7"],
        exams=(
            f.Exam("near-vision", AT - 396 * DAY, "jaeger-1-12in"),
            f.Exam("color-contrast", AT - 400 * DAY),
        ),
    )
    low_uva = dataclasses.replace(
        facts.checks["uv-a-intensity"],
        readings={"uv-a-intensity": f.Reading(940, "µW/cm²"), "ambient-white-light": f.Reading(1.5, "fc")},
    )
    cases = {
        "pt-near-vision": (badge_in(), dataclasses.replace(facts, people={**facts.people, "op-7": old_eyes})),
        "pt-uva-intensity": (
            badge_in(),
            dataclasses.replace(facts, checks={**facts.checks, "uv-a-intensity": low_uva}),
        ),
        "pt-tam-panel-today": (badge_in(at=AT + DAY), facts),
        "pt-penetrant-lot": (badge_in(at=AT + 201 * DAY), facts),
        "pt-traveler-authorised": (badge_in(scan=f.Scan("PO-4411", "1", "BRK-220", "SN-999")), facts),
        "pt-tam-finish-matches-part": (badge_in(attributes={"part-finish": "polished"}), facts),
        "pt-no-tinted-lenses": (badge_in(ppe=frozenset({"nitrile-gloves", "photochromic-lenses"})), facts),
    }
    for rule, (event, world) in cases.items():
        decision = evaluator.evaluate(event, world)
        assert decision.outcome == "deny" and rule in {r.rule for r in decision.reasons}, (
            rule,
            decision.to_json(),
        )


def test_the_contract_expires_and_the_station_fails_closed() -> None:
    decision = pt1().evaluate(badge_in(at=datetime(2028, 1, 1, tzinfo=UTC)), shop())
    assert decision.outcome == "deny" and decision.reasons[0].rule == "contract.window"
