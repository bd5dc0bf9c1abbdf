"""``smart bench hub --json`` prints one JSON object with each figure beside its baseline (shape only)."""

from __future__ import annotations

import json

from smart.testing.cli import invoke


def test_bench_hub_prints_its_figures_and_the_plain_select_baseline_as_one_json_object() -> None:
    ran = invoke(
        "bench",
        "hub",
        "--json",
        "--po-lines",
        "200",
        "--searches",
        "5",
        "--import-lines",
        "20",
        "--releases",
        "2",
        "--decisions",
        "1000",
        "--ledger-entries",
        "500",
        "--assets",
        "20",
        "--calendar-pages",
        "3",
    )
    assert ran.exit_code == 0, ran.output
    figures = json.loads(ran.stdout)
    for key in ("po_search_p95_ms", "import_10k_s", "release_to_station_p99_ms", "baseline_p95_ms"):
        assert isinstance(figures[key], float | int) and figures[key] > 0, key
    assert figures["po_lines"] == 200 and figures["releases"] == 2
    for key in ("compliance_search_p95_ms", "in_force_at_ms", "compliance_lookup_baseline_p95_ms"):
        assert isinstance(figures[key], float | int) and figures[key] > 0, key
    assert figures["compliance_decisions"] == 1000
    for key in (
        "recall_impact_s",
        "recall_scan_baseline_s",
        "due_calendar_p95_ms",
        "due_calendar_baseline_p95_ms",
    ):
        assert isinstance(figures[key], float | int) and figures[key] > 0, key
    assert figures["recall_ledger_entries"] == 500 and figures["recalled_jobs"] > 0
