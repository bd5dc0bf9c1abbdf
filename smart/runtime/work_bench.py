"""``smart bench hub``: the work services' figures on this machine, each beside a baseline from the same run.

- **PO search**: ClientManager's search (PO or part prefix, soonest due
  first, joined to its PO) over 100,000 PO lines, p95 in ms; the baseline
  is a plain ``SELECT`` of the same rows (the same prefix on ``po_lines``
  alone, no join, no order), p95 in the same run.
- **Import**: a 10,000-line CSV (1,000 POs of 10 lines with a flowdown
  each) checked and written, in seconds, ledger entries included.
- **Release**: from asking to release a reviewed, routed line until the
  routed station (pt-1's leaf, its own JetStream domain) holds the PO line
  record in its mirror of ``station-records``; p99 in ms.
"""

from __future__ import annotations

import asyncio
import io
import random
import secrets
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import psycopg
from psycopg.conninfo import make_conninfo

from smart.hub import work
from smart.hub.clients import importing
from smart.hub.clients.models import Outcome, ReviewIn
from smart.hub.clients.store import ClientManager
from smart.hub.release.store import HandoffRelease
from smart.hub.service_log import CLIENT_MANAGER, HANDOFF_CENTRAL, TRAVELERS, ServiceNodeLog
from smart.hub.travelers.models import OperationIn, ProcedureIn, TravelerIn
from smart.hub.travelers.store import Travelers
from smart.keys import KeyStore
from smart.ledger import hub_store
from smart.node import records
from smart.runtime import maintenance_bench, policy_bench


@dataclass(frozen=True, slots=True)
class Figures:
    po_lines: int
    searches: int
    po_search_p95_ms: float
    baseline_p95_ms: float
    import_lines: int
    import_10k_s: float
    releases: int
    release_to_station_p99_ms: float
    #: ComplianceCentral's and PolicyCentral's figures (:mod:`smart.runtime.policy_bench`).
    policy: policy_bench.PolicyFigures | None = None

    #: MaintenanceHub's figures (recall impact, due calendar), measured in the same run.
    maintenance: maintenance_bench.Figures | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            **(self.policy.as_json() if self.policy is not None else {}),
            **(self.maintenance.as_json() if self.maintenance is not None else {}),
            "po_search_p95_ms": round(self.po_search_p95_ms, 2),
            "baseline_p95_ms": round(self.baseline_p95_ms, 2),
            "import_10k_s": round(self.import_10k_s, 2),
            "release_to_station_p99_ms": round(self.release_to_station_p99_ms, 2),
            "po_lines": self.po_lines,
            "searches": self.searches,
            "import_lines": self.import_lines,
            "releases": self.releases,
        }


def _quantile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def _seed(owner_url: str, lines: int) -> None:
    """``lines`` PO lines (10 per PO) with a flowdown each, written by SQL (not timed)."""
    pos = max(1, lines // 10)
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO clients.clients (code, name, retention, nadcap_required, added_by) "
            "VALUES ('BENCH', 'Bench client', '10 years', false, 'bench')"
        )
        conn.execute(
            "INSERT INTO clients.purchase_orders (po, client, received_on, added_by) "
            "SELECT 'PO-' || lpad(i::text, 6, '0'), 'BENCH', date '2026-01-01' + (i %% 300), 'bench' "
            "FROM generate_series(1, %s) AS i",
            (pos,),
        )
        conn.execute(
            "INSERT INTO clients.po_lines (po, line, part, part_revision, "
            "quantity, unit, lot, unit_price, due_date) "
            "SELECT 'PO-' || lpad(p::text, 6, '0'), l::text, 'P-' || "
            "lpad(((p * 7 + l) %% 5000)::text, 5, '0'), "
            "'A', 10, 'ea', 'LOT-' || p, 12.5, date '2026-02-01' + ((p + l) %% 400) "
            "FROM generate_series(1, %s) AS p, generate_series(1, 10) AS l",
            (pos,),
        )
        conn.execute(
            "INSERT INTO clients.flowdowns (po, line, position, spec, "
            "spec_revision, class, acceptance_criteria, "
            "nadcap_required, retention) SELECT po, line, 0, 'ASTM "
            "E1417', '21', 'I', 'none over 1/16 in', false, "
            "'10 years' FROM clients.po_lines"
        )
        conn.execute("ANALYZE")


def _csv(lines: int) -> bytes:
    out = io.StringIO()
    out.write(",".join(importing.COLUMNS[importing.What.LINES]) + "\n")
    for n in range(lines):
        po, line = f"IMP-{n // 10:05d}", str(n % 10 + 1)
        out.write(
            f"{po},BENCH,2026-03-01,{line},BRK-{n % 500:03d},C,2,ea,S{n}-1;S{n}-2,,42.50,"
            f"2026-06-{n % 28 + 1:02d},"
            "ASTM E1417-21,21,Type-I,no linear indication over 1/16 in,no,\n"
        )
    return out.getvalue().encode()


def run(
    admin_url: str,
    *,
    hub_nats: str,
    hub_signin: Mapping[str, str],
    station_nats: str,
    work_dir: Path,
    po_lines: int = 100_000,
    searches: int = 300,
    import_lines: int = 10_000,
    releases: int = 100,
    decisions: int = 1_000_000,
    ledger_entries: int = 1_000_000,
    assets: int = 10_000,
    calendar_pages: int = 300,
    progress: Callable[[str], None] = lambda line: None,
) -> Figures:
    name = f"bench_hub_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    owner_url = make_conninfo(admin_url, dbname=name)
    password = secrets.token_urlsafe(16)
    try:
        hub_store.migrate(owner_url, app_password=password)
        work.migrate(owner_url)
        app_url = make_conninfo(owner_url, user=hub_store.APP_ROLE, password=password)
        progress(f"seeding {po_lines:,} PO lines …")
        _seed(owner_url, po_lines)
        keys = KeyStore(work_dir / "keys")
        ledger_dir = work_dir / "ledger"
        clients = ClientManager(app_url, ledger=ServiceNodeLog(ledger_dir, keys, node=CLIENT_MANAGER))
        travelers = Travelers(
            app_url, ledger=ServiceNodeLog(ledger_dir, keys, node=TRAVELERS), stations=("pt-1", "sr-1")
        )
        try:
            search_ms, baseline_ms = _searches(clients, owner_url, po_lines, searches, progress)
            progress(f"importing a {import_lines:,}-line CSV …")
            raw = _csv(import_lines)
            started = time.perf_counter()
            checked = importing.run(
                raw,
                fmt=importing.Format.CSV,
                what=importing.What.LINES,
                clients=clients,
                actor="bench",
                source="bench.csv",
                dry_run=False,
            )
            import_s = time.perf_counter() - started
            if not checked.ok:
                raise RuntimeError(f"the bench's own CSV was refused: {checked.problems[:3]}")
            progress(f"releasing {releases} lines to pt-1 …")
            release_ms = asyncio.run(
                _releases(
                    clients,
                    travelers,
                    app_url,
                    ledger_dir,
                    keys,
                    hub_nats,
                    hub_signin,
                    station_nats,
                    releases,
                )
            )
            policy = policy_bench.measure(
                owner_url, decisions=decisions, searches=searches, progress=progress
            )
        finally:
            clients.close()
            travelers.close()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    maintenance = maintenance_bench.run(
        admin_url,
        work_dir=work_dir / "maintenance",
        ledger_entries=ledger_entries,
        assets=assets,
        pages=calendar_pages,
        progress=progress,
    )
    return Figures(
        po_lines=po_lines,
        searches=searches,
        po_search_p95_ms=_quantile(search_ms, 0.95),
        baseline_p95_ms=_quantile(baseline_ms, 0.95),
        import_lines=import_lines,
        import_10k_s=import_s * 10_000 / import_lines,
        releases=releases,
        release_to_station_p99_ms=_quantile(release_ms, 0.99),
        policy=policy,
        maintenance=maintenance,
    )


def _searches(
    clients: ClientManager, owner_url: str, po_lines: int, searches: int, progress: Callable[[str], None]
) -> tuple[list[float], list[float]]:
    progress(f"{searches} PO searches, and the same plain SELECTs …")
    rng = random.Random(17)
    pos = max(1, po_lines // 10)
    prefixes = [
        f"PO-{rng.randrange(1, pos + 1):06d}"[: rng.choice((7, 8, 9))]
        if i % 2
        else f"P-{rng.randrange(5000):05d}"[:5]
        for i in range(searches)
    ]
    search_ms: list[float] = []
    for prefix in prefixes:
        started = time.perf_counter()
        clients.search(prefix, limit=50)
        search_ms.append((time.perf_counter() - started) * 1000)
    baseline_ms: list[float] = []
    with psycopg.connect(owner_url, autocommit=True) as conn:
        for prefix in prefixes:
            started = time.perf_counter()
            conn.execute(
                "SELECT * FROM clients.po_lines WHERE po LIKE %s OR part LIKE %s LIMIT 50",
                (prefix + "%", prefix + "%"),
            ).fetchall()
            baseline_ms.append((time.perf_counter() - started) * 1000)
    return search_ms, baseline_ms


async def _releases(
    clients: ClientManager,
    travelers: Travelers,
    app_url: str,
    ledger_dir: Path,
    keys: KeyStore,
    hub_nats: str,
    hub_signin: Mapping[str, str],
    station_nats: str,
    count: int,
) -> list[float]:
    from smart.bus.mirror import mirror_bucket

    travelers.approve_procedure(
        ProcedureIn(id="PT-PROC-12", revision="D", method="PT", approved_by="l3-1", validated=True),
        actor="bench",
    )
    route = TravelerIn(
        operations=(
            OperationIn.model_validate(
                {
                    "station": "pt-1",
                    "process": "penetrant",
                    "procedure": "PT-PROC-12",
                    "procedure_revision": "D",
                    "spec": "ASTM E1417",
                    "class": "I",
                    "acceptance_criteria": "none over 1/16 in",
                }
            ),
        )
    )
    hub = await nats.connect(hub_nats, **hub_signin)
    station = await nats.connect(station_nats)
    try:
        js = hub.jetstream()
        await records.ensure_records_bucket(js)
        mirrored = await mirror_bucket(station.jetstream(), records.RECORDS_BUCKET)
        release = HandoffRelease(
            app_url,
            clients=clients,
            travelers=travelers,
            js=js,
            ledger=ServiceNodeLog(ledger_dir, keys, node=HANDOFF_CENTRAL),
        )
        timings: list[float] = []
        for n in range(count):
            po, line = f"PO-{n + 1:06d}", "1"
            await asyncio.to_thread(travelers.save, po, line, route, actor="bench")
            accepted = ReviewIn(outcome=Outcome.ACCEPTED)
            await asyncio.to_thread(clients.review, po, line, accepted, actor="bench")
            key = records.record_key("pt-1", "po-line", f"{po}/{line}")
            started = time.perf_counter()
            releasing = asyncio.create_task(release.release(po, line, actor="bench"))
            deadline = started + 60
            while True:  # the clock stops when pt-1 holds the record, whatever the hub still books
                try:
                    if (await mirrored.get(key)).value:
                        break
                except nats.js.errors.KeyNotFoundError:
                    pass
                if releasing.done() and releasing.exception() is not None:
                    await releasing
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{key} never reached pt-1's mirror")
                await asyncio.sleep(0.001)
            elapsed = time.perf_counter() - started
            await releasing
            timings.append(elapsed * 1000)
        release.close()
        return timings
    finally:
        await station.close()
        await hub.close()


def run_on_temporary_floor(progress: Callable[[str], None], **sizes: Any) -> Figures:
    """Start PostgreSQL, a hub nats-server and pt-1's leaf in a temporary directory, and run."""
    from smart.runtime.background import temporary_floor

    with temporary_floor(progress, prefix="smart-bench-hub-") as (floor, tmp):
        leaf = floor.floor.leaves["pt-1"]
        return run(
            floor.floor.database_url("postgres"),
            hub_nats=floor.hub_url,
            hub_signin=floor.settings.hub_nats_signin(),
            station_nats=leaf.url,
            work_dir=tmp / "work",
            progress=progress,
            **sizes,
        )
