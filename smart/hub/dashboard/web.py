"""The dashboard's pages: ``/`` (every panel, charts inline), ``/api/v1/dashboard`` and the lists it links to.

The page is server-rendered: each panel's rows are HTML, each chart's data is
JSON inline in the page, drawn by the vendored uPlot (``/static/vendor``). The
lists (``/dashboard/jobs``, ``/dashboard/checks``, ``/dashboard/readings``,
``/dashboard/people``, ``/dashboard/ledger``) show the records behind a
number, each with its place in the hub log where it has one. Reading the
dashboard needs ``audit.read`` (the read-only quality roles); the people list names people, so it needs
``people.read`` besides.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission
from smart.hub import log_index
from smart.hub.dashboard import index, panels
from smart.hub.dashboard.panels import Cell, Day, Panel, link
from smart.hub.vault.logins import Login
from smart.hub.web.auth import TEMPLATES, Guard

LIST_LIMIT = 500


class Dashboard:
    """The dashboard's connections (the Floor's app role; SMART-ID's tables when this hub holds them)."""

    def __init__(
        self,
        floor_url: str,
        *,
        vault_url: str | None = None,
        zone: ZoneInfo = ZoneInfo("UTC"),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.floor = ConnectionPool(floor_url, min_size=1, max_size=4, open=True, kwargs={"autocommit": True})
        self.vault_url = vault_url
        self._vault: ConnectionPool | None = None
        self.zone = zone
        #: What "today" is (a test's floor runs on a fixed clock, as its stations do).
        self.clock = clock
        self._indexes: list[asyncio.Task[None]] = []

    def vault(self) -> ConnectionPool | None:
        if self._vault is None and self.vault_url is not None:
            self._vault = ConnectionPool(
                self.vault_url, min_size=1, max_size=2, open=True, kwargs={"autocommit": True}
            )
        return self._vault

    def day(self, now: datetime | None = None) -> Day:
        return Day.of(now or self.clock(), self.zone)

    def start(self, floor_url: str) -> None:
        """Follow the hub log for the checks and the jobs' states (each index on its own connection)."""
        for kind in (index.CheckIndex, index.JobStateIndex):
            follower: log_index.LogIndex = kind.connect(floor_url)
            self._indexes.append(asyncio.create_task(follower.run(), name=f"dashboard-{kind.table}"))
        tally = index.YieldFollower.connect(floor_url)
        self._indexes.append(asyncio.create_task(tally.run(), name="dashboard-yield"))

    @contextlib.contextmanager
    def _vault_conn(self) -> Iterator[psycopg.Connection[Any] | None]:
        pool = self.vault()
        if pool is None:
            yield None
            return
        with pool.connection() as conn:
            yield conn

    def panels(self, day: Day | None = None) -> list[Panel]:
        """Every panel, each timed, in the page's order (people after the jobs and checks)."""
        day = day or self.day()
        with self.floor.connection() as conn:
            found = [panels.run(conn, query, day) for query in panels.FLOOR_PANELS]
        with self._vault_conn() as vault:
            found.insert(3, panels.run(vault, panels.PEOPLE_PANEL, day))
        return found

    def records(
        self, sql: str, params: tuple[Any, ...] | dict[str, Any] = (), *, vault: bool = False
    ) -> list[tuple[Any, ...]]:
        if vault:
            with self._vault_conn() as conn:
                if conn is None:
                    return []
                return conn.execute(sql, params).fetchall()
        with self.floor.connection() as conn:
            return conn.execute(sql, params).fetchall()

    async def stop(self) -> None:
        for task in self._indexes:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._indexes = []
        self.floor.close()
        if self._vault is not None:
            self._vault.close()

    def routers(self, guard: Guard) -> list[APIRouter]:
        return [router(self, guard)]


def _panel_json(panel: Panel) -> dict[str, Any]:
    return {
        "key": panel.key,
        "title": panel.title,
        "href": panel.href,
        "headers": list(panel.headers),
        "rows": [[{"text": c.text, "href": c.href} for c in row] for row in panel.rows],
        "charts": list(panel.charts),
        "unavailable": panel.unavailable,
        "queryMs": round(panel.query_ms, 2),
    }


def _list(
    request: Request,
    login: Login,
    page: str,
    headers: tuple[str, ...],
    rows: Sequence[tuple[Cell, ...]],
    back: str,
) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(
        request,
        "dashboard/records.html",
        {"page": page, "login": login, "headers": headers, "rows": rows, "back": back, "limit": LIST_LIMIT},
    )


def _entry(idx: int) -> Cell:
    return Cell(f"#{idx}", f"/dashboard/entries/{idx}")


def router(board: Dashboard, guard: Guard) -> APIRouter:
    routes = APIRouter()
    read = guard.requires(Permission.AUDIT_READ)
    people = guard.requires(Permission.PEOPLE_READ)

    @routes.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard(request: Request, login: Login = Depends(read)) -> HTMLResponse:
        found = await run_in_threadpool(board.panels)
        charts = [chart for panel in found for chart in panel.charts]
        return TEMPLATES.TemplateResponse(
            request,
            "dashboard/home.html",
            {
                "page": "Dashboard",
                "login": login,
                "panels": found,
                "charts_json": json.dumps(charts).replace("</", "<\\/"),
                "now": board.clock(),
            },
        )

    @routes.get("/api/v1/dashboard", dependencies=[Depends(read)])
    async def api() -> dict[str, Any]:
        found = await run_in_threadpool(board.panels)
        return {"panels": [_panel_json(p) for p in found]}

    @routes.get("/dashboard/jobs", response_class=HTMLResponse, include_in_schema=False)
    async def jobs(
        request: Request, login: Login = Depends(read), station: str = "", state: str = ""
    ) -> HTMLResponse:
        rows = await run_in_threadpool(
            board.records,
            "SELECT station, job, state, verb, at, ledger_idx FROM dashboard_jobs_now"
            " WHERE state <> 'handed-off' AND state = ANY(%(states)s)"
            " AND (%(station)s = '' OR station = %(station)s)"
            " AND (%(state)s = '' OR state = %(state)s) ORDER BY at DESC LIMIT %(limit)s",
            {"states": list(index.IN_PROGRESS), "station": station, "state": state, "limit": LIST_LIMIT},
        )
        shown = [
            (
                Cell(s),
                Cell(job, link("/compliance", job=job)),
                Cell(st),
                Cell(verb),
                Cell(_time(at)),
                _entry(idx),
            )
            for s, job, st, verb, at, idx in rows
        ]
        title = "Jobs in progress" + (f" at {station}" if station else "") + (f", {state}" if state else "")
        return _list(
            request, login, title, ("Station", "Job", "State", "Last move", "At", "Entry"), shown, "/"
        )

    @routes.get("/dashboard/checks", response_class=HTMLResponse, include_in_schema=False)
    async def checks(
        request: Request, login: Login = Depends(read), station: str = "", status: str = ""
    ) -> HTMLResponse:
        day = board.day()

        def ask() -> list[tuple[Cell, ...]]:
            with board.floor.connection() as conn:
                states = panels.check_status(conn, day)
                done = conn.execute(
                    "SELECT station, check_name, at, passed, equipment, ledger_idx FROM dashboard_checks"
                    " WHERE at >= %s AND at < %s ORDER BY at DESC",
                    (day.start - timedelta(days=panels.CHECK_LOOKBACK_DAYS), day.end),
                ).fetchall()
            shown: list[tuple[Cell, ...]] = []
            latest: set[tuple[str, str]] = set()
            for s, check, at, passed, equipment, idx in done:
                state = states.get((s, check))
                if (station and s != station) or (status and state != status) or (s, check) in latest:
                    continue
                latest.add((s, check))
                css = {"done": "good", "failed": "bad", "overdue": "bad"}.get(state or "")
                shown.append(
                    (
                        Cell(s),
                        Cell(check),
                        Cell(state or "", None, css),
                        Cell(_time(at)),
                        Cell("passed" if passed else "failed"),
                        Cell(equipment or ""),
                        _entry(idx),
                    )
                )
            return shown

        title = "Station checks" + (f" at {station}" if station else "") + (f": {status}" if status else "")
        return _list(
            request,
            login,
            title,
            ("Station", "Check", "Today", "Last done", "Result", "Equipment", "Entry"),
            await run_in_threadpool(ask),
            "/",
        )

    @routes.get("/dashboard/readings", response_class=HTMLResponse, include_in_schema=False)
    async def readings(
        request: Request, login: Login = Depends(read), station: str = "", characteristic: str = ""
    ) -> HTMLResponse:
        rows = await run_in_threadpool(
            board.records,
            "SELECT station, characteristic, value, unit, at, ledger_idx FROM dashboard_readings"
            " WHERE (%(station)s = '' OR station = %(station)s)"
            " AND (%(c)s = '' OR characteristic = %(c)s) ORDER BY at DESC, ledger_idx DESC LIMIT %(limit)s",
            {"station": station, "c": characteristic, "limit": LIST_LIMIT},
        )
        shown = [
            (Cell(s), Cell(c), Cell(f"{v:g} {u or ''}".strip()), Cell(_time(at)), _entry(idx))
            for s, c, v, u, at, idx in rows
        ]
        title = (
            "Readings"
            + (f": {characteristic}" if characteristic else "")
            + (f" at {station}" if station else "")
        )
        return _list(request, login, title, ("Station", "Characteristic", "Value", "At", "Entry"), shown, "/")

    @routes.get("/dashboard/people", response_class=HTMLResponse, include_in_schema=False)
    async def people_due(
        request: Request, login: Login = Depends(people), kind: str = "", within: int = 90
    ) -> HTMLResponse:
        day = board.day()

        def ask() -> list[tuple[Cell, ...]]:
            with board._vault_conn() as conn:
                if conn is None:
                    return []
                found = panels.falling_due(conn, day.today)
                names = dict(conn.execute("SELECT employee_id, name FROM vault.people").fetchall())
            low, high = (-(10**6), -1) if within == 0 else (max(0, within - 30), within - 1)
            return [
                (
                    Cell(d.employee_id, "/people"),
                    Cell(str(names.get(d.employee_id, "")), "/people"),
                    Cell(d.kind),
                    Cell(d.scope),
                    Cell(d.valid_until.isoformat(), None, "bad" if d.valid_until < day.today else "warn"),
                    Cell(d.basis),
                )
                for d in found
                if (not kind or d.kind == kind) and low <= (d.valid_until - day.today).days <= high
            ]

        window = "expired" if within == 0 else f"due in {max(0, within - 30)}–{within} days"
        return _list(
            request,
            login,
            f"People: {kind or 'credentials'} {window}",
            ("Employee", "Name", "Credential", "For", "Current until", "Why"),
            await run_in_threadpool(ask),
            "/",
        )

    @routes.get("/dashboard/ledger", response_class=HTMLResponse, include_in_schema=False)
    async def ledger(request: Request, login: Login = Depends(read)) -> HTMLResponse:
        def ask() -> list[tuple[Cell, ...]]:
            shown: list[tuple[Cell, ...]] = []
            for size, witness, line in board.records(
                "SELECT size, witness, line FROM ledger_cosignatures ORDER BY size DESC, witness LIMIT 20"
            ):
                shown.append(
                    (Cell("cosigned checkpoint"), Cell(f"{size:,} entries"), Cell(witness), Cell(line[:60]))
                )
            for name, registered, size in board.records(
                "SELECT r.name, min(r.registered_at), (SELECT max(c.size) FROM ledger_cosignatures c"
                " WHERE c.witness = r.name) FROM ledger_registrations r WHERE r.role = 'witness'"
                " GROUP BY r.name ORDER BY r.name"
            ):
                cosigned = f"last cosigned {size:,} entries" if size is not None else "not cosigned yet"
                shown.append((Cell("witness"), Cell(_time(registered)), Cell(name), Cell(cosigned)))
            for alarm, raised, node, seq, detail in board.records(
                "SELECT a.id, a.raised_at, a.node, a.node_seq, a.detail FROM ledger_alarms a"
                " WHERE NOT EXISTS (SELECT 1 FROM ledger_alarm_decisions d WHERE d.alarm_id = a.id)"
                " ORDER BY a.id DESC LIMIT 50"
            ):
                shown.append(
                    (
                        Cell(f"alarm {alarm}", None, "bad"),
                        Cell(_time(raised)),
                        Cell(f"{node} #{seq}"),
                        Cell(detail),
                    )
                )
            return shown

        return _list(
            request,
            login,
            "The ledger: cosigned checkpoints and open alarms",
            ("What", "Size / raised", "Witness / node", "Line / detail"),
            await run_in_threadpool(ask),
            "/",
        )

    @routes.get("/dashboard/entries/{idx}", response_class=HTMLResponse, include_in_schema=False)
    async def entry(request: Request, idx: int, login: Login = Depends(read)) -> HTMLResponse:
        """One hub-log entry as stored: the record a number on the dashboard was counted from."""
        found = await run_in_threadpool(
            board.records, "SELECT node, node_seq, entry FROM ledger_entries WHERE idx = %s", (idx,)
        )
        rows: list[tuple[Cell, ...]] = []
        for node, seq, raw in found:
            body = json.loads(bytes(raw))
            rows += [(Cell("node"), Cell(f"{node} #{seq}")), (Cell("kind"), Cell(str(body.get("kind"))))]
            rows += [
                (Cell("time"), Cell(_time(body.get("ts")))),
                (Cell("actor"), Cell(str(body.get("actor")))),
            ]
            rows.append((Cell("data"), Cell(json.dumps(body.get("data"), sort_keys=True)[:4000])))
        return _list(request, login, f"Hub log entry #{idx}", ("Field", "Value"), rows, "/")

    return routes


def _time(value: Any) -> str:
    from smart import style

    return style.shop_time(value, TEMPLATES.env.globals["shop_zone"])  # type: ignore[arg-type]
