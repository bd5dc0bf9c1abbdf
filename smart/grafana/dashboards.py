"""The shop's Grafana dashboards, built with grafana-foundation-sdk and written into the Helm chart.

Three dashboards, one per reader:

- **Quality** (a quality manager): refusals per station and per rule over time, decisions by
  outcome, first-pass yield by station, part and order, open NCRs, calibrations, surveys and lots
  coming due;
- **Ledger** (a quality manager or an auditor): entries per station, the latest checkpoint with its
  cosignatures and witnesses, what is not yet checkpointed, alarms;
- **Services** (a Kubernetes admin, from Prometheus): decision rate and latency, ledger lag, mirror
  lag, service health, the operator's reconciles.

The SDK has no PostgreSQL query type, so :class:`SqlQuery` is the datasource's target as Grafana
stores it (``rawSql``, ``format``, ``rawQuery``). The datasources are referenced by fixed uids the
chart's provisioning gives them (:data:`POSTGRES_UID`, :data:`PROMETHEUS_UID`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, Panel

from smart.grafana import queries as q

#: Where the chart keeps the generated dashboards (the provider ConfigMap reads them).
CHART_DASHBOARDS = (
    Path(__file__).resolve().parents[2] / "charts" / "smart" / "files" / "grafana" / "dashboards"
)

POSTGRES_UID = "smart-postgresql"
PROMETHEUS_UID = "smart-prometheus"
POSTGRES = DataSourceRef(type_val="grafana-postgresql-datasource", uid=POSTGRES_UID)
PROMETHEUS = DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)

#: The Prometheus series the Services dashboard reads (the names d21-metrics' services export).
METRICS = {
    "decisions": "smart_station_decisions_total",
    "decision_seconds": "smart_station_decision_seconds",
    "ledger_lag": "smart_station_ledger_unshipped_entries",
    "mirror_lag": "smart_station_mirror_lag_seconds",
    "service_healthy": "smart_service_healthy",
    "service_restarts": "smart_service_restarts_total",
    "reconciles": "smart_operator_reconciles_total",
    "reconcile_errors": "smart_operator_errors_total",
}


class SqlQuery(cogvariants.Dataquery):
    """A target of Grafana's PostgreSQL datasource, as its JSON model stores one."""

    def __init__(self, ref_id: str, raw_sql: str, format_val: str) -> None:
        self.ref_id, self.raw_sql, self.format_val = ref_id, raw_sql, format_val

    def to_json(self) -> dict[str, object]:
        return {
            "refId": self.ref_id,
            "datasource": POSTGRES.to_json(),
            "editorMode": "code",
            "format": self.format_val,
            "rawQuery": True,
            "rawSql": self.raw_sql,
        }


class Sql(cogbuilder.Builder[SqlQuery]):
    def __init__(self, panel: q.PanelSql, ref_id: str = "A") -> None:
        self._internal = SqlQuery(ref_id, panel.sql, panel.format)

    def build(self) -> SqlQuery:
        return self._internal


def _promql(expr: str, legend: str, ref_id: str = "A") -> prometheus.Dataquery:
    return (
        prometheus.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .ref_id(ref_id)
        .datasource(PROMETHEUS.to_json())
    )


Kind = Literal["timeseries", "table", "stat"]


def _sql_panel(
    title: str, panel: q.PanelSql, kind: Kind, *, description: str, width: int = 12
) -> cogbuilder.Builder[Panel]:
    built: timeseries.Panel | table.Panel | stat.Panel
    if kind == "timeseries":
        built = timeseries.Panel()
    elif kind == "table":
        built = table.Panel()
    else:
        built = stat.Panel()
    return (
        built.title(title)
        .description(description)
        .datasource(POSTGRES)
        .with_target(Sql(panel))
        .span(width)
        .height(8)
    )


def quality() -> db.Dashboard:
    return (
        db.Dashboard("SMART — Quality")
        .uid("smart-quality")
        .tags(["smart", "quality"])
        .description(
            "Refusals, decisions, first-pass yield, NCRs and what falls due: the hub log and tables."
        )
        .time("now-7d", "now")
        .refresh("5m")
        .readonly()
        .with_row(db.Row("Refusals and decisions"))
        .with_panel(
            _sql_panel(
                "Refusals per station",
                q.REFUSALS_BY_STATION,
                "timeseries",
                description="Decisions that denied, per station per hour (module and gate decisions).",
            )
        )
        .with_panel(
            _sql_panel(
                "Refusals per rule",
                q.REFUSALS_BY_RULE,
                "timeseries",
                description="Denying reasons per rule id per hour: which rule stops the floor most.",
            )
        )
        .with_panel(
            _sql_panel(
                "Decisions by outcome",
                q.DECISIONS_BY_OUTCOME,
                "table",
                description="Every module and gate decision in the range, by outcome (allow, warn, deny).",
                width=8,
            )
        )
        .with_panel(
            _sql_panel(
                "Most refusing rules",
                q.TOP_REFUSING_RULES,
                "table",
                description="The station, module and rule behind the most refusals in the range.",
                width=16,
            )
        )
        .with_row(db.Row("First-pass yield"))
        .with_panel(
            _sql_panel(
                "First-pass yield by station",
                q.YIELD_BY_STATION,
                "table",
                description="Jobs handed off or with an NCR; first pass when no NCR was opened on the job.",
                width=8,
            )
        )
        .with_panel(
            _sql_panel(
                "First-pass yield by part",
                q.YIELD_BY_PART,
                "table",
                description="The same count by part number.",
                width=8,
            )
        )
        .with_panel(
            _sql_panel(
                "First-pass yield by customer order",
                q.YIELD_BY_CUSTOMER_ORDER,
                "table",
                description="The same count by the customer's purchase order the traveler names.",
                width=8,
            )
        )
        .with_row(db.Row("Nonconformance and what falls due"))
        .with_panel(
            _sql_panel(
                "Open NCRs", q.NCRS_OPEN_COUNT, "stat", description="NCRs opened and not yet closed.", width=4
            )
        )
        .with_panel(
            _sql_panel(
                "Open NCRs by station",
                q.NCRS_OPEN,
                "table",
                description="Each open NCR, its station, job and part (QACentral's index of the entries).",
                width=20,
            )
        )
        .with_panel(
            _sql_panel(
                "Calibrations and surveys due in 90 days",
                q.CALIBRATIONS_DUE,
                "table",
                description="Equipment whose calibration, TUS or SAT falls due within 90 days or is overdue.",
            )
        )
        .with_panel(
            _sql_panel(
                "Lots expiring in 90 days",
                q.LOTS_DUE,
                "table",
                description="Material lots in use that expire within 90 days or have expired.",
            )
        )
    )


def ledger() -> db.Dashboard:
    return (
        db.Dashboard("SMART — Ledger")
        .uid("smart-ledger")
        .tags(["smart", "ledger"])
        .description("The hub log's health: entries per station, checkpoints, cosignatures, alarms.")
        .time("now-7d", "now")
        .refresh("1m")
        .readonly()
        .with_panel(
            _sql_panel(
                "Log size and checkpoint",
                q.LOG_SIZE,
                "stat",
                description="Entries in the hub log, the size of the latest signed checkpoint, and the gap.",
            )
        )
        .with_panel(
            _sql_panel(
                "Open alarms",
                q.OPEN_ALARMS,
                "stat",
                description="Fork and other alarms no administrator has decided; each blocks its station.",
                width=4,
            )
        )
        .with_panel(
            _sql_panel(
                "Latest checkpoint",
                q.LATEST_CHECKPOINT,
                "table",
                description="The latest signed checkpoint, its root and the witnesses that cosigned it.",
                width=8,
            )
        )
        .with_panel(
            _sql_panel(
                "Entries per station",
                q.ENTRIES_PER_STATION,
                "table",
                description="Entries each station and hub service has in the hub log, its latest sequence.",
            )
        )
        .with_panel(
            _sql_panel(
                "Entries over time",
                q.ENTRIES_OVER_TIME,
                "timeseries",
                description="Entries per station per hour, by the time each entry carries.",
            )
        )
        .with_panel(
            _sql_panel(
                "Alarms",
                q.ALARMS,
                "table",
                description="The latest alarms, open or decided.",
                width=24,
            )
        )
    )


def services() -> db.Dashboard:
    m = METRICS
    return (
        db.Dashboard("SMART — Services")
        .uid("smart-services")
        .tags(["smart", "services"])
        .description("From Prometheus: decision rate and latency, ledger and mirror lag, service health.")
        .time("now-6h", "now")
        .refresh("30s")
        .readonly()
        .with_panel(
            timeseries.Panel()
            .title("Decisions per second by outcome")
            .datasource(PROMETHEUS)
            .with_target(_promql(f"sum by (outcome) (rate({m['decisions']}[5m]))", "{{outcome}}"))
            .unit("ops")
            .span(12)
            .height(8)
        )
        .with_panel(
            timeseries.Panel()
            .title("Decision latency p95 by station")
            .datasource(PROMETHEUS)
            .with_target(
                _promql(
                    "histogram_quantile(0.95, sum by (station, le) "
                    f"(rate({m['decision_seconds']}_bucket[5m])))",
                    "{{station}}",
                )
            )
            .unit("s")
            .span(12)
            .height(8)
        )
        .with_panel(
            timeseries.Panel()
            .title("Ledger lag (entries not yet at the hub)")
            .datasource(PROMETHEUS)
            .with_target(_promql(f"max by (station) ({m['ledger_lag']})", "{{station}}"))
            .span(12)
            .height(8)
        )
        .with_panel(
            timeseries.Panel()
            .title("Mirror lag")
            .datasource(PROMETHEUS)
            .with_target(_promql(f"max by (station) ({m['mirror_lag']})", "{{station}}"))
            .unit("s")
            .span(12)
            .height(8)
        )
        .with_panel(
            stat.Panel()
            .title("Services unhealthy")
            .datasource(PROMETHEUS)
            .with_target(_promql(f"count({m['service_healthy']} == 0) or vector(0)", "unhealthy"))
            .span(6)
            .height(6)
        )
        .with_panel(
            timeseries.Panel()
            .title("Service health")
            .datasource(PROMETHEUS)
            .with_target(_promql(f"min by (service) ({m['service_healthy']})", "{{service}}"))
            .span(9)
            .height(6)
        )
        .with_panel(
            timeseries.Panel()
            .title("Restarts and reconcile errors")
            .datasource(PROMETHEUS)
            .with_target(
                _promql(f"sum by (service) (increase({m['service_restarts']}[1h]))", "restarts {{service}}")
            )
            .with_target(_promql(f"sum(increase({m['reconcile_errors']}[1h]))", "operator errors", "B"))
            .span(9)
            .height(6)
        )
    )


def render() -> dict[str, str]:
    """File name → JSON text of every dashboard (stable: sorted keys, one trailing newline)."""
    built = {"quality.json": quality(), "ledger.json": ledger(), "services.json": services()}
    rendered = {}
    for name, board in built.items():
        model = _without_nulls(json.loads(json.dumps(board.build(), cls=JSONEncoder)))
        for number, panel in enumerate(_panels(model), start=1):
            panel["id"] = number  # stable ids, so a link to ?viewPanel=N keeps its panel
        rendered[name] = json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return rendered


def _without_nulls(value: Any) -> Any:
    """The model without the SDK's unset fields: Grafana reads a missing option as its default, not null."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def sql_panels(text: str) -> list[tuple[str, str, str]]:
    """(panel title, raw SQL, format) of every PostgreSQL target in a generated dashboard's JSON."""
    found: list[tuple[str, str, str]] = []
    for panel in _panels(json.loads(text)):
        for target in panel.get("targets") or []:
            if "rawSql" in target:
                found.append((str(panel["title"]), str(target["rawSql"]), str(target["format"])))
    return found


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    flat: list[dict[str, Any]] = []
    for panel in board.get("panels") or []:
        flat.append(panel)
        flat.extend(panel.get("panels") or [])
    return flat


def write(directory: Path = CHART_DASHBOARDS) -> list[Path]:
    """Write every dashboard into ``directory``; the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
