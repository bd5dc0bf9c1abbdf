"""``smart bench station`` runs end to end at a tiny size and prints the figures it promises."""

from __future__ import annotations

import json

import pytest

from smart.testing.cli import invoke

KEYS = {
    "decisions_per_s",
    "p99_ms",
    "nats_roundtrip_p99_ms",
    "station_rss_mb",
    "in_process_p99_ms",
    "out_of_process_p99_ms",
    "out_of_process_rss_total_mb",
}


@pytest.mark.timeout(900)  # the out-of-process half starts a process per module
def test_the_station_benchmark_prints_one_json_object_with_its_figures() -> None:
    result = invoke("bench", "station", "--requests", "10", "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert KEYS <= set(figures)
    assert all(figures[key] > 0 for key in KEYS)
    assert figures["requests"] == 10 and figures["sequential"] is True
    assert 0 < figures["p50_ms"] <= figures["p99_ms"]
    assert 0 < figures["nats_roundtrip_p50_ms"] <= figures["nats_roundtrip_p99_ms"]
    assert 0 < figures["sqlite_commit_p50_ms"] <= figures["sqlite_commit_p99_ms"]
    assert figures["rss_delta_mb"] == pytest.approx(
        figures["station_rss_mb"] - figures["rss_before_mb"], abs=0.2
    )
    assert "gatekeeper" in figures["modules"]
    assert figures["in_process_p99_ms"] == figures["p99_ms"]
    rss = figures["out_of_process_rss_mb"]  # each module process's resident set, one per module
    assert set(rss) == set(figures["modules"]) and all(mb > 0 for mb in rss.values())
    assert figures["out_of_process_rss_total_mb"] == pytest.approx(sum(rss.values()), abs=0.5)
    assert 0 < figures["out_of_process_pss_total_mb"] <= figures["out_of_process_rss_total_mb"]
