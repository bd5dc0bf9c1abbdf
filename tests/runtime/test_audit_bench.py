"""``smart bench audit`` at a tiny size: the figures' shape only (speed is the bench's own business)."""

from __future__ import annotations

import json

from smart.testing.cli import invoke


def test_smart_bench_audit_prints_one_json_object_with_its_figures_and_baselines() -> None:
    done = invoke("bench", "audit", "--json", "--entries", "2000", "--jobs", "4")
    assert done.exit_code == 0, done.output
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    for key in ("packet_html_s", "packet_pdf_s", "impact_s", "offline_verify_ms", "ledger_entries"):
        assert key in figures, key
    for key in ("baseline_select_s", "baseline_pdf_s", "baseline_impact_s", "baseline_verify_ms"):
        assert figures[key] > 0, key
    assert figures["ledger_entries"] == 2000 and figures["jobs"] == 4
    assert figures["impact_jobs"] == 2  # the later half of the jobs touched the gauge since the date
    assert figures["cited_entries"] > 10 and figures["offline_verify_ms"] > 0
    low, high = figures["load_average"]  # how busy the machine was while timing: the figures' context
    assert figures["rounds"] == 3 and 0 <= low <= high
