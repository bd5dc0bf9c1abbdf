"""The kiosk's forms and reasons, read from the reference contracts as the stations compile them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from smart.contracts import bundle as contract_bundle
from smart.contracts import facts as f
from smart.contracts.models import SmartContract, Station
from smart.node.kiosk import forms, reasons
from tests.node.conftest import reference

AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def compiled(contract: str, station: str) -> dict[str, Any]:
    manifest, where = reference(SmartContract, contract), reference(Station, station)
    assert isinstance(manifest, SmartContract) and isinstance(where, Station)
    return contract_bundle.compile_bundle(manifest, where)


def by_name(quantities: tuple[forms.Quantity, ...]) -> dict[str, forms.Quantity]:
    return {q.name: q for q in quantities}


def test_penetrant_forms_offer_the_steps_readings_checks_and_ppe_its_rules_judge() -> None:
    shop = f.Facts(
        equipment={
            "TAM-146040": f.EquipmentRecord("TAM-146040", "tam-panel", attributes={"finish": "grit-blasted"}),
            "UV-METER-1": f.EquipmentRecord("UV-METER-1", "light-meter"),
        }
    )
    offered = forms.station_forms([compiled("penetrant", "pt-1")], shop)

    assert offered.steps == (
        "pre-clean",
        "penetrant-apply",
        "penetrant-dwell",
        "wash",
        "dry",
        "developer",
        "inspect",
    )
    dry = by_name(offered.readings_for("dry"))
    assert dry["part-temperature"].limits == "≤ 140 °F"
    assert dry["time-at-max-temperature"].limits == "≤ 10 min"
    dwell = by_name(offered.readings_for("penetrant-dwell"))
    assert dwell["dwell-time"].min == 10 and dwell["part-temperature"].unit == "°F"
    assert "× 2" in offered.dwell_notes["penetrant-dwell"]
    assert offered.readings_for("wash") == ()

    checks = {c.name: c for c in offered.checks}
    assert set(checks) == {"uv-a-intensity", "tam-panel"}
    uva = by_name(checks["uv-a-intensity"].readings)
    assert uva["uv-a-intensity"].limits == "≥ 1000 µW/cm²"
    assert uva["ambient-white-light"].limits == "≤ 2 fc"
    assert checks["tam-panel"].readings == () and checks["tam-panel"].every == "1 day"

    assert offered.ppe_required == ("nitrile-gloves",)
    assert "sunglasses" in offered.ppe_prohibited
    assert offered.attributes["part-finish"] == ("grit-blasted",)
    assert offered.start_readings == ()


def test_magnetic_particle_forms_show_conditional_limits_once_each() -> None:
    offered = forms.station_forms([compiled("magnetic-particle", "mt-1")], f.Facts())
    bath = [q for c in offered.checks if c.name == "bath-concentration" for q in c.readings]
    conditions = {(q.name, q.condition): q.limits for q in bath}
    assert conditions[("bath-concentration", "particles = fluorescent")] == "0.1 – 0.4 mL/100mL"
    assert conditions[("bath-concentration", "particles = visible")] == "1.2 – 2.4 mL/100mL"
    assert conditions[("settling-time", "carrier = oil")] == "≥ 60 min"
    white = by_name(offered.start_readings)["white-light"]
    assert (white.limits, white.condition) == ("≥ 100 fc", "particles = visible")
    assert {"particles", "carrier"} <= set(offered.attributes)


def test_a_rule_the_station_cannot_read_leaves_the_rest_of_the_forms() -> None:
    bundle = compiled("penetrant", "pt-1")
    bundle["rules"] = [{"kind": "from-a-newer-schema", "id": "x"}, *bundle["rules"]]
    assert forms.station_forms([bundle], f.Facts()).steps[0] == "pre-clean"


def test_reasons_name_the_standard_the_rule_cites_or_the_station_itself() -> None:
    bundle = compiled("penetrant", "pt-1")
    refused = {"rule": "pt-near-vision", "message": "near-vision exam is 395 days old", "severity": "deny"}
    wrong_state = {"rule": "job.state", "message": "cannot release in state idle", "severity": "deny"}
    unknown = {"rule": "made-up", "message": "something", "severity": "warn"}
    decisions = [{"module": "gatekeeper", "reasons": [refused]}]

    shown = reasons.explain(decisions, [refused, wrong_state, unknown], [bundle])

    eye, state, other = shown
    assert eye.module == "gatekeeper" and eye.blocking
    assert [s.standard for s in eye.sources] == ["nas410"]
    assert eye.sources[0].text == "NAS410 / EN4179 (certification of NDT personnel) rev. 5"
    assert eye.sources[0].note == "S1 S2"
    assert state.sources == () and state.station_rule == "the station's job sequence"
    assert other.sources == () and other.station_rule is None and not other.blocking


def test_a_cited_clause_is_part_of_the_source_text() -> None:
    bundle = compiled("penetrant", "pt-1")
    reason = {"rule": "pt-record-complete", "message": "inspect missing", "severity": "deny"}
    (shown,) = reasons.explain([], [reason], [bundle])
    assert shown.sources[0].text == "AS9100D rev. D, clause 8.5.2"
