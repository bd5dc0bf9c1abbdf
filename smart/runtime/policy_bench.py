"""``smart bench hub``'s ComplianceCentral and PolicyCentral figures, beside a baseline from the same run.

- **Compliance search**: :func:`smart.hub.compliance.index.search` over 1,000,000 indexed
  decisions (six stations, forty rules, a year of them), each query narrowed by a different
  facet (station and rule, job, badge, equipment, standard, a time window), newest first, 500 at
  most; p95 in ms. The baseline is a plain primary-key ``SELECT`` of one row of the same table.
- **In force at**: :func:`smart.hub.compliance.index.in_force_at` (each contract's revision at a
  station at a random moment) over a year of activations; p95 in ms, beside the same baseline.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from smart.hub.compliance import index

STATIONS = ("pt-1", "mt-1", "ut-1", "ht-1", "cp-1", "sr-1")
RULES = 40
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class PolicyFigures:
    decisions: int
    searches: int
    compliance_search_p95_ms: float
    in_force_at_ms: float
    lookup_baseline_p95_ms: float

    def as_json(self) -> dict[str, Any]:
        return {
            "compliance_search_p95_ms": round(self.compliance_search_p95_ms, 2),
            "in_force_at_ms": round(self.in_force_at_ms, 2),
            "compliance_lookup_baseline_p95_ms": round(self.lookup_baseline_p95_ms, 3),
            "compliance_decisions": self.decisions,
            "compliance_searches": self.searches,
        }


def _p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[94]


def _seed(conn: psycopg.Connection[Any], decisions: int) -> None:
    stations = "(ARRAY['pt-1','mt-1','ut-1','ht-1','cp-1','sr-1'])[1 + mod(g, 6)]"
    conn.execute(
        "INSERT INTO compliance_decisions (ledger_idx, reason_no, station, node_seq, at, kind, module,"
        " outcome, severity, rule, standard, message, person, equipment, job)"
        f" SELECT g, 0, {stations}, g,"
        " %s::timestamptz + make_interval(secs => (g::float8 / %s) * 31536000),"
        " 'module.decision', 'gatekeeper',"
        " CASE WHEN mod(g, 5) = 0 THEN 'allow' ELSE 'deny' END,"
        " CASE WHEN mod(g, 5) = 0 THEN 'warn' ELSE 'deny' END,"
        " 'rule-' || mod(g, %s), 'std-' || mod(g, 7), 'refused', 'B-' || mod(g, 200),"
        " ARRAY['EQ-' || mod(g, 300)], 'J-' || mod(g, 50000)"
        " FROM generate_series(1, %s) AS g",
        (START, decisions, RULES, decisions),
    )
    conn.execute(
        "INSERT INTO compliance_equipment (equipment, at, ledger_idx, reason_no)"
        " SELECT e, at, ledger_idx, reason_no FROM compliance_decisions, unnest(equipment) e"
    )
    conn.execute(
        "INSERT INTO contract_activations (ledger_idx, station, contract, revision, at)"
        f" SELECT g, {stations}, 'contract-' || mod(g / 6, 7),"
        " md5(g::text) || md5((g + 1)::text), %s::timestamptz + make_interval(secs => g * 600)"
        " FROM generate_series(1, 50000) AS g",
        (START,),
    )
    conn.execute("ANALYZE compliance_decisions")
    conn.execute("ANALYZE contract_activations")
    conn.execute("ANALYZE compliance_equipment")


def measure(
    owner_url: str,
    *,
    decisions: int = 1_000_000,
    searches: int = 300,
    progress: Callable[[str], None] = lambda line: None,
) -> PolicyFigures:
    """Seed the two index tables in the bench's own database, then time searches and in-force-at."""
    index.migrate(owner_url)
    rng = random.Random(19)
    with psycopg.connect(owner_url, autocommit=True) as conn:
        progress(f"seeding {decisions:,} compliance decisions …")
        _seed(conn, decisions)
        year = timedelta(days=365)

        def window() -> tuple[str, str]:
            since = START + year * rng.random() * 0.9
            return since.isoformat(), (since + timedelta(days=14)).isoformat()

        facets: list[Callable[[], dict[str, Any]]] = [
            lambda: {"station": rng.choice(STATIONS), "rule": f"rule-{rng.randrange(RULES)}"},
            lambda: {"job": f"J-{rng.randrange(50_000)}"},
            lambda: {"person": f"B-{rng.randrange(200)}", "since": window()[0]},
            lambda: {"equipment": f"EQ-{rng.randrange(300)}"},
            lambda: {"standard": f"std-{rng.randrange(7)}", "station": rng.choice(STATIONS)},
            lambda: dict(zip(("since", "until"), window(), strict=True)),
        ]
        search_ms, lookup_ms, at_ms = [], [], []
        progress(f"timing {searches} searches and in-force-at questions …")
        for n in range(searches):
            params = facets[n % len(facets)]()
            started = time.perf_counter()
            index.search(conn, index.query(conn, **params))
            search_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            conn.execute(
                "SELECT * FROM compliance_decisions WHERE ledger_idx = %s AND reason_no = 0",
                (rng.randrange(1, decisions),),
            ).fetchall()
            lookup_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            index.in_force_at(conn, rng.choice(STATIONS), START + year * rng.random())
            at_ms.append((time.perf_counter() - started) * 1000)
    return PolicyFigures(decisions, searches, _p95(search_ms), _p95(at_ms), _p95(lookup_ms))
