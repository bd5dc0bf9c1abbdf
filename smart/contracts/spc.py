"""Statistical process control: control charts per characteristic and the four Western Electric rules.

A measurement inside its contract limits can still tell a story: a UV-A lamp
reading 1180, 1150, 1120, 1090 µW/cm² on successive mornings is in limits
every day and dying all the same. SPC sees that before the lamp fails its
daily check. It is **advisory**: a finding is a warning for a person to look
at, never a refusal (the contract's limits decide; DESIGN: AI/SPC advises).

Two charts, as a quality engineer draws them by hand:

- **Individuals and moving range (I-MR)** for one reading at a time (the
  daily UV-A check, a bath concentration): centre = mean of the baseline,
  σ = MR̄ / d2 (d2 = 1.128 for a moving range of two), limits centre ± 3σ;
  the moving-range chart's limits are D3·MR̄ and D4·MR̄.
- **X̄ and R** for subgroups of n = 2..10 readings (five parts a shift):
  limits X̿ ± A2·R̄ and D3·R̄, D4·R̄.

Limits come from a baseline (the first N points, Phase I) or from a known
mean and σ. After that each new point is judged against the four Western
Electric rules on the chart of values (individuals or subgroup means):

1. one point beyond 3σ;
2. two of three successive points beyond 2σ on the same side;
3. four of five successive points beyond 1σ on the same side;
4. eight successive points on the same side of the centre.

A point is judged as the last point of each pattern, and only when it takes
part in the pattern, so one run is reported as it grows and an old pattern
is not reported again by a later in-control point. The chart keeps only what
the next judgement needs (the limits, the last eight plotted values, a
subgroup being filled), so :meth:`Chart.to_json` is a few hundred bytes the
station persists between restarts.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from smart.contracts import units

ChartKind = Literal["individuals", "xbar-r"]

#: Control chart constants for subgroup size n (ASTM STP 15D / Montgomery, Appendix VI).
#: n: (d2, A2, D3, D4)
CONSTANTS: Mapping[int, tuple[float, float, float, float]] = {
    2: (1.128, 1.880, 0.0, 3.267),
    3: (1.693, 1.023, 0.0, 2.574),
    4: (2.059, 0.729, 0.0, 2.282),
    5: (2.326, 0.577, 0.0, 2.114),
    6: (2.534, 0.483, 0.0, 2.004),
    7: (2.704, 0.419, 0.076, 1.924),
    8: (2.847, 0.373, 0.136, 1.864),
    9: (2.970, 0.337, 0.184, 1.816),
    10: (3.078, 0.308, 0.223, 1.777),
}

#: The longest Western Electric window (rule 4): all a chart needs to remember of its past points.
WINDOW = 8


class SpcError(ValueError):
    """A chart asked for something it cannot be: a subgroup size outside 2..10, a baseline too short."""


def constants(n: int) -> tuple[float, float, float, float]:
    """``(d2, A2, D3, D4)`` for subgroup size ``n`` (2..10)."""
    try:
        return CONSTANTS[n]
    except KeyError:
        raise SpcError(f"subgroup size {n} is outside the table (2..10)") from None


@dataclass(frozen=True, slots=True)
class ControlLimits:
    """Limits of one chart pair: the chart of values (centre, σ of what is plotted) and its range chart."""

    centre: float
    #: σ of the plotted statistic (an individual, or a subgroup mean): the zones are centre ± 1, 2, 3 σ.
    sigma: float
    range_centre: float
    range_lcl: float
    range_ucl: float

    @property
    def ucl(self) -> float:
        return self.centre + 3 * self.sigma

    @property
    def lcl(self) -> float:
        return self.centre - 3 * self.sigma

    def to_json(self) -> dict[str, float]:
        return {
            "centre": self.centre,
            "sigma": self.sigma,
            "rangeCentre": self.range_centre,
            "rangeLcl": self.range_lcl,
            "rangeUcl": self.range_ucl,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ControlLimits:
        return cls(
            centre=float(raw["centre"]),
            sigma=float(raw["sigma"]),
            range_centre=float(raw["rangeCentre"]),
            range_lcl=float(raw["rangeLcl"]),
            range_ucl=float(raw["rangeUcl"]),
        )


def individuals_limits(values: Sequence[float]) -> ControlLimits:
    """I-MR limits from a baseline: centre x̄, σ = MR̄/d2, moving-range limits D3·MR̄ and D4·MR̄."""
    if len(values) < 2:
        raise SpcError(f"an individuals baseline needs at least 2 points, got {len(values)}")
    d2, _, d3, d4 = constants(2)
    moving = [abs(b - a) for a, b in itertools.pairwise(values)]
    mr_bar = sum(moving) / len(moving)
    return ControlLimits(
        centre=sum(values) / len(values),
        sigma=mr_bar / d2,
        range_centre=mr_bar,
        range_lcl=d3 * mr_bar,
        range_ucl=d4 * mr_bar,
    )


def xbar_r_limits(subgroups: Sequence[Sequence[float]]) -> ControlLimits:
    """X̄-R limits from baseline subgroups of equal size n: X̿ ± A2·R̄, range limits D3·R̄ and D4·R̄."""
    if not subgroups:
        raise SpcError("an X̄-R baseline needs at least one subgroup")
    n = len(subgroups[0])
    if any(len(group) != n for group in subgroups):
        raise SpcError("every subgroup of an X̄-R baseline must have the same size")
    _, a2, d3, d4 = constants(n)
    r_bar = sum(max(group) - min(group) for group in subgroups) / len(subgroups)
    grand = sum(sum(group) / n for group in subgroups) / len(subgroups)
    return ControlLimits(
        centre=grand, sigma=a2 * r_bar / 3, range_centre=r_bar, range_lcl=d3 * r_bar, range_ucl=d4 * r_bar
    )


def known_limits(*, mean: float, sigma: float, subgroup_size: int = 1) -> ControlLimits:
    """Limits from a known process mean and σ of individuals (a capability study, a supplier's data)."""
    if sigma <= 0:
        raise SpcError(f"σ must be positive, got {sigma}")
    d2, _, d3, d4 = constants(max(subgroup_size, 2))
    r_bar = d2 * sigma
    return ControlLimits(
        centre=mean,
        sigma=sigma / math.sqrt(subgroup_size),
        range_centre=r_bar,
        range_lcl=d3 * r_bar,
        range_ucl=d4 * r_bar,
    )


@dataclass(frozen=True, slots=True)
class Point:
    """One plotted value: its place on the chart (1-based), the value, and when (ISO 8601) if known."""

    index: int
    value: float
    at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "value": self.value, "at": self.at}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Point:
        return cls(int(raw["index"]), float(raw["value"]), raw.get("at"))


@dataclass(frozen=True, slots=True)
class Finding:
    """A Western Electric rule (1-4) broken at a point, in words, with the points that make the pattern."""

    rule: int
    characteristic: str
    message: str
    points: tuple[Point, ...]
    #: "values" for the chart of individuals or means, "range" for the moving-range or R chart.
    chart: Literal["values", "range"] = "values"

    @property
    def rule_id(self) -> str:
        """The id a reason carries: ``spc.we1.uv-a-intensity``, or ``spc.we1-range.…`` on a range chart."""
        suffix = "-range" if self.chart == "range" else ""
        return f"spc.we{self.rule}{suffix}.{self.characteristic}"

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "ruleId": self.rule_id,
            "characteristic": self.characteristic,
            "chart": self.chart,
            "message": self.message,
            "points": [point.to_json() for point in self.points],
        }


def _side(value: float, centre: float) -> int:
    return 1 if value > centre else -1 if value < centre else 0


def _beyond(point: Point, limits: ControlLimits, k: float, side: int) -> bool:
    edge = limits.centre + side * k * limits.sigma
    return point.value > edge if side > 0 else point.value < edge


def _words(side: int) -> str:
    return "above" if side > 0 else "below"


def _fmt(points: Iterable[Point]) -> str:
    return ", ".join(f"#{p.index} ({p.value:g})" for p in points)


def findings_at(recent: Sequence[Point], limits: ControlLimits, *, characteristic: str) -> list[Finding]:
    """The rules broken by a pattern that ends at the last of ``recent`` (oldest first) and includes it."""
    if not recent or limits.sigma <= 0:
        return []
    last = recent[-1]
    side = _side(last.value, limits.centre)
    if side == 0:
        return []
    found: list[Finding] = []
    where = _words(side)
    if _beyond(last, limits, 3, side):
        edge = limits.ucl if side > 0 else limits.lcl
        found.append(
            Finding(
                1,
                characteristic,
                f"{characteristic} point #{last.index} ({last.value:g}) is {where} the "
                f"{'upper' if side > 0 else 'lower'} control limit {edge:g} (3σ): "
                "something changed; look for the cause",
                (last,),
            )
        )
    for rule, (needed, of, k) in ((2, (2, 3, 2.0)), (3, (4, 5, 1.0))):
        window = recent[-of:]
        if not _beyond(last, limits, k, side):
            continue
        hits = tuple(p for p in window if _beyond(p, limits, k, side))
        if len(hits) >= needed:
            found.append(
                Finding(
                    rule,
                    characteristic,
                    f"{characteristic}: {len(hits)} of the last {of} points are {where} "
                    f"{limits.centre + side * k * limits.sigma:g} ({k:g}σ {where} centre "
                    f"{limits.centre:g}): {_fmt(hits)}; the process may be shifting",
                    hits,
                )
            )
    run = recent[-WINDOW:]
    if len(run) == WINDOW and all(_side(p.value, limits.centre) == side for p in run):
        found.append(
            Finding(
                4,
                characteristic,
                f"{characteristic}: {WINDOW} points in a row {where} the centre line "
                f"{limits.centre:g} (#{run[0].index}-#{run[-1].index}); the process mean has moved",
                tuple(run),
            )
        )
    return found


def western_electric(
    values: Sequence[float], limits: ControlLimits, *, characteristic: str = "values"
) -> list[Finding]:
    """Every finding in a whole series (points numbered from 1), as a review of a chart's history."""
    points = [Point(i, v) for i, v in enumerate(values, start=1)]
    found: list[Finding] = []
    for end in range(1, len(points) + 1):
        found.extend(findings_at(points[max(0, end - WINDOW) : end], limits, characteristic=characteristic))
    return found


@dataclass(frozen=True, slots=True)
class Chart:
    """One characteristic's chart at one station: limits (once known), the last points, a subgroup filling.

    Immutable: :meth:`add` returns the new chart and the findings of the point
    just plotted, so the station replaces its chart and persists it in one step.
    """

    characteristic: str
    unit: str | None
    kind: ChartKind = "individuals"
    subgroup_size: int = 1
    #: Points (individuals) or subgroups (X̄-R) that set the limits when none are given.
    baseline_size: int = 20
    limits: ControlLimits | None = None
    #: Values collected for the baseline; emptied once the limits are set.
    baseline: tuple[tuple[float, ...], ...] = ()
    #: The last plotted points, at most :data:`WINDOW`.
    recent: tuple[Point, ...] = ()
    #: Readings of the subgroup being filled (X̄-R only).
    pending: tuple[float, ...] = ()
    #: How many points have been plotted (the next point's index is this + 1).
    count: int = 0
    last_value: float | None = field(default=None)

    @classmethod
    def individuals(
        cls,
        characteristic: str,
        *,
        unit: str | None = None,
        baseline_size: int = 20,
        mean: float | None = None,
        sigma: float | None = None,
    ) -> Chart:
        """An I-MR chart; limits from ``mean`` and ``sigma`` if given, else from the first points."""
        if baseline_size < 2:
            raise SpcError(f"an individuals baseline needs at least 2 points, got {baseline_size}")
        limits = known_limits(mean=mean, sigma=sigma) if mean is not None and sigma is not None else None
        return cls(characteristic, unit, "individuals", 1, baseline_size, limits)

    @classmethod
    def xbar_r(
        cls,
        characteristic: str,
        *,
        subgroup_size: int,
        unit: str | None = None,
        baseline_size: int = 20,
        mean: float | None = None,
        sigma: float | None = None,
    ) -> Chart:
        """An X̄-R chart for subgroups of ``subgroup_size``; limits given or from the first subgroups."""
        constants(subgroup_size)
        if baseline_size < 1:
            raise SpcError("an X̄-R baseline needs at least one subgroup")
        limits = (
            known_limits(mean=mean, sigma=sigma, subgroup_size=subgroup_size)
            if mean is not None and sigma is not None
            else None
        )
        return cls(characteristic, unit, "xbar-r", subgroup_size, baseline_size, limits)

    def add(
        self, value: float, *, unit: str | None = None, at: str | None = None
    ) -> tuple[Chart, list[Finding]]:
        """Plot one reading (converted to the chart's unit); the new chart and what the point broke."""
        chart_unit = self.unit if self.unit is not None else unit
        if unit is not None and chart_unit is not None:
            value = units.convert(value, unit, chart_unit)
        chart = replace(self, unit=chart_unit)
        if self.kind == "individuals":
            return chart._plot(value, value, at)
        pending = (*self.pending, value)
        if len(pending) < self.subgroup_size:
            return replace(chart, pending=pending), []
        chart = replace(chart, pending=())
        return chart._plot(sum(pending) / len(pending), max(pending) - min(pending), at, pending)

    def _plot(
        self, value: float, spread: float, at: str | None, group: tuple[float, ...] | None = None
    ) -> tuple[Chart, list[Finding]]:
        point = Point(self.count + 1, value, at)
        recent = (*self.recent, point)[-WINDOW:]
        moved = replace(self, recent=recent, count=point.index, last_value=value)
        if self.limits is None:
            baseline = (*self.baseline, group if group is not None else (value,))
            if len(baseline) < self.baseline_size:
                return replace(moved, baseline=baseline), []
            if self.kind == "individuals":
                limits = individuals_limits([g[0] for g in baseline])
            else:
                limits = xbar_r_limits(baseline)
            return replace(moved, baseline=(), limits=limits), []
        if self.limits.sigma <= 0:  # a baseline with no variation at all: nothing to judge against
            return moved, []
        found = findings_at(recent, self.limits, characteristic=self.characteristic)
        if self.kind == "individuals":
            spread = abs(value - self.last_value) if self.last_value is not None else 0.0
            has_spread = self.last_value is not None
        else:
            has_spread = True
        if has_spread and spread > self.limits.range_ucl:
            name = "moving range" if self.kind == "individuals" else "range"
            found.append(
                Finding(
                    1,
                    self.characteristic,
                    f"{self.characteristic} {name} {spread:g} at point #{point.index} is above its "
                    f"upper control limit {self.limits.range_ucl:g}: the spread jumped",
                    (point,),
                    chart="range",
                )
            )
        return moved, found

    def to_json(self) -> dict[str, Any]:
        return {
            "characteristic": self.characteristic,
            "unit": self.unit,
            "kind": self.kind,
            "subgroupSize": self.subgroup_size,
            "baselineSize": self.baseline_size,
            "limits": self.limits.to_json() if self.limits is not None else None,
            "baseline": [list(group) for group in self.baseline],
            "recent": [point.to_json() for point in self.recent],
            "pending": list(self.pending),
            "count": self.count,
            "lastValue": self.last_value,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Chart:
        kind = raw["kind"]
        if kind not in ("individuals", "xbar-r"):
            raise SpcError(f"chart kind {kind!r} is not individuals or xbar-r")
        return cls(
            characteristic=str(raw["characteristic"]),
            unit=raw.get("unit"),
            kind=kind,
            subgroup_size=int(raw["subgroupSize"]),
            baseline_size=int(raw["baselineSize"]),
            limits=ControlLimits.from_json(raw["limits"]) if raw.get("limits") else None,
            baseline=tuple(tuple(float(v) for v in group) for group in raw.get("baseline", ())),
            recent=tuple(Point.from_json(p) for p in raw.get("recent", ())),
            pending=tuple(float(v) for v in raw.get("pending", ())),
            count=int(raw.get("count", 0)),
            last_value=float(raw["lastValue"]) if raw.get("lastValue") is not None else None,
        )
