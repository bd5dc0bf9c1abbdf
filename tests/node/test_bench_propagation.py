"""``smart bench propagation`` runs end to end at a small size and prints the figures it promises."""

from __future__ import annotations

import json

from smart.testing.cli import invoke

KEYS = {"p50_s", "p99_s", "kv_mirror_p50_s", "kv_mirror_p99_s", "hub_deploy_p50_s", "first_revision_s"}


def test_the_propagation_benchmark_prints_one_json_object_with_the_warm_up_apart() -> None:
    result = invoke("bench", "propagation", "--rounds", "5", "--stations", "2", "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert set(figures) == KEYS
    assert all(figures[key] > 0 for key in KEYS)
    assert figures["p50_s"] <= figures["p99_s"]
    assert figures["hub_deploy_p50_s"] <= figures["p99_s"]  # the deploy is part of what is timed
