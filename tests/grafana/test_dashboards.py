"""The chart's dashboards are what :mod:`smart.grafana.dashboards` builds, and say what Grafana needs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import promql_parser
import pytest
from typer.testing import CliRunner

from smart.cli import app
from smart.grafana import dashboards


def test_the_charts_dashboards_are_current() -> None:
    built = dashboards.render()
    on_disk = sorted(p.name for p in dashboards.CHART_DASHBOARDS.glob("*.json"))
    assert on_disk == sorted(built)
    for name, text in built.items():
        assert (dashboards.CHART_DASHBOARDS / name).read_text(encoding="utf-8") == text, (
            f"charts/smart/files/grafana/dashboards/{name} is stale: run `smart grafana dashboards --write`"
        )


def test_every_panel_names_a_provisioned_datasource_and_every_board_a_stable_uid() -> None:
    uids = set()
    for name, text in dashboards.render().items():
        board = json.loads(text)
        assert board["uid"] not in uids and board["uid"].startswith("smart-"), name
        uids.add(board["uid"])
        panels = [p for p in board["panels"] if p["type"] != "row"]
        assert panels, name
        for panel in panels:
            assert panel["datasource"]["uid"] in (dashboards.POSTGRES_UID, dashboards.PROMETHEUS_UID), panel
            assert panel["targets"], (name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == panel["datasource"]["uid"], (name, panel["title"])
    services = json.loads(dashboards.render()["services.json"])
    exprs = " ".join(t["expr"] for p in services["panels"] for t in p.get("targets", []))
    for metric in (
        "smart_station_decisions_total",
        "smart_station_decision_seconds_bucket",
        "smart_service_healthy",
    ):
        assert metric in exprs
    # Module processes (smart module run) time their own decisions: drawn beside the station's.
    (latency,) = [p for p in services["panels"] if p["title"] == "Decision latency p95 by station"]
    drawn = {t["refId"]: t["expr"] for t in latency["targets"]}
    assert "smart_station_decision_seconds_bucket" in drawn["A"]
    assert "smart_module_decision_seconds_bucket" in drawn["B"] and "by (station, module, le)" in drawn["B"]


def test_the_command_checks_names_a_stale_file_and_writes(tmp_path: Path) -> None:
    runner = CliRunner()
    stale = runner.invoke(app, ["grafana", "dashboards", "--dir", str(tmp_path)])
    assert stale.exit_code == 1 and "quality.json" in stale.output
    written = runner.invoke(app, ["grafana", "dashboards", "--write", "--dir", str(tmp_path)])
    assert written.exit_code == 0, written.output
    assert runner.invoke(app, ["grafana", "dashboards", "--dir", str(tmp_path)]).exit_code == 0
    (tmp_path / "ledger.json").write_text("{}")
    again = runner.invoke(app, ["grafana", "dashboards", "--dir", str(tmp_path)])
    assert again.exit_code == 1 and "ledger.json" in again.output and "quality.json" not in again.output


def test_every_promql_expression_parses_and_reads_only_the_named_metrics() -> None:
    board = json.loads(dashboards.render()["services.json"])
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 15
    named = set(dashboards.METRICS.values())
    for expr in exprs:
        promql_parser.parse(expr)  # raises ValueError naming what is wrong
        for metric in re.findall(r"\bsmart_[a-z_]+", expr):
            assert metric.removesuffix("_bucket") in named, (metric, expr)
    with pytest.raises(ValueError):
        promql_parser.parse("sum by (station (rate(smart_station_decisions_total[5m]))")
