"""The dashboard's panels: one question of the records each, answered with the links to those records.

Each panel function takes a connection (the Floor's app role; SMART-ID's
credentials on the Vault's) and the shop's day, and returns a :class:`Panel`
of rows whose every number carries the address of the records behind it
(an existing page narrowed by a query, or one of the dashboard's own lists).
A panel whose tables this hub does not hold, or may not read, says so
(``unavailable``) instead of showing a zero that would look like good news.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import psycopg
import structlog
from psycopg.rows import dict_row

from smart.access import derive
from smart.contracts import spc
from smart.hub.dashboard import index
from smart.hub.qa import yields
from smart.hub.vault.smartid import _record as record_of

log = structlog.get_logger("smart.hub.dashboard")

#: Points drawn per SPC chart, and charts drawn (the characteristics with the most readings).
SPC_POINTS, SPC_CHARTS, SUBGROUP = 60, 6, 5
#: How far back the refusals chart reads, and how many rules its table names.
REFUSAL_DAYS, TOP_RULES = 30, 10
#: A check seen at a station in these days before today is due today: not done by now, it is overdue.
CHECK_LOOKBACK_DAYS = 7
#: The people panel's windows (days).
WINDOWS = (30, 60, 90)


@dataclass(frozen=True, slots=True)
class Cell:
    text: str
    href: str | None = None
    css: str | None = None


@dataclass(frozen=True, slots=True)
class Panel:
    key: str
    title: str
    #: The list the whole panel stands for.
    href: str
    headers: tuple[str, ...] = ()
    rows: tuple[tuple[Cell, ...], ...] = ()
    #: Charts drawn under the table (uPlot series), inline as JSON.
    charts: tuple[dict[str, Any], ...] = ()
    unavailable: str | None = None
    query_ms: float = 0.0
    notes: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not self.rows and not self.charts


@dataclass(frozen=True, slots=True)
class Day:
    """The shop's today: its date and where it starts and ends in UTC."""

    today: date
    start: datetime
    end: datetime

    @classmethod
    def of(cls, now: datetime, zone: ZoneInfo) -> Day:
        local = now.astimezone(zone).date()
        start = datetime(local.year, local.month, local.day, tzinfo=zone)
        return cls(local, start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC))


def link(path: str, **query: object) -> str:
    shown = {k: v for k, v in query.items() if v is not None and v != ""}
    return f"{path}?{urlencode(shown)}" if shown else path


def _n(value: int, href: str, css: str | None = None) -> Cell:
    return Cell(str(value), href, css if value else None)


def jobs_in_progress(conn: psycopg.Connection[Any], day: Day) -> Panel:
    rows = conn.execute(
        "SELECT station, state, count(*) FROM dashboard_jobs_now"
        " WHERE state <> 'handed-off' AND state = ANY(%s) GROUP BY station, state ORDER BY station, state",
        (list(index.IN_PROGRESS),),
    ).fetchall()
    return Panel(
        "jobs",
        "Jobs in progress",
        "/dashboard/jobs",
        ("Station", "State", "Jobs"),
        tuple(
            (
                Cell(station, link("/dashboard/jobs", station=station)),
                Cell(state),
                _n(count, link("/dashboard/jobs", station=station, state=state)),
            )
            for station, state, count in rows
        ),
    )


def check_status(conn: psycopg.Connection[Any], day: Day) -> dict[tuple[str, str], str]:
    """Each (station, check) due today: ``done``, ``failed`` (done, never passed) or ``overdue``."""
    today = conn.execute(
        "SELECT station, check_name, bool_or(passed) FROM dashboard_checks"
        " WHERE at >= %s AND at < %s GROUP BY station, check_name",
        (day.start, day.end),
    ).fetchall()
    seen = conn.execute(
        "SELECT DISTINCT station, check_name FROM dashboard_checks WHERE at >= %s AND at < %s",
        (day.start - timedelta(days=CHECK_LOOKBACK_DAYS), day.start),
    ).fetchall()
    status = {(s, c): "overdue" for s, c in seen}
    status.update({(s, c): "done" if passed else "failed" for s, c, passed in today})
    return status


def checks_today(conn: psycopg.Connection[Any], day: Day) -> Panel:
    counts: dict[str, dict[str, int]] = {}
    for (station, _check), state in check_status(conn, day).items():
        counts.setdefault(station, {"done": 0, "failed": 0, "overdue": 0})[state] += 1
    return Panel(
        "checks",
        f"Station checks today ({day.today.isoformat()})",
        "/dashboard/checks",
        ("Station", "Done", "Failed", "Overdue"),
        tuple(
            (
                Cell(station, link("/dashboard/checks", station=station)),
                _n(c["done"], link("/dashboard/checks", station=station, status="done"), "good"),
                _n(c["failed"], link("/dashboard/checks", station=station, status="failed"), "bad"),
                _n(c["overdue"], link("/dashboard/checks", station=station, status="overdue"), "bad"),
            )
            for station, c in sorted(counts.items())
        ),
    )


def coming_due(conn: psycopg.Connection[Any], day: Day) -> Panel:
    horizon = day.today + timedelta(days=30)
    equipment = conn.execute(
        "SELECT asset_id, station, what, due FROM ("
        " SELECT asset_id, station, 'calibration' AS what, calibration_due AS due FROM maintenance.equipment"
        " UNION ALL SELECT asset_id, station, 'TUS', tus_due FROM maintenance.equipment"
        " UNION ALL SELECT asset_id, station, 'SAT', sat_due FROM maintenance.equipment) d"
        " WHERE due IS NOT NULL AND due <= %s ORDER BY due, asset_id LIMIT 12",
        (horizon,),
    ).fetchall()
    totals = conn.execute(
        "SELECT count(*) FILTER (WHERE d < %(t)s), count(*) FILTER (WHERE d >= %(t)s AND d <= %(h)s) FROM"
        " (SELECT unnest(ARRAY[calibration_due, tus_due, sat_due]) AS d FROM maintenance.equipment) x",
        {"t": day.today, "h": horizon},
    ).fetchone()
    rows: list[tuple[Cell, ...]] = []
    calendar = link("/maintenance/calendar", days=30)
    if totals is not None:
        rows.append(
            (
                Cell("Equipment (calibrations, surveys)", calendar),
                _n(int(totals[0]), calendar, "bad"),
                _n(int(totals[1]), calendar, "warn"),
            )
        )
    try:
        with conn.transaction():
            lots = conn.execute(
                "SELECT count(*) FILTER (WHERE expires_on < %(t)s),"
                " count(*) FILTER (WHERE expires_on >= %(t)s AND expires_on <= %(h)s)"
                " FROM inventory.lots WHERE withdrawn_on IS NULL",
                {"t": day.today, "h": horizon},
            ).fetchone()
        if lots is not None:
            rows.append(
                (
                    Cell("Lots", "/inventory"),
                    _n(lots[0], "/inventory", "bad"),
                    _n(lots[1], "/inventory", "warn"),
                )
            )
    except psycopg.Error as err:
        rows.append((Cell("Lots"), Cell(f"unavailable: {type(err).__name__}"), Cell("")))
    for asset, station, what, due in equipment:
        css = "bad" if due < day.today else "warn"
        rows.append(
            (
                Cell(f"{asset} ({station}) {what}", f"/maintenance/equipment/{asset}"),
                Cell("expired" if due < day.today else "", None, css),
                Cell(due.isoformat(), f"/maintenance/equipment/{asset}", css),
            )
        )
    return Panel(
        "due",
        "Calibrations, surveys and lots: expired or due in 30 days",
        calendar,
        ("What", "Expired", "Due ≤ 30 days"),
        tuple(rows),
    )


@dataclass(frozen=True, slots=True)
class FallingDue:
    """One person's credential as their records make it: the day it stops being current, and why."""

    employee_id: str
    kind: str
    scope: str
    valid_until: date
    basis: str


def falling_due(conn: psycopg.Connection[Any], today: date, *, within_days: int = 90) -> list[FallingDue]:
    """Every certification, training and safety standing SMART-ID's records bound within ``within_days``.

    The same derivation SMART-ID issues credentials by (:func:`smart.access.derive.standings`): a
    certification falls due with its eye exam, its practical or its recertification, whichever first.
    """
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute("SELECT * FROM vault.records ORDER BY employee_id, on_date, record_id").fetchall()
    found: list[FallingDue] = []
    for employee, held in itertools.groupby(rows, key=lambda r: str(r["employee_id"])):
        for standing in derive.standings([record_of(r) for r in held], today=today):
            if standing.valid_until is None or (standing.valid_until - today).days > within_days:
                continue
            scope = ", ".join(f"{k}: {v}" for k, v in sorted(standing.scope.items()))
            basis = "; ".join(standing.reasons or standing.basis)
            found.append(FallingDue(employee, standing.kind.value, scope, standing.valid_until, basis))
    return sorted(found, key=lambda d: (d.valid_until, d.employee_id, d.kind))


def people_due(conn: psycopg.Connection[Any], day: Day) -> Panel:
    """Certifications (eye exams, practicals), training and safety falling due within 30/60/90 days."""
    counts: dict[str, list[int]] = {}
    for due in falling_due(conn, day.today, within_days=89):
        days = (due.valid_until - day.today).days
        slot = 0 if days < 0 else 1 + min(2, days // 30)
        counts.setdefault(due.kind, [0, 0, 0, 0])[slot] += 1
    return Panel(
        "people",
        "People: certifications, eye exams and training falling due",
        "/dashboard/people",
        ("Credential", "Expired", "≤ 30 d", "31–60 d", "61–90 d"),
        tuple(
            (
                Cell(kind, link("/dashboard/people", kind=kind)),
                _n(n[0], link("/dashboard/people", kind=kind, within=0), "bad"),
                *(
                    _n(c, link("/dashboard/people", kind=kind, within=w), "warn")
                    for c, w in zip(n[1:], WINDOWS, strict=True)
                ),
            )
            for kind, n in sorted(counts.items())
        ),
    )


def ncrs_and_capas(conn: psycopg.Connection[Any], day: Day) -> Panel:
    ncrs = conn.execute(
        "SELECT ncr, station, kind, job, part, at FROM (SELECT DISTINCT ON (ncr) ncr, station, kind, job,"
        " part, at FROM qa.ncr_events ORDER BY ncr, ledger_idx DESC) last WHERE kind <> 'closed'"
        " ORDER BY at DESC"
    ).fetchall()
    capas = conn.execute(
        "SELECT id, status, due_on, owner FROM qa.capas WHERE status <> 'verified' ORDER BY due_on"
    ).fetchall()
    overdue = sum(1 for c in capas if c[2] < day.today)
    rows: list[tuple[Cell, ...]] = [
        (Cell("Open NCRs", "/ncrs"), _n(len(ncrs), "/ncrs", "bad"), Cell("")),
        (Cell("Open CAPAs", "/ncrs"), _n(len(capas), "/ncrs", "warn"), _n(overdue, "/ncrs", "bad")),
    ]
    for ncr, station, kind, job, part, _at in ncrs[:8]:
        rows.append(
            (
                Cell(f"{ncr} ({station})", f"/ncrs/{ncr}"),
                Cell(kind),
                Cell(" ".join(str(x) for x in (job, part) if x)),
            )
        )
    for capa, status, due_on, _owner in capas[:5]:
        css = "bad" if due_on < day.today else None
        rows.append(
            (Cell(f"CAPA {capa}", "/ncrs"), Cell(status), Cell(f"due {due_on.isoformat()}", None, css))
        )
    return Panel("ncrs", "Open NCRs and CAPAs", "/ncrs", ("What", "Open", "Overdue / detail"), tuple(rows))


def refusals(conn: psycopg.Connection[Any], day: Day) -> Panel:
    since = day.start - timedelta(days=REFUSAL_DAYS - 1)
    per_day = conn.execute(
        "SELECT station, date_trunc('day', at) AS d, count(DISTINCT ledger_idx) FROM compliance_decisions"
        " WHERE at >= %s AND severity = 'deny' AND NOT audit GROUP BY station, d ORDER BY station, d",
        (since,),
    ).fetchall()
    rules = conn.execute(
        "SELECT rule, count(DISTINCT ledger_idx) AS n FROM compliance_decisions"
        " WHERE at >= %s AND severity = 'deny' AND NOT audit GROUP BY rule ORDER BY n DESC, rule LIMIT %s",
        (since, TOP_RULES),
    ).fetchall()
    days = [(since + timedelta(days=i)) for i in range(REFUSAL_DAYS)]
    stamps = [int(d.timestamp()) for d in days]
    stations = sorted({s for s, _d, _n in per_day})
    series: dict[str, list[int]] = {s: [0] * REFUSAL_DAYS for s in stations}
    totals: dict[str, int] = dict.fromkeys(stations, 0)
    for station, d, count in per_day:
        slot = (d.astimezone(UTC) - since).days if d.tzinfo else (d.replace(tzinfo=UTC) - since).days
        if 0 <= slot < REFUSAL_DAYS:
            series[station][slot] += count
        totals[station] += count
    rows: list[tuple[Cell, ...]] = [
        (
            Cell(f"station {s}", link("/compliance", station=s, severity="deny")),
            _n(totals[s], link("/compliance", station=s, severity="deny"), "bad"),
        )
        for s in stations
    ]
    rows += [
        (
            Cell(f"rule {rule}", link("/compliance", rule=rule, severity="deny")),
            _n(n, link("/compliance", rule=rule, severity="deny"), "bad"),
        )
        for rule, n in rules
    ]
    chart = (
        {
            "id": "refusals-chart",
            "kind": "bars",
            "title": f"Refusals per station per day ({REFUSAL_DAYS} d)",
            "x": stamps,
            "series": [{"label": s, "values": series[s]} for s in stations],
        }
        if stations
        else None
    )
    return Panel(
        "refusals",
        f"Refusals, last {REFUSAL_DAYS} days",
        link("/compliance", severity="deny"),
        ("Station / rule", "Refusals"),
        tuple(rows),
        (chart,) if chart else (),
    )


def first_pass_yield(conn: psycopg.Connection[Any], day: Day) -> Panel:
    """QACentral's own figures (:mod:`smart.hub.qa.yields`), so the home page and /ncrs never disagree."""
    rows = []
    for found in yields.first_pass_yield(conn):
        by, key, jobs, good = found.by, found.key, found.jobs, found.first_pass
        href = {"station": link("/jobs", station=key), "part": link("/jobs", part=key)}.get(by, "/ncrs")
        rows.append(
            (
                Cell(by),
                Cell(key, href),
                Cell(f"{good}/{jobs}", href),
                Cell(
                    f"{100 * good / jobs:.1f} %" if jobs else "—",
                    href,
                    "good" if jobs and good == jobs else "warn",
                ),
            )
        )
    return Panel(
        "yield",
        "First-pass yield (jobs through with no NCR)",
        "/ncrs",
        ("By", "Which", "Jobs", "Yield"),
        tuple(rows),
    )


@functools.lru_cache(maxsize=4 * SPC_CHARTS)
def _spc_chart(
    station: str, characteristic: str, points: tuple[tuple[int, float, datetime, str | None], ...]
) -> dict[str, Any]:
    """One chart's limits and Western Electric signals, worked out once per set of points (a page
    between two readings asks the same question again); the caller only reads what it returns."""
    values = [v for _i, v, _at, _u in points]
    baseline = values[: min(20, len(values))]
    limits = spc.individuals_limits(baseline)
    findings = spc.western_electric(values, limits, characteristic=characteristic)
    chart: dict[str, Any] = {
        "id": f"spc-{station}-{characteristic}",
        "kind": "spc",
        "title": f"{characteristic} at {station} (I-MR)",
        "unit": points[0][3],
        "x": [int(at.timestamp()) for _i, _v, at, _u in points],
        "values": values,
        "ranges": [None, *(abs(b - a) for a, b in itertools.pairwise(values))],
        "limits": {
            "centre": limits.centre,
            "ucl": limits.ucl,
            "lcl": limits.lcl,
            "rangeCentre": limits.range_centre,
            "rangeUcl": limits.range_ucl,
        },
        "signals": [
            {"rule": f.rule, "message": f.message, "points": [p.index for p in f.points], "chart": f.chart}
            for f in findings
        ],
    }
    if len(values) >= 2 * SUBGROUP:
        groups = [values[i : i + SUBGROUP] for i in range(0, len(values) - SUBGROUP + 1, SUBGROUP)]
        xr = spc.xbar_r_limits(groups)
        means = [sum(g) / len(g) for g in groups]
        chart["xbar"] = {
            "means": means,
            "ranges": [max(g) - min(g) for g in groups],
            "limits": {
                "centre": xr.centre,
                "ucl": xr.ucl,
                "lcl": xr.lcl,
                "rangeCentre": xr.range_centre,
                "rangeUcl": xr.range_ucl,
            },
            "signals": [
                {"rule": f.rule, "message": f.message, "points": [p.index for p in f.points]}
                for f in spc.western_electric(means, xr, characteristic=characteristic)
            ],
        }
    return chart


def spc_charts(conn: psycopg.Connection[Any], day: Day) -> Panel:
    """The characteristics with the most readings, each with its last points: one query for all."""
    found = conn.execute(
        "SELECT c.station, c.characteristic, c.readings, p.ledger_idx, p.value, p.at, p.unit FROM"
        " (SELECT station, characteristic, readings FROM dashboard_characteristics WHERE readings >= 3"
        "  ORDER BY readings DESC, station, characteristic LIMIT %s) c"
        " CROSS JOIN LATERAL (SELECT ledger_idx, value, at, unit FROM dashboard_readings r"
        "  WHERE r.station = c.station AND r.characteristic = c.characteristic"
        "  ORDER BY at DESC, ledger_idx DESC LIMIT %s) p"
        " ORDER BY c.readings DESC, c.station, c.characteristic, p.at, p.ledger_idx",
        (SPC_CHARTS, SPC_POINTS),
    ).fetchall()
    charts: list[dict[str, Any]] = []
    rows: list[tuple[Cell, ...]] = []
    for (station, characteristic, count), taken in itertools.groupby(found, key=lambda r: r[:3]):
        points = tuple((idx, value, at, unit) for _s, _c, _n, idx, value, at, unit in taken)
        chart = _spc_chart(station, characteristic, points)
        charts.append(chart)
        href = link("/dashboard/readings", station=station, characteristic=characteristic)
        signals = len(chart["signals"]) + len(chart.get("xbar", {}).get("signals", ()))
        rows.append(
            (
                Cell(f"{characteristic} at {station}", href),
                Cell(str(count), href),
                Cell(
                    f"{signals} signal(s)" if signals else "in control", href, "warn" if signals else "good"
                ),
            )
        )
    return Panel(
        "spc",
        "SPC: I-MR and X̄-R with the Western Electric rules",
        "/dashboard/readings",
        ("Characteristic", "Readings", "Western Electric"),
        tuple(rows),
        tuple(charts),
    )


def ledger_health(conn: psycopg.Connection[Any], day: Day) -> Panel:
    latest = conn.execute("SELECT max(size) FROM ledger_checkpoints").fetchone()
    cosigned = conn.execute(
        "SELECT size, array_agg(witness ORDER BY witness) FROM ledger_cosignatures"
        " WHERE size = (SELECT max(size) FROM ledger_cosignatures) GROUP BY size"
    ).fetchone()
    # The witnesses the administrator established (``ledger_witnesses`` is the older, unsigned form
    # no verifier reads); their signatures are checked where trust is decided, on each cosignature.
    witnesses = conn.execute(
        "SELECT count(DISTINCT name) FROM ledger_registrations WHERE role = 'witness'"
    ).fetchone()
    alarms = conn.execute(
        "SELECT count(*) FROM ledger_alarms a"
        " WHERE NOT EXISTS (SELECT 1 FROM ledger_alarm_decisions d WHERE d.alarm_id = a.id)"
    ).fetchone()
    size = int(latest[0]) if latest and latest[0] is not None else 0
    rows = (
        (
            Cell("Entries in the latest checkpoint", "/dashboard/ledger"),
            Cell(f"{size:,}", "/dashboard/ledger"),
        ),
        (
            Cell("Latest cosigned checkpoint", "/dashboard/ledger"),
            Cell(
                f"{int(cosigned[0]):,} by {', '.join(cosigned[1])}" if cosigned else "none yet",
                "/dashboard/ledger",
                None if cosigned else "bad",
            ),
        ),
        (
            Cell("Witnesses registered", "/dashboard/ledger"),
            Cell(str(witnesses[0] if witnesses else 0), "/dashboard/ledger"),
        ),
        (
            Cell("Open alarms", "/dashboard/ledger"),
            _n(int(alarms[0]) if alarms else 0, "/dashboard/ledger", "bad"),
        ),
    )
    return Panel("ledger", "The ledger's health", "/dashboard/ledger", ("", ""), rows)


PanelQuery = Callable[[psycopg.Connection[Any], Day], Panel]

#: The Floor's panels, in the page's order; ``people`` reads SMART-ID's tables (the Vault's).
FLOOR_PANELS: tuple[tuple[str, str, PanelQuery], ...] = (
    ("jobs", "Jobs in progress", jobs_in_progress),
    ("checks", "Station checks today", checks_today),
    ("due", "Calibrations, surveys and lots", coming_due),
    ("ncrs", "Open NCRs and CAPAs", ncrs_and_capas),
    ("refusals", "Refusals", refusals),
    ("yield", "First-pass yield", first_pass_yield),
    ("spc", "SPC", spc_charts),
    ("ledger", "The ledger's health", ledger_health),
)
PEOPLE_PANEL: tuple[str, str, PanelQuery] = ("people", "People falling due", people_due)


def run(conn: psycopg.Connection[Any] | None, query: tuple[str, str, PanelQuery], day: Day) -> Panel:
    """One panel, timed; a database refusal or a missing schema makes it ``unavailable``, never a zero."""
    key, title, ask = query
    if conn is None:
        return Panel(key, title, "/", unavailable="this hub does not hold these records")
    started = time.perf_counter()
    try:
        with conn.transaction():
            found = ask(conn, day)
    except psycopg.Error as err:
        log.warning("dashboard.panel_unavailable", panel=key, error=type(err).__name__, detail=str(err)[:200])
        return Panel(key, title, "/", unavailable=f"{type(err).__name__}: {str(err).splitlines()[0][:160]}")
    took = (time.perf_counter() - started) * 1000
    return Panel(found.key, found.title, found.href, found.headers, found.rows, found.charts, None, took)
