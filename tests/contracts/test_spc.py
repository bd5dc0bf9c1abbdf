"""SPC: control limits computed by hand from the formulas; each Western Electric rule, fired or not."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from smart.contracts import engine, spc
from smart.contracts import facts as f
from smart.modules.qa import module

# Eight daily readings; hand computation (I-MR, d2 = 1.128, D4 = 3.267):
#   x̄ = 88 / 8 = 11; moving ranges 2 1 2 4 2 1 2 → MR̄ = 14 / 7 = 2
#   σ = 2 / 1.128 = 1.77305; UCL = 11 + 3σ = 16.3191 (textbook 11 + 2.66·2 = 16.32); LCL = 5.6809
#   MR chart: UCL = 3.267 · 2 = 6.534, LCL = 0
DAILY = [10.0, 12.0, 11.0, 13.0, 9.0, 11.0, 12.0, 10.0]
UNIT_SIGMA = spc.known_limits(mean=0.0, sigma=1.0)


def rules(found: list[spc.Finding]) -> list[int]:
    return [finding.rule for finding in found if finding.chart == "values"]


def test_individuals_limits_match_the_hand_computation() -> None:
    limits = spc.individuals_limits(DAILY)
    assert limits.centre == pytest.approx(11.0)
    assert limits.sigma == pytest.approx(2 / 1.128)
    assert limits.ucl == pytest.approx(16.32, abs=0.005)
    assert limits.lcl == pytest.approx(5.68, abs=0.005)
    assert limits.range_centre == pytest.approx(2.0)
    assert limits.range_ucl == pytest.approx(6.534)
    assert limits.range_lcl == 0.0


def test_xbar_r_limits_match_the_hand_computation() -> None:
    # Subgroups of 5: means 3, 4, 5 → X̿ = 4; ranges 4, 4, 4 → R̄ = 4.
    # X̄: 4 ± 0.577·4 = 6.308 / 1.692; R: D3·4 = 0, D4·4 = 2.114·4 = 8.456.
    limits = spc.xbar_r_limits([[1, 2, 3, 4, 5], [2, 3, 4, 5, 6], [3, 4, 5, 6, 7]])
    assert limits.centre == pytest.approx(4.0)
    assert limits.ucl == pytest.approx(6.308)
    assert limits.lcl == pytest.approx(1.692)
    assert limits.range_ucl == pytest.approx(8.456)
    assert limits.range_lcl == 0.0


def test_range_chart_has_a_lower_limit_from_seven_readings_a_subgroup() -> None:
    limits = spc.xbar_r_limits([[0, 1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6, 7]])
    assert limits.range_lcl == pytest.approx(0.076 * 6)
    assert limits.range_ucl == pytest.approx(1.924 * 6)


def test_known_mean_and_sigma_give_limits_of_the_subgroup_mean() -> None:
    limits = spc.known_limits(mean=10.0, sigma=2.0, subgroup_size=4)
    assert limits.sigma == pytest.approx(1.0)
    assert limits.lcl == pytest.approx(7.0)
    assert limits.ucl == pytest.approx(13.0)
    assert limits.range_centre == pytest.approx(2.059 * 2)
    assert limits.range_ucl == pytest.approx(2.282 * 2.059 * 2)


def test_constants_cover_subgroups_of_two_to_ten_only() -> None:
    assert spc.constants(2) == (1.128, 1.880, 0.0, 3.267)
    assert spc.constants(10) == (3.078, 0.308, 0.223, 1.777)
    for n in (1, 11):
        with pytest.raises(spc.SpcError, match="outside the table"):
            spc.constants(n)


def test_rule_1_one_point_beyond_three_sigma() -> None:
    found = spc.western_electric([0.5, 3.2, -3.1], UNIT_SIGMA, characteristic="uv-a-intensity")
    assert [(f.rule, f.points[0].index) for f in found] == [(1, 2), (1, 3)]
    assert "above the upper control limit 3" in found[0].message
    assert "below the lower control limit -3" in found[1].message
    assert found[0].rule_id == "spc.we1.uv-a-intensity"


def test_rule_1_not_fired_inside_three_sigma() -> None:
    assert spc.western_electric([2.9, -2.9, 0.0], UNIT_SIGMA) == []


def test_rule_2_two_of_three_beyond_two_sigma_same_side() -> None:
    found = spc.western_electric([2.5, 0.0, 2.1], UNIT_SIGMA)
    assert rules(found) == [2]
    assert [p.index for p in found[0].points] == [1, 3]
    assert "2 of the last 3 points are above 2" in found[0].message


def test_rule_2_not_fired_on_opposite_sides_or_spread_out() -> None:
    assert spc.western_electric([2.5, 0.0, -2.1], UNIT_SIGMA) == []
    assert spc.western_electric([2.5, 0.5, 0.3, 2.1], UNIT_SIGMA) == []


def test_rule_3_four_of_five_beyond_one_sigma_same_side() -> None:
    found = spc.western_electric([-1.5, -0.2, -1.2, -1.1, -1.3], UNIT_SIGMA)
    assert rules(found) == [3]
    assert [p.index for p in found[0].points] == [1, 3, 4, 5]
    assert "below" in found[0].message


def test_rule_3_not_fired_with_three_of_five() -> None:
    assert spc.western_electric([1.5, 0.2, 1.2, 0.9, 1.3], UNIT_SIGMA) == []


def test_rule_4_eight_in_a_row_same_side_and_reported_as_the_run_grows() -> None:
    found = spc.western_electric([0.5] * 9, UNIT_SIGMA)
    assert [(f.rule, f.points[-1].index, len(f.points)) for f in found] == [(4, 8, 8), (4, 9, 8)]
    assert "8 points in a row above the centre line 0" in found[0].message


def test_rule_4_not_fired_by_seven_or_a_broken_run() -> None:
    assert spc.western_electric([0.5] * 7, UNIT_SIGMA) == []
    assert spc.western_electric([0.5] * 7 + [-0.5], UNIT_SIGMA) == []
    assert spc.western_electric([0.5] * 4 + [0.0] + [0.5] * 4, UNIT_SIGMA) == []


def test_an_old_pattern_is_not_reported_again_by_an_in_control_point() -> None:
    found = spc.western_electric([2.5, 2.5, 0.1], UNIT_SIGMA)
    assert [(f.rule, f.points[-1].index) for f in found] == [(2, 2)]


def test_individuals_chart_sets_limits_from_its_baseline_then_warns() -> None:
    chart = spc.Chart.individuals("uv-a-intensity", unit="µW/cm²", baseline_size=8)
    for value in DAILY:
        chart, found = chart.add(value, unit="µW/cm²")
        assert found == []
    assert chart.limits == spc.individuals_limits(DAILY)
    assert chart.baseline == ()
    chart, found = chart.add(17.0, unit="µW/cm²", at="2026-03-10T07:00:00Z")
    assert [(f.rule, f.chart) for f in found] == [(1, "values"), (1, "range")]
    assert found[0].points[0] == spc.Point(9, 17.0, "2026-03-10T07:00:00Z")
    assert found[1].rule_id == "spc.we1-range.uv-a-intensity"
    assert "moving range 7 at point #9 is above its upper control limit 6.534" in found[1].message


def test_chart_converts_readings_to_its_unit() -> None:
    chart = spc.Chart.individuals("uv-a-intensity", unit="µW/cm²", mean=1100.0, sigma=20.0)
    chart, found = chart.add(10.0, unit="W/m²")  # 10 W/m² = 1000 µW/cm²: 5σ low
    assert chart.recent[-1].value == pytest.approx(1000.0)
    assert rules(found) == [1]


def test_chart_takes_its_unit_from_the_first_reading_when_none_given() -> None:
    chart, _ = spc.Chart.individuals("ambient-white-light").add(1.5, unit="fc")
    assert chart.unit == "fc"


def test_xbar_r_chart_plots_a_point_per_full_subgroup() -> None:
    chart = spc.Chart.xbar_r("bath-concentration", subgroup_size=5, baseline_size=3)
    for group in ([1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 3.0, 4.0, 5.0, 6.0], [3.0, 4.0, 5.0, 6.0, 7.0]):
        for value in group:
            chart, found = chart.add(value)
            assert found == []
    assert chart.limits is not None and chart.limits.ucl == pytest.approx(6.308)
    for value in (6.0, 7.0, 8.0, 7.0):
        chart, found = chart.add(value)
        assert found == [] and chart.count == 3
    chart, found = chart.add(7.0)
    assert chart.count == 4 and chart.recent[-1].value == pytest.approx(7.0)
    assert rules(found) == [1]


def test_chart_survives_a_round_trip_through_json_and_stays_small() -> None:
    chart = spc.Chart.individuals("uv-a-intensity", unit="µW/cm²", baseline_size=8)
    for value in [*DAILY, 11.5, 12.5, 10.5, 11.0, 9.5, 10.0, 12.0, 11.0, 10.0, 11.0]:
        chart, _ = chart.add(value)
    text = json.dumps(chart.to_json())
    restored = spc.Chart.from_json(json.loads(text))
    assert restored == chart
    assert len(restored.recent) == spc.WINDOW
    assert len(text) < 1200
    assert restored.add(17.0) == chart.add(17.0)


def test_a_half_filled_subgroup_and_baseline_are_kept_across_a_restart() -> None:
    chart = spc.Chart.xbar_r("bath-concentration", subgroup_size=3, baseline_size=2)
    for value in (0.2, 0.25, 0.3, 0.22):
        chart, _ = chart.add(value)
    restored = spc.Chart.from_json(json.loads(json.dumps(chart.to_json())))
    assert restored == chart
    assert restored.pending == (0.22,) and restored.baseline == ((0.2, 0.25, 0.3),)


def test_bad_charts_are_refused_with_a_reason() -> None:
    with pytest.raises(spc.SpcError, match="outside the table"):
        spc.Chart.xbar_r("x", subgroup_size=12)
    with pytest.raises(spc.SpcError, match="at least 2 points"):
        spc.Chart.individuals("x", baseline_size=1)
    with pytest.raises(spc.SpcError, match="same size"):
        spc.xbar_r_limits([[1, 2], [1, 2, 3]])
    with pytest.raises(spc.SpcError, match="not individuals or xbar-r"):
        spc.Chart.from_json({**spc.Chart.individuals("x").to_json(), "kind": "p"})


def charted(values: list[float]) -> dict[str, spc.Chart]:
    chart = spc.Chart.individuals("uv-a-intensity", unit="µW/cm²", mean=1100.0, sigma=20.0)
    for value in values:
        chart, _ = chart.add(value)
    return {"uv-a-intensity": chart}


def reading(value: float) -> f.Event:
    return f.Event(
        action="measure",
        at=datetime(2026, 3, 10, 7, 0, tzinfo=UTC),
        station="pt-1",
        readings={"uv-a-intensity": f.Reading(value, "µW/cm²")},
    )


def test_an_spc_finding_turns_an_allow_into_a_warning_naming_the_rule() -> None:
    result = module.assess("allow", (), reading(1170.0), charted([1100.0, 1105.0]))
    assert result.outcome == "warn"
    assert [(r.rule, r.severity) for r in result.reasons] == [("spc.we1.uv-a-intensity", "warn")]
    assert result.reasons[0].values["points"] == [3]
    assert result.charts["uv-a-intensity"].count == 3


def test_spc_never_changes_a_deny_and_a_quiet_chart_leaves_an_allow_alone() -> None:
    deny = engine.Reason("uv-a-daily", "uv-a-intensity 940 µW/cm² outside ≥ 1000 µW/cm²")
    assert module.assess("deny", (deny,), reading(1170.0), charted([])).outcome == "deny"
    assert module.assess("allow", (), reading(1105.0), charted([])).outcome == "allow"


def test_a_new_characteristic_starts_a_baseline_and_does_not_warn() -> None:
    result = module.assess("allow", (), reading(1180.0), {})
    chart = result.charts["uv-a-intensity"]
    assert result.outcome == "allow" and chart.limits is None
    assert chart.baseline_size == module.BASELINE_POINTS and chart.unit == "µW/cm²"


def test_a_reading_in_a_unit_the_chart_cannot_take_is_a_warning_not_a_failure() -> None:
    event = dataclasses.replace(reading(0.0), readings={"uv-a-intensity": f.Reading(1.0, "fc")})
    result = module.assess("allow", (), event, charted([]))
    assert result.outcome == "warn"
    assert result.reasons[0].rule == "spc.unit.uv-a-intensity"


def test_a_baseline_with_no_variation_judges_nothing_rather_than_everything() -> None:
    chart = spc.Chart.individuals("tank-temperature", baseline_size=3)
    for value in (50.0, 50.0, 50.0, 51.0):
        chart, found = chart.add(value)
        assert found == []
    assert chart.limits is not None and chart.limits.sigma == 0.0
