"""How fast a station decides: a 50-rule contract evaluated against facts that satisfy it.

The figure that matters is the gate's decision latency (p50, p99) on the
machine at hand, beside the cost of a bare Python function call measured in
the same run, so a reader can tell the engine's overhead from the
machine's speed. The contract mixes the rule kinds a gate checks at once:
credentials, exams, checks, calibrations, measurements, PPE, lots and the
traveler.
"""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from smart.contracts import engine
from smart.contracts import facts as f
from smart.contracts.rules import Level

AT = datetime(2026, 6, 15, 9, 30, tzinfo=UTC)


def fifty_rule_bundle() -> dict[str, Any]:
    """A bundle with 50 rules, every one applying to ``operate``."""
    rules: list[dict[str, Any]] = [
        {
            "kind": "credential",
            "id": "cert",
            "method": "PT",
            "minLevel": "level-2",
            "recertifyEvery": "5 years",
            "lapseIfNotPerformedFor": "12 months",
        },
        {
            "kind": "exam",
            "id": "vision",
            "exam": "near-vision",
            "every": "12 months",
            "acceptedTests": ["jaeger-1-12in"],
        },
        {"kind": "exam", "id": "color", "exam": "color-contrast", "every": "5 years"},
        {"kind": "check", "id": "uva-today", "check": "uv-a-intensity", "every": "1 day"},
        {"kind": "check", "id": "tam-today", "check": "tam-panel", "every": "1 day"},
        {"kind": "calibration", "id": "meter-cal", "equipmentKinds": ["light-meter"], "every": "6 months"},
        {"kind": "ppe", "id": "ppe", "required": ["nitrile-gloves"], "prohibited": ["sunglasses"]},
        {"kind": "lot", "id": "penetrant-lot", "material": "penetrant"},
        {"kind": "traveler", "id": "traveler", "process": "penetrant", "requiredPoFields": ["retention"]},
        {
            "kind": "match",
            "id": "tam-finish",
            "equipmentKind": "tam-panel",
            "attribute": "finish",
            "eventAttribute": "part-finish",
        },
    ]
    for i in range(40):
        rules.append(
            {
                "kind": "measurement",
                "id": f"reading-{i}",
                "quantity": f"q{i}",
                "unit": "°F" if i % 2 else "lx",
                "limits": {"min": 0, "max": 1000},
            }
        )
    return {
        "apiVersion": "smart.aero/v1alpha1",
        "kind": "ContractBundle",
        "contract": "bench",
        "station": "pt-1",
        "stationLabels": {},
        "enforcement": "enforce",
        "window": {},
        "timezone": "UTC",
        "standards": [],
        "modules": [],
        "rules": rules,
    }


def satisfying_case() -> tuple[f.Event, f.Facts]:
    year = timedelta(days=365)
    cert = f.Certification(method="PT", level=Level.LEVEL_2, issued=AT - 2 * year, expires=AT + year)
    person = f.Person(
        id="op-1",
        certifications=(cert,),
        exams=(
            f.Exam("near-vision", AT - timedelta(days=100), "jaeger-1-12in"),
            f.Exam("color-contrast", AT - year),
        ),
        last_performed={"PT": AT - timedelta(days=6)},
    )
    facts = f.Facts(
        people={"op-1": person},
        equipment={
            "M1": f.EquipmentRecord("M1", "light-meter", calibration=f.Calibration(AT - timedelta(days=30))),
            "TAM": f.EquipmentRecord("TAM", "tam-panel", attributes={"finish": "polished"}),
        },
        checks={
            "uv-a-intensity": f.CheckRecord("uv-a-intensity", AT - timedelta(hours=2), True),
            "tam-panel": f.CheckRecord("tam-panel", AT - timedelta(hours=2), True),
        },
        lots={"L1": f.Lot("L1", "penetrant", AT + year)},
        po_lines={
            "PO-1/1": f.PoLine(
                "PO-1", "1", True, "P-9", ("S1",), ("penetrant",), "qa-1", {"retention": "10y"}
            )
        },
    )
    event = f.Event(
        action="operate",
        at=AT,
        station="pt-1",
        person="op-1",
        equipment=("M1", "TAM"),
        readings={f"q{i}": f.Reading(500.0, "°F" if i % 2 else "lx") for i in range(40)},
        attributes={"part-finish": "polished"},
        lots=("L1",),
        ppe=frozenset({"nitrile-gloves"}),
        scan=f.Scan("PO-1", "1", "P-9", "S1"),
    )
    return event, facts


@dataclass(frozen=True, slots=True)
class Figures:
    rules: int
    p50_us: float
    p99_us: float
    baseline_call_us: float
    iterations: int


def _bare(a: object, b: object) -> object:
    return a


def run(iterations: int = 20000) -> Figures:
    evaluator = engine.evaluator(fifty_rule_bundle(), "bench")
    event, facts = satisfying_case()
    decision = evaluator.evaluate(event, facts)
    if decision.outcome != "allow":
        raise RuntimeError(f"the bench case should be allowed: {decision.to_json()}")
    clock = time.perf_counter_ns
    gc.collect()
    gc.freeze()  # as a station process does after start: long-lived objects out of the collector's way
    for _ in range(1000):
        evaluator.evaluate(event, facts)
    samples = []
    for _ in range(iterations):
        start = clock()
        evaluator.evaluate(event, facts)
        samples.append(clock() - start)
    baseline = []
    for _ in range(iterations):
        start = clock()
        _bare(event, facts)
        baseline.append(clock() - start)
    samples.sort()
    return Figures(
        rules=evaluator.rule_count,
        p50_us=statistics.median(samples) / 1000,
        p99_us=samples[int(len(samples) * 0.99)] / 1000,
        baseline_call_us=statistics.median(baseline) / 1000,
        iterations=iterations,
    )
