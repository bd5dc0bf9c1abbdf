"""``smart bench dashboards``: the dashboard page and each panel's query on a 1,000,000-entry hub log.

The log holds six stations' history written by COPY (station checks with their
readings, jobs moving through their states, decisions with refusals, filler
records), and the indexes the dashboard reads are written with it, as a
rebuilt index would hold them (the bench times the questions, not the
indexing). Beside each figure a baseline from the same run: ``SELECT 1`` and a
bare ``count(*)`` of the log for the panels, ``/healthz`` on the same app and
session for the page.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from smart.access.roles import Role
from smart.hub import handoff_central, means
from smart.hub.compliance import index as compliance
from smart.hub.dashboard import index as dashboard_index
from smart.hub.dashboard import panels
from smart.hub.dashboard.web import Dashboard
from smart.hub.maintenance import store as maintenance
from smart.hub.vault import database as vault_database
from smart.ledger import hub_store
from smart.runtime.maintenance_bench import _entry

STATIONS = ("pt-1", "mt-1", "ut-1", "ht-1", "cp-1", "sr-1")
#: The bench's "now": the last entry of the history is an hour before it.
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
STATES = ("traveler-scanned", "gated", "in-process", "released", "handed-off")
RULES = ("pt-uv-a-intensity", "pt-dry-part-temperature", "mt-bath-concentration", "ppe-required")


@dataclass(frozen=True, slots=True)
class Figures:
    ledger_entries: int
    pages: int
    page_p95_ms: float
    page_baseline_p95_ms: float
    panel_ms: dict[str, float]
    panel_baseline_ms: float
    count_baseline_ms: float
    build_s: float
    #: ``/metrics`` of a station (p95), and an empty route of the same server in the same run.
    station_metrics_ms: float | None = None
    station_metrics_baseline_ms: float | None = None
    #: The machine's 1-minute load average after the panels and after the pages (a shared machine's
    #: figures mean little without it).
    load_average: tuple[float, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def panel_query_max_ms(self) -> float:
        return max(self.panel_ms.values()) if self.panel_ms else 0.0

    def as_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "page_p95_ms": round(self.page_p95_ms, 2),
            "page_baseline_p95_ms": round(self.page_baseline_p95_ms, 2),
            "panel_query_max_ms": round(self.panel_query_max_ms, 2),
            "panel_query_p95_ms": {k: round(v, 2) for k, v in self.panel_ms.items()},
            "panel_baseline_select1_ms": round(self.panel_baseline_ms, 3),
            "panel_baseline_count_ms": round(self.count_baseline_ms, 2),
            "ledger_entries": self.ledger_entries,
            "pages": self.pages,
            "build_s": round(self.build_s, 1),
            "load_average_1m": [round(x, 2) for x in self.load_average],
        }
        if self.station_metrics_ms is not None:
            shown["station_metrics_ms"] = round(self.station_metrics_ms, 3)
        if self.station_metrics_baseline_ms is not None:
            shown["station_metrics_baseline_ms"] = round(self.station_metrics_baseline_ms, 3)
        return shown


def _p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[94]


def _history(owner_url: str, entries: int) -> None:
    """``entries`` log rows over 90 days by COPY, six stations round robin, and the index rows they make.

    Per station, each run of 20 entries is one job: a daily check with its reading, the job's five
    moves, a decision (every third job's a refusal), its handoff, an NCR on every 25th job (closed
    unless it is one of the last), then filler. Every 50th job stops at ``released``: it is in progress.
    """
    seqs = dict.fromkeys(STATIONS, 0)
    start = NOW - timedelta(days=90)
    step = (timedelta(days=90) - timedelta(hours=1)) / max(1, entries)
    checks: list[tuple[Any, ...]] = []
    readings: list[tuple[Any, ...]] = []
    states: list[tuple[Any, ...]] = []
    refusals: list[tuple[Any, ...]] = []
    handoffs: list[tuple[Any, ...]] = []
    ncrs: list[tuple[Any, ...]] = []
    with psycopg.connect(owner_url, autocommit=True) as conn, conn.cursor() as cur:
        with cur.copy("COPY ledger_entries (idx, node, node_seq, entry) FROM STDIN") as copy:
            for idx in range(entries):
                station = STATIONS[idx % len(STATIONS)]
                seq = seqs[station]
                seqs[station] = seq + 1
                at = start + step * idx
                slot = (idx // len(STATIONS)) % 20
                number = idx // 120
                job = f"J-{number}-{station}"
                part, po = f"BRK-{number % 40}", f"PO-{number % 300}"
                in_progress = number % 50 == 0
                if slot == 0:  # a daily check with a reading
                    value = 1180 + (idx % 17) - 8
                    record = {
                        "check": "uv-a-intensity",
                        "at": at.isoformat(),
                        "passed": value > 1172,
                        "readings": {"uv-a-intensity": {"value": value, "unit": "µW/cm²"}},
                    }
                    raw = _entry(
                        seq, station, at, "record.check", "uv-a-intensity", {"kind": "check", "value": record}
                    )
                    checks.append((idx, station, "uv-a-intensity", at, value > 1172, None))
                    readings.append((idx, "uv-a-intensity", station, float(value), "µW/cm²", at))
                elif slot < 6 and not (in_progress and slot == 5):  # a job moving on
                    state = STATES[slot - 1]
                    data = {"verb": "move", "from": "", "to": state, "allowed": True, "at": at.isoformat()}
                    raw = _entry(seq, station, at, "job.transition", job, data)
                    states.append((idx, station, job, "move", state, True, at))
                elif slot == 6:  # a decision, every third a refusal
                    deny = number % 3 == 0
                    rule = RULES[(idx // 7) % len(RULES)]
                    reasons = [{"rule": rule, "severity": "deny", "message": "bench"}] if deny else []
                    data = {
                        "outcome": "deny" if deny else "allow",
                        "reasons": reasons,
                        "event": {"at": at.isoformat()},
                    }
                    raw = _entry(seq, station, at, "gate.decision", "J-bench", data)
                    if deny:
                        refusals.append(
                            (idx, 0, station, seq, at, "gate.decision", None, "deny", "deny", False, rule)
                        )
                elif slot == 7 and not in_progress:  # the job handed off
                    record = {"po": po, "line": "1", "part": part, "serials": [f"SN-{number}"]}
                    raw = _entry(seq, station, at, "job.handoff", job, {"record": record})
                    digest = hashlib.sha256(raw).digest()
                    serials = [f"SN-{number}"]
                    handoffs.append(
                        (
                            station,
                            job,
                            po,
                            "1",
                            part,
                            serials,
                            "op-7",
                            at,
                            at,
                            idx,
                            seq,
                            digest,
                            Jsonb(record),
                        )
                    )
                elif slot in (8, 9) and number % 25 == 0:  # an NCR on the job, then (mostly) closed
                    kind = "opened" if slot == 8 else "closed"
                    if kind == "closed" and number > entries // 120 - 200:
                        kind = "dispositioned"  # the last ones are still open
                    record = {"id": f"NCR-{number}-{station}", "job": job, "part": part}
                    raw = _entry(seq, station, at, f"qa.ncr.{kind}", job, {"ncr": record})
                    digest = hashlib.sha256(raw).digest()
                    ncrs.append(
                        (idx, station, record["id"], kind, job, part, None, Jsonb(record), at, seq, digest)
                    )
                else:
                    raw = _entry(
                        seq, station, at, "record.received", f"fact/{idx}", {"kind": "fact", "n": idx}
                    )
                copy.write_row((idx, station, seq, raw))
        # The index rows by COPY without the current-state triggers (one row at a time, they would take
        # minutes here), then the current state worked out from them at once, as on migration.
        conn.execute("SET session_replication_role = replica")
        for table, columns, rows in (
            (dashboard_index.CHECKS, "ledger_idx, station, check_name, at, passed, equipment", checks),
            (dashboard_index.READINGS, "ledger_idx, characteristic, station, value, unit, at", readings),
            (dashboard_index.JOB_STATES, "ledger_idx, station, job, verb, state, allowed, at", states),
            (
                compliance.DECISIONS,
                "ledger_idx, reason_no, station, node_seq, at, kind, module, outcome, severity, audit, rule",
                refusals,
            ),
            (
                handoff_central.TABLE,
                "station, job, po, line, part, serials, signed_by, released_at, handed_off_at, ledger_idx,"
                " node_seq, entry_hash, record",
                handoffs,
            ),
            (
                "qa.ncr_events",
                "ledger_idx, station, ncr, kind, job, part, serial, record, at, node_seq, entry_hash",
                ncrs,
            ),
        ):
            with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        conn.execute("RESET session_replication_role")
        dashboard_index.refill(conn)
        tally = dashboard_index.YieldFollower(conn)  # the first-pass yield tally, through its trigger
        while tally.index_once():
            pass
        conn.execute(
            "INSERT INTO ledger_checkpoints (size, root, note, frontier) VALUES (%s, %s, 'bench', %s)",
            (entries, b"\0" * 32, b""),
        )
        conn.execute(
            "INSERT INTO maintenance.equipment"
            " (asset_id, kind, station, serial, calibration_due, added_by, added_at)"
            " SELECT 'AS-' || i, 'light-meter', 'pt-1', 'S' || i, %s::date + (i %% 200) - 20, 'bench', now()"
            " FROM generate_series(1, 2000) AS i",
            (NOW.date(),),
        )
        for table in (
            "ledger_entries",
            dashboard_index.CHECKS,
            dashboard_index.READINGS,
            dashboard_index.JOB_STATES,
            compliance.DECISIONS,
            handoff_central.TABLE,
            "qa.ncr_events",
            dashboard_index.JOBS_NOW,
            dashboard_index.CHARACTERISTICS,
            dashboard_index.YIELD_EVENTS,
            dashboard_index.YIELD_JOBS,
            dashboard_index.YIELD,
            "maintenance.equipment",
        ):
            conn.execute(f"ANALYZE {table}")


async def _pages(board: Dashboard, owner_url: str, pages: int) -> tuple[list[float], list[float]]:
    from smart.hub.vault.logins import Logins
    from smart.hub.web import auth
    from smart.hub.web.app import create_app
    from smart.runtime import ports
    from smart.runtime.floor import FloorStatus
    from smart.runtime.up import serve_web

    async def no_floor() -> FloorStatus:
        return FloorStatus(healthy=True, services=[], checked_at=time.time())

    logins = await asyncio.to_thread(Logins, owner_url)
    password = secrets.token_urlsafe(16)
    await asyncio.to_thread(logins.add, "bench-qm", password, role=Role.QUALITY_MANAGER)
    guard = auth.Guard(logins)
    app = create_app(no_floor, routers=[auth.router(logins), *board.routers(guard)], logins=logins)
    port = ports.free_port()
    server, task = await serve_web(app, "127.0.0.1", port)
    page_ms: list[float] = []
    baseline_ms: list[float] = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as session:
            signed = await session.post("/login", data={"username": "bench-qm", "password": password})
            if signed.status_code != 303:
                raise RuntimeError(f"the bench could not sign in ({signed.status_code})")
            for _ in range(pages):
                started = time.perf_counter()
                answer = await session.get("/")
                page_ms.append((time.perf_counter() - started) * 1000)
                if answer.status_code != 200 or 'id="panel-spc"' not in answer.text:
                    raise RuntimeError(f"the dashboard answered {answer.status_code}")
                started = time.perf_counter()
                await session.get("/healthz")
                baseline_ms.append((time.perf_counter() - started) * 1000)
    finally:
        server.should_exit = True
        await task
    return page_ms, baseline_ms


def run(
    admin_url: str,
    *,
    ledger_entries: int = 1_000_000,
    pages: int = 100,
    rounds: int = 20,
    progress: Callable[[str], None] = lambda line: None,
) -> Figures:
    name = f"bench_dashboards_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    owner_url = make_conninfo(admin_url, dbname=name)
    password = secrets.token_urlsafe(16)
    try:
        started = time.perf_counter()
        hub_store.migrate(owner_url, app_password=password)
        for migrate in (
            compliance.migrate,
            handoff_central.migrate,
            means.migrate,
            maintenance.migrate,
            dashboard_index.migrate,
        ):
            migrate(owner_url)
        vault_database.migrate(owner_url)
        app_url = make_conninfo(owner_url, user=hub_store.APP_ROLE, password=password)
        progress(f"writing a {ledger_entries:,}-entry hub log of {len(STATIONS)} stations by COPY …")
        _history(owner_url, ledger_entries)
        build_s = time.perf_counter() - started
        board = Dashboard(app_url, vault_url=owner_url, zone=ZoneInfo("UTC"), clock=lambda: NOW)
        try:
            day = board.day()
            progress(f"each panel's query {rounds} times, and the baselines …")
            panel_ms: dict[str, float] = {}
            select1: list[float] = []
            counted: list[float] = []
            with board.floor.connection() as conn:
                for query in panels.FLOOR_PANELS:
                    took = [panels.run(conn, query, day) for _ in range(rounds)]
                    if took[0].unavailable:
                        raise RuntimeError(f"panel {query[0]}: {took[0].unavailable}")
                    panel_ms[query[0]] = _p95([p.query_ms for p in took])
                for _ in range(rounds):
                    t = time.perf_counter()
                    conn.execute("SELECT 1").fetchone()
                    select1.append((time.perf_counter() - t) * 1000)
                    t = time.perf_counter()
                    conn.execute("SELECT count(*) FROM ledger_entries").fetchone()
                    counted.append((time.perf_counter() - t) * 1000)
            with board._vault_conn() as vault:
                took = [panels.run(vault, panels.PEOPLE_PANEL, day) for _ in range(rounds)]
                panel_ms["people"] = _p95([p.query_ms for p in took])
            load = [os.getloadavg()[0]]
            progress(f"{pages} dashboard pages over HTTP, each beside /healthz …")
            page_ms, baseline_ms = asyncio.run(_pages(board, owner_url, pages))
            load.append(os.getloadavg()[0])
        finally:
            asyncio.run(board.stop())
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return Figures(
        ledger_entries=ledger_entries,
        pages=pages,
        page_p95_ms=_p95(page_ms),
        page_baseline_p95_ms=_p95(baseline_ms),
        panel_ms=panel_ms,
        panel_baseline_ms=_p95(select1),
        count_baseline_ms=_p95(counted),
        build_s=build_s,
        load_average=tuple(load),
    )


def run_on_temporary_floor(progress: Callable[[str], None], **options: Any) -> Figures:
    """Start a temporary PostgreSQL (no NATS: the dashboard reads the database only) and run."""
    from smart.runtime.background import temporary_floor

    with temporary_floor(progress, prefix="smart-bench-dashboards-pg-", nats_servers=False) as (floor, _):
        return run(floor.floor.database_url("postgres"), progress=progress, **options)
