"""``smart bench resync`` runs end to end at a small size and prints one JSON object on stdout."""

from __future__ import annotations

import json

from smart.testing.cli import invoke

KEYS = {
    "entries_per_s_per_station",
    "stations",
    "seconds",
    "first_entry_s",
    "hub_start_s",
    "agents",
    "hub_alone_entries_per_s_per_station",
}


def test_the_resync_benchmark_prints_one_json_object_and_its_logs_go_elsewhere() -> None:
    result = invoke("bench", "resync", "--entries", "100", "--stations", "2", "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)  # nothing but the one object: the floor's logs are not here
    assert set(figures) == KEYS and figures["stations"] == 2
    assert figures["agents"] == "process"  # each station's agent ships from a process of its own
    assert figures["entries_per_s_per_station"] > 0 and figures["seconds"] > 0
    assert figures["hub_alone_entries_per_s_per_station"] > 0  # the baseline of the same run
