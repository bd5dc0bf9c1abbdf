"""The five kinds of advice AI Central gives, as pure functions of what the records say.

Each function takes plain facts read from the hub (decisions, readings, checks, due dates) and
returns :class:`Finding` s: a suggestion in the shop's words, the figures behind it, and the
evidence (ledger entries by their place in the hub log, or the hub records by their page). A
finding is advice for a person to look at; nothing here is read by a station, and no finding
changes what a contract allows (DESIGN: AI Central is advisory only).

A finding has a ``key`` (what it is about: the kind, the station, the rule or characteristic) and
a ``fingerprint`` of its key and evidence, so the same unchanged finding is issued once and a
finding whose evidence grew is issued again.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from smart.contracts import spc

FindingKind = Literal[
    "reject-rate-rising", "spc-drift", "check-later-each-day", "coming-due", "refused-by-one-rule"
]
KINDS: tuple[FindingKind, ...] = (
    "reject-rate-rising",
    "spc-drift",
    "check-later-each-day",
    "coming-due",
    "refused-by-one-rule",
)

#: Each kind as the page heads it.
TITLES: dict[str, str] = {
    "reject-rate-rising": "Reject rate rising",
    "spc-drift": "A reading drifting toward its limit",
    "check-later-each-day": "A check done later each day",
    "coming-due": "Coming due",
    "refused-by-one-rule": "Refused most by one rule",
}


@dataclass(frozen=True, slots=True)
class Evidence:
    """One record behind a finding: a hub log entry (``ledger_idx``) or a hub record's page."""

    label: str
    href: str
    ledger_idx: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "href": self.href, "ledgerIdx": self.ledger_idx}


@dataclass(frozen=True, slots=True)
class Finding:
    kind: FindingKind
    #: What the finding is about, e.g. ``reject-rate-rising/pt-1`` (one open finding per key).
    key: str
    station: str | None
    suggestion: str
    #: The figures behind it (counts, rates, times), for the page and the ledger entry.
    figures: dict[str, Any] = field(default_factory=dict)
    evidence: tuple[Evidence, ...] = ()

    @property
    def fingerprint(self) -> str:
        """The same key, figures and evidence: the same finding (issued once)."""
        body = json.dumps(
            {"key": self.key, "figures": self.figures, "evidence": [e.to_json() for e in self.evidence]},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(body.encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "station": self.station,
            "suggestion": self.suggestion,
            "figures": self.figures,
            "evidence": [e.to_json() for e in self.evidence],
            "fingerprint": self.fingerprint,
        }


def entry_href(idx: int) -> str:
    return f"/advice/entries/{idx}"


def _entry(idx: int, label: str) -> Evidence:
    return Evidence(label=label, href=entry_href(idx), ledger_idx=idx)


# -- facts read from the hub ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """One station decision in the hub log: where, when, allowed or refused, and the rules refusing."""

    ledger_idx: int
    station: str
    at: datetime
    refused: bool
    rules: tuple[str, ...] = ()
    part: str | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """One reading a station check took (the points of a characteristic's chart)."""

    ledger_idx: int
    station: str
    characteristic: str
    value: float
    at: datetime
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class Check:
    """One station check done (the daily UV-A, the TAM panel), when it was done."""

    ledger_idx: int
    station: str
    check: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Due:
    """Something that falls due: an asset's calibration or survey, a person's credential."""

    what: str
    #: ``equipment`` or ``person``.
    of: Literal["equipment", "person"]
    name: str
    station: str | None
    due: date
    href: str


# -- the analyses -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Thresholds:
    """How much the records must say before AI Central speaks (a quality manager tunes these)."""

    #: The window compared against the one before it (reject rates, refusals by one rule).
    window: timedelta = timedelta(days=7)
    #: At least this many refusals in the window before a rise is worth a look.
    min_rejects: int = 3
    #: The rate must rise by at least this much (0.10: ten percentage points).
    min_rise: float = 0.10
    #: Points of a chart that set its limits (Phase I) before the rest are judged.
    baseline_points: int = 10
    #: Readings in a row, each further the same way, that make a trend (inside the limits still).
    trend_points: int = 6
    #: Days in a row a check must be done later than the day before.
    later_days: int = 4
    #: ... by at least this much over those days in all.
    later_by: timedelta = timedelta(minutes=30)
    #: How far ahead a due date is advice.
    due_within: timedelta = timedelta(days=30)
    #: One rule's share of a station's refusals in the window, and at least this many of them.
    one_rule_share: float = 0.5
    one_rule_min: int = 3


def reject_rate_rising(decisions: Iterable[Decision], now: datetime, t: Thresholds) -> list[Finding]:
    """Per station and part: the share refused in the last window against the window before."""
    current_start, previous_start = now - t.window, now - 2 * t.window
    groups: dict[tuple[str, str | None], list[Decision]] = defaultdict(list)
    for d in decisions:
        if previous_start <= d.at < now:
            groups[(d.station, d.part)].append(d)
            if d.part is not None:
                groups[(d.station, None)].append(d)
    found = []
    for (station, part), group in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] or "")):
        now_group = [d for d in group if d.at >= current_start]
        before = [d for d in group if d.at < current_start]
        refused_now = [d for d in now_group if d.refused]
        if len(refused_now) < t.min_rejects or not now_group:
            continue
        rate_now = len(refused_now) / len(now_group)
        rate_before = sum(d.refused for d in before) / len(before) if before else 0.0
        if rate_now - rate_before < t.min_rise:
            continue
        days = t.window.days or 1
        what = f"part {part} at {station}" if part else station
        found.append(
            Finding(
                kind="reject-rate-rising",
                key=f"reject-rate-rising/{station}/{part or '*'}",
                station=station,
                suggestion=(
                    f"{what} is refusing more: {len(refused_now)} of {len(now_group)} decisions "
                    f"({rate_now:.0%}) in the last {days} days against "
                    f"{sum(d.refused for d in before)} of {len(before)} ({rate_before:.0%}) the {days} days "
                    "before. Look at what changed (a lot, a setting, a person, the equipment) "
                    "before it costs a job."
                ),
                figures={
                    "refused": len(refused_now),
                    "decisions": len(now_group),
                    "rate": round(rate_now, 4),
                    "refusedBefore": sum(d.refused for d in before),
                    "decisionsBefore": len(before),
                    "rateBefore": round(rate_before, 4),
                    "part": part,
                    "windowDays": days,
                },
                evidence=tuple(
                    _entry(d.ledger_idx, f"{d.station} refused {d.at:%Y-%m-%d %H:%M}") for d in refused_now
                ),
            )
        )
    return found


def spc_drift(readings: Iterable[Reading], t: Thresholds) -> list[Finding]:
    """Per station and characteristic: Western Electric signals (:mod:`smart.contracts.spc`), newest points.

    The first ``baseline_points`` set the chart's I-MR limits; a rule broken by a pattern that
    ends at the newest reading is a drift worth a look before the reading fails its limit. So is
    a trend still inside the limits: the last ``trend_points`` readings each further the same way,
    named by the control limit it heads for.
    """
    charts: dict[tuple[str, str], list[Reading]] = defaultdict(list)
    for r in readings:
        charts[(r.station, r.characteristic)].append(r)
    found = []
    for (station, characteristic), points in sorted(charts.items()):
        points.sort(key=lambda r: (r.at, r.ledger_idx))
        if len(points) <= t.baseline_points:
            continue
        limits = spc.individuals_limits([p.value for p in points[: t.baseline_points]])
        plotted = [spc.Point(i, p.value, p.at.isoformat()) for i, p in enumerate(points, start=1)]
        signals = spc.findings_at(plotted[-spc.WINDOW :], limits, characteristic=characteristic)
        unit = points[-1].unit or ""
        if signals:
            worst = min(signals, key=lambda s: s.rule)
            message, rules = worst.message, sorted({s.rule_id for s in signals})
            involved = sorted({p.index for s in signals for p in s.points})
        else:
            run = plotted[-t.trend_points :]
            steps = [b.value - a.value for a, b in itertools.pairwise(run)]
            if len(run) < t.trend_points or not (all(s > 0 for s in steps) or all(s < 0 for s in steps)):
                continue
            up = steps[0] > 0
            edge = limits.ucl if up else limits.lcl
            message = (
                f"{characteristic}: {len(run)} readings in a row {'rising' if up else 'falling'} "
                f"({', '.join(f'{p.value:g}' for p in run)}) toward the {'upper' if up else 'lower'} "
                f"control limit {edge:g}"
            )
            rules, involved = [f"spc.trend.{characteristic}"], [p.index for p in run]
        found.append(
            Finding(
                kind="spc-drift",
                key=f"spc-drift/{station}/{characteristic}",
                station=station,
                suggestion=(
                    f"{characteristic} at {station} is drifting: {message}. "
                    "It is still a reading for a person to look at, not a refusal; check the equipment "
                    "before the daily check fails."
                ),
                figures={
                    "characteristic": characteristic,
                    "unit": unit,
                    "centre": round(limits.centre, 6),
                    "ucl": round(limits.ucl, 6),
                    "lcl": round(limits.lcl, 6),
                    "rules": rules,
                    "latest": points[-1].value,
                    "points": len(points),
                },
                evidence=tuple(
                    _entry(points[i - 1].ledger_idx, f"#{i} {points[i - 1].value:g} {unit}".strip())
                    for i in involved
                ),
            )
        )
    return found


def check_later_each_day(checks: Iterable[Check], zone: ZoneInfo, t: Thresholds) -> list[Finding]:
    """Per station and check: the first check of each day, done later each day for ``later_days`` days."""
    firsts: dict[tuple[str, str], dict[date, Check]] = defaultdict(dict)
    for c in checks:
        local = c.at.astimezone(zone)
        seen = firsts[(c.station, c.check)]
        first = seen.get(local.date())
        if first is None or c.at < first.at:
            seen[local.date()] = c
    found = []
    for (station, name), by_day in sorted(firsts.items()):
        last: list[date] = sorted(by_day)[-t.later_days :]
        if len(last) < t.later_days or (last[-1] - last[0]).days != t.later_days - 1:
            continue  # not consecutive days: a weekend between is not a trend we can read
        minutes = [_minute_of_day(by_day[d].at.astimezone(zone)) for d in last]
        if not all(b > a for a, b in itertools.pairwise(minutes)):
            continue
        if minutes[-1] - minutes[0] < t.later_by.total_seconds() / 60:
            continue
        times = [f"{m // 60:02d}:{m % 60:02d}" for m in minutes]
        found.append(
            Finding(
                kind="check-later-each-day",
                key=f"check-later-each-day/{station}/{name}",
                station=station,
                suggestion=(
                    f"The {name} check at {station} is done later each day: {', '.join(times)} over the "
                    f"last {len(last)} days. Work done before it is done without it; ask the shift why "
                    "and put it back at the start of the day."
                ),
                figures={"check": name, "days": [d.isoformat() for d in last], "times": times},
                evidence=tuple(
                    _entry(by_day[d].ledger_idx, f"{name} {d} {tm}")
                    for d, tm in zip(last, times, strict=True)
                ),
            )
        )
    return found


def _minute_of_day(at: datetime) -> int:
    return at.hour * 60 + at.minute


def coming_due(dues: Iterable[Due], today: date, t: Thresholds) -> list[Finding]:
    """Calibrations, surveys and people's credentials due within ``due_within`` (or already past)."""
    horizon = today + t.due_within
    found = []
    for d in sorted(dues, key=lambda d: (d.due, d.of, d.name, d.what)):
        if d.due > horizon:
            continue
        days = (d.due - today).days
        when = f"{-days} days overdue" if days < 0 else "due today" if days == 0 else f"due in {days} days"
        if d.of == "equipment":
            tail = "Book it now so the station is not locked out when it lapses."
            who = f"{d.name}'s {d.what}" + (f" at {d.station}" if d.station else "")
        else:
            tail = "Schedule the renewal now so the person can keep working."
            who = f"badge {d.name}'s {d.what}"
        found.append(
            Finding(
                kind="coming-due",
                key=f"coming-due/{d.of}/{d.name}/{d.what}",
                station=d.station,
                suggestion=f"{who} is {when} ({d.due.isoformat()}). {tail}",
                # Not the days left: the same due date is the same finding tomorrow (issued once).
                figures={"of": d.of, "what": d.what, "due": d.due.isoformat()},
                evidence=(Evidence(label=f"{d.name} {d.what}", href=d.href),),
            )
        )
    return found


def refused_by_one_rule(decisions: Iterable[Decision], now: datetime, t: Thresholds) -> list[Finding]:
    """Per station: one rule behind most of its refusals in the window (a training or setup problem)."""
    per_station: dict[str, list[Decision]] = defaultdict(list)
    for d in decisions:
        if d.refused and now - t.window <= d.at < now:
            per_station[d.station].append(d)
    found = []
    for station, refused in sorted(per_station.items()):
        rules = Counter(rule for d in refused for rule in set(d.rules))
        if not rules:
            continue
        rule, count = sorted(rules.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        share = count / len(refused)
        if count < t.one_rule_min or share < t.one_rule_share:
            continue
        days = t.window.days or 1
        found.append(
            Finding(
                kind="refused-by-one-rule",
                key=f"refused-by-one-rule/{station}/{rule}",
                station=station,
                suggestion=(
                    f"{station} is refused most by one rule: {rule} in {count} of its {len(refused)} "
                    "refusals "
                    f"({share:.0%}) in the last {days} days. The same refusal again and again is a setup, "
                    "supply or training question; find out why people keep meeting it."
                ),
                figures={"rule": rule, "count": count, "refusals": len(refused), "share": round(share, 4)},
                evidence=tuple(
                    _entry(d.ledger_idx, f"{station} {rule} {d.at:%Y-%m-%d %H:%M}")
                    for d in refused
                    if rule in d.rules
                ),
            )
        )
    return found


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything one analysis reads, read once."""

    decisions: Sequence[Decision] = ()
    readings: Sequence[Reading] = ()
    checks: Sequence[Check] = ()
    dues: Sequence[Due] = ()
    #: Sources that could not be read (a schema absent on this hub, no permission), in words.
    unread: tuple[str, ...] = ()


def analyse(facts: Facts, now: datetime, zone: ZoneInfo, t: Thresholds | None = None) -> list[Finding]:
    """Every finding of every kind, in the order of :data:`KINDS`."""
    t = t or Thresholds()
    return [
        *reject_rate_rising(facts.decisions, now, t),
        *spc_drift(facts.readings, t),
        *check_later_each_day(facts.checks, zone, t),
        *coming_due(facts.dues, now.astimezone(zone).date(), t),
        *refused_by_one_rule(facts.decisions, now, t),
    ]
