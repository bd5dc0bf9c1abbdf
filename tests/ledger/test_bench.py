"""``smart bench ledger`` runs end to end and prints the figures it promises (not judged here)."""

from __future__ import annotations

import json

from smart.testing.cli import invoke
from smart.testing.plugin import FreshDatabase

KEYS = {"ingest_per_s", "plain_insert_per_s", "ingest_time_ratio", "node_appends_per_s", "verify_1m_s"}


def test_the_ledger_benchmark_prints_one_json_object_with_its_figures(database: FreshDatabase) -> None:
    args = ["bench", "ledger", "--json", "--ingest-entries", "6000", "--verify-entries", "6000"]
    args += ["--appends", "100", "--database-url", database.url_for("postgres")]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert KEYS <= set(figures)
    assert all(figures[key] > 0 for key in KEYS)
