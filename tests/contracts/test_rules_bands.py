"""Bands tile: every value in one band; gaps and overlaps refused by validate and the reconcile core."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from smart.contracts import facts as f
from smart.contracts import manifests, reconcile, semantics
from smart.contracts.families import bands
from smart.contracts.models import SmartContract, Station
from smart.keys import SigningKey
from smart.testing.cli import invoke
from tests.contracts.test_engine import AT, evaluator

ROOT = Path(__file__).resolve().parents[2]

DWELL = {
    "kind": "dwell",
    "id": "dwell",
    "step": "penetrant-dwell",
    "baseMinutes": 10,
    "temperatureUnit": "°F",
    "bands": [
        {"atLeast": 40, "below": 60, "factor": 2},
        {"atLeast": 60, "atMost": 100, "factor": 1},
        {"above": 100, "atMost": 120, "factor": 0.5, "floorMinutes": 5},
    ],
}


def required(temperature: float, unit: str = "°F") -> float | None:
    """Minutes the dwell rule asks at this part temperature; None when no band holds it."""
    event = f.Event(
        "step",
        AT,
        "pt-1",
        step="penetrant-dwell",
        readings={"dwell-time": f.Reading(0.0, "min"), "part-temperature": f.Reading(temperature, unit)},
    )
    reason = evaluator(DWELL).evaluate(event, f.Facts()).reasons[0]
    return reason.values.get("required")


@pytest.mark.parametrize(
    ("temperature", "minutes"),
    [
        (40, 20),
        (59.999, 20),
        (59.995, 20),
        (60, 10),
        (60.001, 10),
        (99.999, 10),
        (100, 10),
        (100.001, 5),
        (100.005, 5),
        (120, 5),
        (39.999, None),
        (120.001, None),
    ],
)
def test_every_temperature_is_in_exactly_one_band(temperature: float, minutes: float | None) -> None:
    assert required(temperature) == minutes


@pytest.mark.parametrize(
    ("celsius", "minutes"),
    [
        (15.555555555555555, 10),
        (15.5555, 20),
        (37.77777777777778, 10),
        (37.7778, 5),
        (4.444444444444445, 20),
        (48.888888888888886, 5),
        (48.9, None),
    ],
)
def test_readings_in_other_units_are_converted_before_they_are_placed(
    celsius: float, minutes: float | None
) -> None:
    """60 °F is 15.555… °C, 100 °F is 37.777… °C, 40 °F 4.444… °C, 120 °F 48.888… °C."""
    assert required(celsius, "°C") == minutes


def test_a_band_holds_its_closed_edges_and_not_its_open_ones() -> None:
    band = bands.Band(above=1.5, at_most=3)
    assert (
        not band.contains(1.5) and band.contains(1.5000001) and band.contains(3) and not band.contains(3.0001)
    )
    unbounded = bands.Band(below=0)
    assert unbounded.contains(-1e12) and not unbounded.contains(0)
    assert bands.Band(at_least=5, at_most=5).contains(5)


@pytest.mark.parametrize(
    "edges",
    [
        {"atLeast": 1, "above": 1, "atMost": 2},
        {"atLeast": 1, "atMost": 2, "below": 2},
        {"atLeast": 3, "atMost": 2},
        {"atLeast": 2, "below": 2},
        {"above": 2, "atMost": 2},
    ],
    ids=["two-lower-edges", "two-upper-edges", "upside-down", "empty-half-open", "empty-open-closed"],
)
def test_a_band_with_wrong_edges_is_refused(edges: dict[str, float]) -> None:
    with pytest.raises(pydantic.ValidationError):
        bands.Band.model_validate(edges)


def tiling(*edges: dict[str, float]) -> list[tuple[str, str]]:
    return bands.tiling_problems([bands.Band.model_validate(e) for e in edges], "spec.rules[4].bands", "°F")


def test_bands_that_meet_with_one_edge_closed_tile() -> None:
    assert (
        tiling({"atLeast": 40, "below": 60}, {"atLeast": 60, "atMost": 100}, {"above": 100, "atMost": 120})
        == []
    )
    assert tiling({"above": 100, "atMost": 120}, {"below": 60}, {"atLeast": 60, "atMost": 100}) == []


@pytest.mark.parametrize(
    ("edges", "words"),
    [
        (
            ({"atLeast": 40, "atMost": 59.99}, {"atLeast": 60, "atMost": 100}),
            "spec.rules[4].bands[0] (40 ≤ x ≤ 59.99 °F) and spec.rules[4].bands[1] (60 ≤ x ≤ 100 °F) "
            "leave a gap: 59.99 … 60 °F is in no band",
        ),
        (
            ({"atLeast": 40, "below": 60}, {"above": 60, "atMost": 100}),
            "spec.rules[4].bands[0] (40 ≤ x < 60 °F) and spec.rules[4].bands[1] (60 < x ≤ 100 °F) "
            "leave a gap: 60 °F is in no band",
        ),
        (
            ({"atLeast": 60, "atMost": 100}, {"atLeast": 100, "atMost": 120}),
            "spec.rules[4].bands[0] (60 ≤ x ≤ 100 °F) and spec.rules[4].bands[1] (100 ≤ x ≤ 120 °F) overlap: "
            "100 °F is in both",
        ),
        (({"atLeast": 60, "atMost": 100}, {"atLeast": 90, "atMost": 120}), "overlap: 90 … 100 °F is in both"),
        (({"atLeast": 0, "atMost": 100}, {"atLeast": 10, "atMost": 20}), "overlap: 10 … 20 °F is in both"),
    ],
    ids=["gap-between-closed-edges", "gap-at-a-point", "overlap-at-a-point", "overlap", "band-inside-band"],
)
def test_bands_that_leave_a_gap_or_overlap_are_named(edges: tuple[dict[str, float], ...], words: str) -> None:
    found = tiling(*edges)
    assert len(found) == 1 and words in found[0][1], found
    assert found[0][0] == "spec.rules[4].bands[1]"


def test_a_band_inside_a_wide_one_is_no_gap_for_the_next() -> None:
    found = tiling(
        {"atLeast": 0, "atMost": 100}, {"atLeast": 10, "atMost": 20}, {"above": 100, "atMost": 150}
    )
    assert [message.split(": ")[0].rsplit(" ", 1)[-1] for _, message in found] == ["overlap"]


def penetrant_with_bands(*edges: dict[str, Any]) -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "contracts" / "penetrant.yaml").read_text())
    rule = next(r for r in doc["spec"]["rules"] if r["id"] == "pt-penetrant-dwell")
    rule["bands"] = [dict(e, factor=1) for e in edges]
    return copy.deepcopy(doc)


GAPPED = (
    {"atLeast": 40, "atMost": 59.99},
    {"atLeast": 60, "atMost": 100},
    {"atLeast": 100.01, "atMost": 120},
)


def test_smart_contract_validate_refuses_gapped_bands_naming_both(tmp_path: Path) -> None:
    path = tmp_path / "penetrant.yaml"
    path.write_text(yaml.safe_dump(penetrant_with_bands(*GAPPED), allow_unicode=True))
    result = invoke("contract", "validate", str(path))
    assert result.exit_code == 1
    index = next(
        i for i, r in enumerate(yaml.safe_load(path.read_text())["spec"]["rules"]) if r["kind"] == "dwell"
    )
    assert (
        f"spec.rules[{index}].bands[1]: spec.rules[{index}].bands[0] (40 ≤ x ≤ 59.99 °F) and "
        in result.output
    )
    assert "leave a gap: 59.99 … 60 °F is in no band" in result.output
    assert "leave a gap: 100 … 100.01 °F is in no band" in result.output


def test_the_reconcile_core_refuses_overlapping_bands_and_compiles_nothing() -> None:
    doc = penetrant_with_bands({"atLeast": 40, "atMost": 60}, {"atLeast": 60, "atMost": 120})
    contract = SmartContract.model_validate(doc)
    loaded = [item.manifest for item in manifests.load([ROOT / "contracts"])]
    stations = [m for m in loaded if isinstance(m, Station)]
    with pytest.raises(semantics.ContractInvalid) as refused:
        reconcile.compile_signed(contract, stations, SigningKey.generate("hub"))
    assert any(
        "overlap: 60 °F is in both" in p.message and p.path.endswith(".bands[1]")
        for p in refused.value.problems
    ), refused.value.problems


def test_the_reference_penetrant_bands_tile() -> None:
    loaded = [item.manifest for item in manifests.load([ROOT / "contracts"])]
    penetrant = next(m for m in loaded if isinstance(m, SmartContract) and m.metadata.name == "penetrant")
    assert semantics.problems(penetrant.spec) == []


def heat_treat_with_tus_rows(*rows: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "contracts" / "heat-treat.yaml").read_text())
    rule = next(r for r in doc["spec"]["rules"] if r["id"] == "ht-tus-current")
    rule["intervals"] = list(rows)
    return doc


def tus_problems(*rows: dict[str, Any]) -> list[semantics.Problem]:
    contract = SmartContract.model_validate(heat_treat_with_tus_rows(*rows))
    index = next(i for i, r in enumerate(contract.spec.rules) if r.id == "ht-tus-current")
    return [p for p in semantics.problems(contract.spec) if p.path.startswith(f"spec.rules[{index}]")]


def test_a_survey_table_whose_rows_give_one_class_and_type_twice_is_refused() -> None:
    found = tus_problems(
        {"classes": ["1", "2"], "instrumentation": ["A", "B"], "every": "1 month"},
        {"classes": ["2", "3"], "instrumentation": ["B"], "every": "3 months"},
        {"classes": ["3"], "instrumentation": ["A"], "every": "3 months"},
    )
    assert [p.message.rsplit(": ", 1)[-1] for p in found] == ["both give class 2 type B"]
    assert found[0].path.endswith(".intervals[1]") and "intervals[0] (1 month) and" in found[0].message


def test_a_survey_table_leaving_a_class_and_type_it_names_without_a_row_is_refused() -> None:
    found = tus_problems(
        {"classes": ["1", "2"], "instrumentation": ["A", "B"], "every": "1 month"},
        {"classes": ["3"], "instrumentation": ["B"], "every": "3 months"},
    )
    assert len(found) == 1 and found[0].message == "the TUS table leaves a gap: no row gives class 3 type A"
    assert (
        tus_problems(
            {"classes": ["1", "2"], "instrumentation": ["A", "B"], "every": "1 month"},
            {"classes": ["3"], "instrumentation": ["A", "B"], "every": "3 months"},
        )
        == []
    )
