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

#: The Prometheus series the Services dashboard reads (smart/node/metrics.py, smart/hub/metrics.py,
#: smart/hub/web/app.py, smart/operator/metrics.py; the README's "Prometheus metrics" lists them).
METRICS = {
    "decisions": "smart_station_decisions_total",
    "decision_seconds": "smart_station_decision_seconds",
    "module_decision_seconds": "smart_module_decision_seconds",
    "ledger_lag": "smart_station_ledger_lag_entries",
    "shipped": "smart_station_ledger_shipped_entries_total",
    "station_blocked": "smart_station_ledger_blocked",
    "mirror_lag": "smart_station_mirror_lag_messages",
    "revisions": "smart_station_contract_revisions",
    "leaf_connected": "smart_station_leaf_connected",
    "witness_rounds": "smart_hub_witness_rounds_total",
    "ingest_refusals": "smart_hub_ledger_ingest_refusals_total",
    "alarms_open": "smart_hub_ledger_alarms_open",
    "service_healthy": "smart_service_healthy",
    "service_restarts": "smart_service_restarts",
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
                "First-pass yield by customer",
                q.YIELD_BY_CUSTOMER,
                "table",
                description="The same count by the customer of the purchase order the traveler names.",
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


def _prom_panel(
    kind: Literal["timeseries", "stat"], title: str, description: str, *targets: prometheus.Dataquery
) -> timeseries.Panel | stat.Panel:
    panel = timeseries.Panel() if kind == "timeseries" else stat.Panel()
    panel.title(title).description(description).datasource(PROMETHEUS)
    for target in targets:
        panel.with_target(target)
    return panel


def services() -> db.Dashboard:
    m = METRICS
    p95 = f"histogram_quantile(0.95, sum by (station, le) (rate({m['decision_seconds']}_bucket[5m])))"
    # A module in a process of its own (``smart module run --metrics-port``) times its own decisions.
    module_p95 = (
        "histogram_quantile(0.95, sum by (station, module, le) "
        f"(rate({m['module_decision_seconds']}_bucket[5m])))"
    )
    return (
        db.Dashboard("SMART — Services")
        .uid("smart-services")
        .tags(["smart", "services"])
        .description("From Prometheus: decisions and their latency, ledger and mirror lag, service health.")
        .time("now-6h", "now")
        .refresh("30s")
        .readonly()
        .with_row(db.Row("At a glance"))
        .with_panel(
            _prom_panel(
                "stat",
                "Services unhealthy",
                "Floor services the supervisor reports unhealthy (smart_service_healthy == 0).",
                _promql(f"count({m['service_healthy']} == 0) or vector(0)", "unhealthy"),
            )
            .span(6)
            .height(5)
        )
        .with_panel(
            _prom_panel(
                "stat",
                "Stations with no contract in force",
                "A station with no verified revision refuses every job: it fails closed.",
                _promql(f"count({m['revisions']} == 0) or vector(0)", "refusing everything"),
            )
            .span(6)
            .height(5)
        )
        .with_panel(
            _prom_panel(
                "stat",
                "Stations whose ledger the hub refuses",
                "1 while the hub refuses a station's ledger (a fork, a bad batch): an administrator decides.",
                _promql(f"count({m['station_blocked']} == 1) or vector(0)", "blocked"),
            )
            .span(6)
            .height(5)
        )
        .with_panel(
            _prom_panel(
                "stat",
                "Ledger alarms open",
                "Alarms at the hub no administrator has decided.",
                _promql(f"max({m['alarms_open']}) or vector(0)", "open"),
            )
            .span(6)
            .height(5)
        )
        .with_row(db.Row("Decisions"))
        .with_panel(
            _prom_panel(
                "timeseries",
                "Decisions per second by outcome",
                "Module and gate decisions recorded at the stations, by outcome.",
                _promql(f"sum by (outcome) (rate({m['decisions']}[5m]))", "{{outcome}}"),
            )
            .unit("ops")
            .span(12)
            .height(8)
        )
        .with_panel(
            _prom_panel(
                "timeseries",
                "Decision latency p95 by station",
                "From a decision request to its decision durable on the station's ledger: the station's "
                "process (its own decisions and its in-process modules'), and each module running as a "
                "process of its own, which times its decisions itself (smart_module_decision_seconds).",
                _promql(p95, "{{station}}"),
                _promql(module_p95, "{{station}} {{module}} (own process)", "B"),
            )
            .unit("s")
            .span(12)
            .height(8)
        )
        .with_panel(
            _prom_panel(
                "timeseries",
                "Refusals per second by station and rule",
                "Denying decisions, by the rule they turned on.",
                _promql(
                    f'sum by (station, rule) (rate({m["decisions"]}{{outcome="deny"}}[5m]))',
                    "{{station}} {{rule}}",
                ),
            )
            .unit("ops")
            .span(24)
            .height(8)
        )
        .with_row(db.Row("Ledger and mirrors"))
        .with_panel(
            _prom_panel(
                "timeseries",
                "Ledger lag (entries the hub has not receipted)",
                "Entries each station holds that the hub has not yet receipted.",
                _promql(f"max by (station) ({m['ledger_lag']})", "{{station}}"),
            )
            .span(8)
            .height(8)
        )
        .with_panel(
            _prom_panel(
                "timeseries",
                "Shipping rate",
                "Entries per second the hub receipted, per station.",
                _promql(f"sum by (station) (rate({m['shipped']}[5m]))", "{{station}}"),
            )
            .unit("ops")
            .span(8)
            .height(8)
        )
        .with_panel(
            _prom_panel(
                "timeseries",
                "Mirror lag (messages behind)",
                "Messages each station's mirrors of the hub's buckets (contracts, records) are behind.",
                _promql(f"max by (station) ({m['mirror_lag']})", "{{station}}"),
            )
            .span(8)
            .height(8)
        )
        .with_panel(
            _prom_panel(
                "timeseries",
                "Witness rounds by outcome",
                "Checkpoints the hub offered the stations' witnesses, by outcome.",
                _promql(f"sum by (outcome) (increase({m['witness_rounds']}[1h]))", "{{outcome}}"),
            )
            .span(12)
            .height(8)
        )
        .with_panel(
            _prom_panel(
                "timeseries",
                "Ingest refusals by station",
                "Batches the hub's intake refused (refused, fork, blocked, gap).",
                _promql(
                    f"sum by (station, kind) (increase({m['ingest_refusals']}[1h]))", "{{station}} {{kind}}"
                ),
            )
            .span(12)
            .height(8)
        )
        .with_row(db.Row("Services"))
        .with_panel(
            _prom_panel(
                "timeseries",
                "Service health",
                "1 healthy, 0 not, per floor service.",
                _promql(f"min by (service) ({m['service_healthy']})", "{{service}}"),
            )
            .span(8)
            .height(6)
        )
        .with_panel(
            _prom_panel(
                "timeseries",
                "Station leaf connected",
                "1 while each station's agent is connected to its leaf nats-server.",
                _promql(f"min by (station) ({m['leaf_connected']})", "{{station}}"),
            )
            .span(8)
            .height(6)
        )
        .with_panel(
            _prom_panel(
                "timeseries",
                "Restarts and operator errors",
                "Restarts by the supervisor, and the operator's reconcile errors in the last hour.",
                _promql(f"max by (service) ({m['service_restarts']})", "restarts {{service}}"),
                _promql(f"sum(increase({m['reconcile_errors']}[1h]))", "operator errors", "B"),
            )
            .span(8)
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
