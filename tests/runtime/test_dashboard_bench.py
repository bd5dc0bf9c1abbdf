"""``smart bench dashboards`` at a tiny size: the figures' shape only (speed is the bench's own business)."""

from __future__ import annotations

import dataclasses

from smart.runtime import dashboard_bench
from smart.testing.plugin import FreshDatabase


def test_the_dashboards_bench_times_every_panel_and_the_page_beside_its_baselines(
    database: FreshDatabase,
) -> None:
    figures = dashboard_bench.run(database.url_for("postgres"), ledger_entries=3000, pages=3, rounds=2)
    shown = figures.as_json()
    for key in ("page_p95_ms", "panel_query_max_ms", "ledger_entries", "page_baseline_p95_ms"):
        assert key in shown, key
    assert shown["ledger_entries"] == 3000
    assert set(shown["panel_query_p95_ms"]) == {
        "jobs",
        "checks",
        "due",
        "ncrs",
        "refusals",
        "yield",
        "spc",
        "ledger",
        "people",
    }
    assert (
        shown["page_p95_ms"] > 0
        and shown["page_baseline_p95_ms"] > 0
        and shown["panel_baseline_select1_ms"] > 0
    )
    assert "station_metrics_ms" not in shown  # measured apart, on a station floor of its own (the CLI)
    scraped = dataclasses.replace(figures, station_metrics_ms=1.5, station_metrics_baseline_ms=0.5).as_json()
    assert (scraped["station_metrics_ms"], scraped["station_metrics_baseline_ms"]) == (1.5, 0.5)
