"""MaintenanceHub's part of ``smart bench hub``: the recall over a 1,000,000-entry ledger, the due calendar.

- **Recall impact** (``recall_impact_s``): recording an out-of-tolerance
  calibration of one instrument, from the call to the impact reviews written
  (the uses index caught up, the jobs since its last good calibration listed,
  one review per job, the ledger entry), over a hub log of 1,000,000 entries
  of which a fifth are station decisions naming equipment. The ledger rows are
  written by COPY (not timed), then indexed once (``recall_index_s``, the
  catch-up a hub pays once; afterwards the index follows the log). Baseline
  (``recall_scan_baseline_s``): the same job list found by reading the log for
  the instrument's name, as a hub without the index would, in the same run.
- **Due calendar** (``due_calendar_p95_ms``): the ``/maintenance/calendar``
  page (30, 60 and 90 days in turn) over HTTP with a signed-in session (looked
  up as the hub does: the sessions role, over SMART-ID's pool), 10,000
  assets in the register; baseline (``due_calendar_baseline_p95_ms``) the plain
  ``SELECT`` of the same rows, in the same run.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from psycopg.conninfo import make_conninfo

from smart.access.roles import Role
from smart.access.verify import Verifier
from smart.hub.maintenance import schedule, web
from smart.hub.maintenance import store as maintenance
from smart.hub.maintenance.models import CalibrationIn, EquipmentIn
from smart.hub.service_log import ServiceNodeLog
from smart.keys import KeyStore
from smart.ledger import hub_store

#: The instrument whose recall is timed, and how many stations' instruments share the log with it.
INSTRUMENT = "UV-METER-B"
INSTRUMENTS = 1000
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Figures:
    ledger_entries: int
    recalled_jobs: int
    recall_impact_s: float
    recall_scan_baseline_s: float
    recall_index_s: float
    assets: int
    calendar_pages: int
    due_calendar_p95_ms: float
    due_calendar_baseline_p95_ms: float
    #: The page's own work (the due query and the template) without HTTP and the sign-in check.
    due_calendar_own_p95_ms: float

    def as_json(self) -> dict[str, Any]:
        return {
            "recall_impact_s": round(self.recall_impact_s, 4),
            "recall_scan_baseline_s": round(self.recall_scan_baseline_s, 3),
            "recall_index_s": round(self.recall_index_s, 2),
            "recall_ledger_entries": self.ledger_entries,
            "recalled_jobs": self.recalled_jobs,
            "due_calendar_p95_ms": round(self.due_calendar_p95_ms, 2),
            "due_calendar_baseline_p95_ms": round(self.due_calendar_baseline_p95_ms, 2),
            "due_calendar_own_p95_ms": round(self.due_calendar_own_p95_ms, 2),
            "calendar_assets": self.assets,
            "calendar_pages": self.calendar_pages,
        }


def _p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[94]


def _entry(seq: int, node: str, at: datetime, kind: str, subject: str, data: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {
            "actor": "op-7",
            "contract": None,
            "data": data,
            "kind": kind,
            "node": node,
            "node_seq": seq,
            "prev": "0" * 64,
            "subject": subject,
            "ts": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        },
        option=orjson.OPT_SORT_KEYS,
    )


def _ledger(owner_url: str, entries: int) -> int:
    """``entries`` hub-log rows by COPY: every fifth a station decision naming equipment; how many jobs
    used :data:`INSTRUMENT` after its last good calibration (day 100)."""
    stations = ("pt-1", "mt-1", "ut-1", "ht-1", "cp-1")
    seqs = dict.fromkeys(stations, 0)
    served: set[str] = set()
    step = timedelta(days=200) / max(1, entries)
    with psycopg.connect(owner_url, autocommit=True) as conn, conn.cursor() as cur:
        with cur.copy("COPY ledger_entries (idx, node, node_seq, entry) FROM STDIN") as copy:
            for idx in range(entries):
                station = stations[idx % len(stations)]
                seq = seqs[station]
                seqs[station] = seq + 1
                at = T0 + step * idx
                if idx % 5 == 0:
                    job = f"J-{idx // 50}"
                    instrument = INSTRUMENT if (idx // 5) % 50 == 0 else f"EQ-{(idx // 5) % INSTRUMENTS}"
                    data = {
                        "verb": "start",
                        "module": "maintenance",
                        "outcome": "allow",
                        "event": {"at": at.isoformat(), "job": job, "equipment": [instrument, "TAM-1"]},
                    }
                    raw = _entry(seq, station, at, "module.decision", job, data)
                    if instrument == INSTRUMENT and at >= T0 + timedelta(days=100):
                        served.add(job)
                else:
                    raw = _entry(
                        seq, station, at, "record.check", "uv-a", {"passed": True, "value": idx % 997}
                    )
                copy.write_row((idx, station, seq, raw))
        conn.execute(
            "INSERT INTO ledger_checkpoints (size, root, note, frontier) VALUES (%s, %s, 'bench', %s)",
            (entries, b"\0" * 32, b""),
        )
        conn.execute("ANALYZE ledger_entries")
    return len(served)


def _scan(owner_url: str, since: datetime, until: datetime) -> list[str]:
    """The job list as a hub without the index finds it: every entry naming the instrument, read."""
    mark = f'"{INSTRUMENT}"'.encode()
    jobs: dict[str, datetime] = {}
    with psycopg.connect(owner_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT entry FROM ledger_entries WHERE position(%s::bytea in entry) > 0 ORDER BY idx", (mark,)
        )
        for (raw,) in rows:
            event = orjson.loads(bytes(raw))["data"].get("event") or {}
            at = datetime.fromisoformat(event["at"])
            if since <= at <= until and INSTRUMENT in event.get("equipment", ()):
                jobs.setdefault(event["job"], at)
    return sorted(jobs, key=lambda j: jobs[j])


def _assets(owner_url: str, count: int) -> None:
    """``count`` assets over five stations, due dates spread over a year (SQL, not timed)."""
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO maintenance.equipment (asset_id, kind, station, serial, calibration_due, added_by, "
            "added_at) SELECT 'AS-' || lpad(i::text, 6, '0'), 'light-meter', 'pt-1', 'S' || i, "
            "current_date + (i %% 365) - 20, 'bench', now() FROM generate_series(1, %s) AS i",
            (count,),
        )
        conn.execute("ANALYZE maintenance.equipment")


async def _calendar(
    hub: maintenance.MaintenanceHub, owner_url: str, pages: int, secrets_dir: Path
) -> tuple[list[float], list[float], list[float]]:
    from smart.hub.database_roles import ensure_sessions_role
    from smart.hub.vault.logins import Logins
    from smart.hub.web import auth
    from smart.hub.web.app import create_app
    from smart.runtime import ports
    from smart.runtime.floor import FloorStatus
    from smart.runtime.up import serve_web

    async def no_floor() -> FloorStatus:
        return FloorStatus(healthy=True, services=[], checked_at=time.time())

    sessions_url = await asyncio.to_thread(ensure_sessions_role, owner_url, secrets_dir)
    logins = await asyncio.to_thread(Logins, owner_url, sessions_url=sessions_url)
    password = secrets.token_urlsafe(16)
    await asyncio.to_thread(logins.add, "bench-qm", password, role=Role.QUALITY_MANAGER)
    guard = auth.Guard(logins)
    app = create_app(no_floor, routers=[auth.router(logins), web.page_router(hub, guard)])
    port = ports.free_port()
    server, task = await serve_web(app, "127.0.0.1", port)
    page_ms: list[float] = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as session:
            signed = await session.post("/login", data={"username": "bench-qm", "password": password})
            if signed.status_code != 303:
                raise RuntimeError(f"the bench could not sign in ({signed.status_code})")
            for n in range(pages):
                days = web.WINDOWS[n % len(web.WINDOWS)]
                started = time.perf_counter()
                answer = await session.get(f"/maintenance/calendar?days={days}")
                page_ms.append((time.perf_counter() - started) * 1000)
                if answer.status_code != 200 or "calendar" not in answer.text:
                    raise RuntimeError(f"the calendar page answered {answer.status_code}")
    finally:
        server.should_exit = True
        await task
        logins.close()
    own_ms: list[float] = []
    template = auth.TEMPLATES.get_template("maintenance/calendar.html")
    for n in range(pages):
        days = web.WINDOWS[n % len(web.WINDOWS)]
        started = time.perf_counter()
        found, total = hub.due(days, limit=web.PAGE)
        template.render(
            page="calendar",
            login=None,
            due=found,
            days=days,
            windows=web.WINDOWS,
            today=T0.date(),
            total=total,
            offset=0,
            page_size=web.PAGE,
        )
        own_ms.append((time.perf_counter() - started) * 1000)
    baseline_ms: list[float] = []
    with psycopg.connect(owner_url, autocommit=True) as conn:
        for n in range(pages):
            days = web.WINDOWS[n % len(web.WINDOWS)]
            started = time.perf_counter()
            conn.execute(
                "SELECT asset_id, kind, station, calibration_due FROM maintenance.equipment "
                "WHERE calibration_due <= current_date + %s ORDER BY calibration_due LIMIT %s",
                (days, web.PAGE),
            ).fetchall()
            baseline_ms.append((time.perf_counter() - started) * 1000)
    return page_ms, own_ms, baseline_ms


def run(
    admin_url: str,
    *,
    work_dir: Path,
    ledger_entries: int = 1_000_000,
    assets: int = 10_000,
    pages: int = 300,
    progress: Callable[[str], None] = lambda line: None,
) -> Figures:
    name = f"bench_maintenance_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    owner_url = make_conninfo(admin_url, dbname=name)
    password = secrets.token_urlsafe(16)
    try:
        hub_store.migrate(owner_url, app_password=password)
        maintenance.migrate(owner_url)
        app_url = make_conninfo(owner_url, user=hub_store.APP_ROLE, password=password)
        progress(f"writing a {ledger_entries:,}-entry hub log by COPY …")
        expected = _ledger(owner_url, ledger_entries)

        async def nobody() -> Verifier:
            return Verifier(keys={}, revocations={})

        keys = KeyStore(work_dir / "keys")
        hub = maintenance.MaintenanceHub(
            app_url,
            ledger=ServiceNodeLog(work_dir / "ledger", keys, node=maintenance.NODE),
            schedule=schedule.Schedule(),
            stations=(),
            js=None,
            verifiers=nobody,
        )
        try:
            progress("indexing the stations' uses of equipment once …")
            started = time.perf_counter()
            hub.index_uses()
            index_s = time.perf_counter() - started
            meter = EquipmentIn(asset_id=INSTRUMENT, kind="light-meter", station="pt-1", serial="B-1")
            hub.register(meter, actor="bench")
            good = CalibrationIn(
                calibrated_at=T0 + timedelta(days=100),
                lab="Bench Lab",
                certificate_number="B-100",
                traceability="NIST (bench)",
                in_tolerance=True,
                next_due=(T0 + timedelta(days=280)).date(),
            )
            hub.record_calibration(INSTRUMENT, good, actor="bench")
            found = good.model_copy(
                update={
                    "calibrated_at": T0 + timedelta(days=201),
                    "in_tolerance": False,
                    "certificate_number": "B-201",
                }
            )
            progress("recording the instrument out of tolerance (the impact list) …")
            started = time.perf_counter()
            _, opened = hub.record_calibration(INSTRUMENT, found, actor="bench")
            impact_s = time.perf_counter() - started
            assert opened is not None
            if len(opened.reviews) != expected:
                raise RuntimeError(f"the recall listed {len(opened.reviews)} jobs, the log holds {expected}")
            progress("the same list by reading the log, as without the index …")
            started = time.perf_counter()
            scanned = _scan(owner_url, T0 + timedelta(days=100), T0 + timedelta(days=201))
            scan_s = time.perf_counter() - started
            if len(scanned) != expected:
                raise RuntimeError(f"the scan found {len(scanned)} jobs, the log holds {expected}")
            progress(f"{assets:,} assets; {pages} calendar pages, and the same plain SELECTs …")
            _assets(owner_url, assets)
            page_ms, own_ms, baseline_ms = asyncio.run(_calendar(hub, owner_url, pages, work_dir / "secrets"))
        finally:
            hub.close()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return Figures(
        ledger_entries=ledger_entries,
        recalled_jobs=expected,
        recall_impact_s=impact_s,
        recall_scan_baseline_s=scan_s,
        recall_index_s=index_s,
        assets=assets,
        calendar_pages=pages,
        due_calendar_p95_ms=_p95(page_ms),
        due_calendar_baseline_p95_ms=_p95(baseline_ms),
        due_calendar_own_p95_ms=_p95(own_ms),
    )
