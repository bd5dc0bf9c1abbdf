"""Projects (Floor hub): each PO's milestones, derived from the ledger, against its due dates; what is late.

A milestone is reached when the stations' own entries say so, never when
someone ticks a box: **received** when the receiving station allowed a
receipt of a line of the PO, **in process** when a station on a route
handed off a job of it, **inspected** when every line's inspection and
processing operations (every routed station but the shipping one) handed
off, **shipped** when every line was allowed out at shipping, and
**invoiced** when Pay's ``invoice.issued`` entries have named every line
of the PO. A PO is late when a line's due date has passed and the line has
not shipped, or when a milestone the planner committed it to
(:mod:`smart.hub.projects.store`) is past its date and not reached.

Projects' own schema (``projects``) holds the planned milestone dates and
the index of Pay's invoices from the log; it reads ClientManager's lines,
the travelers, and HandoffCentral's indexes of the log besides, all of
which can be rebuilt from the ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission
from smart.hub import handoff_central
from smart.hub.clients.models import Notes
from smart.hub.clients.store import Refused
from smart.hub.clients.web import refused
from smart.hub.projects.store import MILESTONES, MilestonePlan, Projects, invoiced_at, plans
from smart.hub.release.store import floor_events
from smart.hub.vault.logins import Login
from smart.hub.web.auth import TEMPLATES, Guard

SHIPPING_PROCESSES = frozenset({"shipping", "receiving", "shipping-receiving"})


@dataclass(frozen=True, slots=True)
class Milestone:
    name: str
    reached_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "reachedAt": self.reached_at.isoformat() if self.reached_at else None}


@dataclass(frozen=True, slots=True)
class PoProgress:
    po: str
    client: str
    due: date
    lines: int
    milestones: tuple[Milestone, ...]
    late_lines: tuple[str, ...]
    plans: tuple[MilestonePlan, ...] = ()
    late_milestones: tuple[str, ...] = ()

    @property
    def late(self) -> bool:
        return bool(self.late_lines or self.late_milestones)

    def to_json(self) -> dict[str, Any]:
        return {
            "po": self.po,
            "client": self.client,
            "due": self.due.isoformat(),
            "lines": self.lines,
            "milestones": [m.to_json() for m in self.milestones],
            "late": self.late,
            "lateLines": list(self.late_lines),
            "plans": [p.to_json() for p in self.plans],
            "lateMilestones": list(self.late_milestones),
        }


def _latest(values: list[datetime | None]) -> datetime | None:
    """When the last of ``values`` was reached, or ``None`` while any is not."""
    if not values or any(v is None for v in values):
        return None
    return max(v for v in values if v is not None)


def progress(conn: psycopg.Connection[Any], po: str, *, today: date) -> PoProgress | None:
    order = conn.execute("SELECT po, client FROM clients.purchase_orders WHERE po = %s", (po,)).fetchone()
    if order is None:
        return None
    lines = conn.execute(
        "SELECT line, due_date FROM clients.po_lines WHERE po = %s ORDER BY line", (po,)
    ).fetchall()
    events = floor_events(conn, po=po)
    received = [e.at for e in events if e.verb == "receive"]
    in_process: list[datetime] = []
    inspected: list[datetime | None] = []
    shipped: list[datetime | None] = []
    invoiced: list[datetime | None] = []
    late: list[str] = []
    for line, due in lines:
        route = conn.execute(
            "SELECT operations FROM travelers.travelers WHERE po = %s AND line = %s AND status = 'released' "
            "ORDER BY revision DESC LIMIT 1",
            (po, line),
        ).fetchone()
        operations = route[0] if route else []
        handed = handoff_central.for_line(conn, po, line)
        in_process.extend(h.handed_off_at for h in handed)
        work_stations = {op["station"] for op in operations if op["process"] not in SHIPPING_PROCESSES}
        at_station = [
            min((h.handed_off_at for h in handed if h.station == s), default=None) for s in work_stations
        ]
        inspected.append(_latest(at_station) if work_stations else None)
        out = [e.at for e in events if e.verb == "ship" and e.line == line]
        shipped.append(min(out) if out else None)
        if not out and due < today:
            late.append(line)
        invoiced.append(invoiced_at(conn, po, line))
    reached = (
        min(received, default=None),
        min(in_process, default=None),
        _latest(inspected),
        _latest(shipped),
        _latest(invoiced),
    )
    planned = plans(conn, po)
    overdue = tuple(
        name
        for name, at in zip(MILESTONES, reached, strict=True)
        if at is None and name in planned and planned[name].due_on < today
    )
    return PoProgress(
        po=po,
        client=order[1],
        due=min((due for _, due in lines), default=today),
        lines=len(lines),
        milestones=tuple(Milestone(name, at) for name, at in zip(MILESTONES, reached, strict=True)),
        late_lines=tuple(late),
        plans=tuple(planned[name] for name in MILESTONES if name in planned),
        late_milestones=overdue,
    )


def board(
    conn: psycopg.Connection[Any], *, today: date, late_only: bool = False, limit: int = 200
) -> list[PoProgress]:
    """Every PO's progress, soonest due first (or only the late ones)."""
    rows = conn.execute(
        "SELECT po FROM clients.po_lines GROUP BY po ORDER BY min(due_date), po LIMIT %s", (limit,)
    ).fetchall()
    found = [p for p in (progress(conn, row[0], today=today) for row in rows) if p is not None]
    return [p for p in found if p.late] if late_only else found


class PlanIn(BaseModel):
    """A planned date for one milestone of a PO; moving a planned date needs its reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    due_on: date
    reason: Notes = ""


def router(
    url: str, guard: Guard, *, store: Projects | None = None, today: Callable[[], date] | None = None
) -> APIRouter:
    """``/api/v1/projects`` (every PO's milestones, ``?late=true`` for the late ones) and ``/projects``."""
    routes = APIRouter()
    read = guard.requires(Permission.ORDERS_READ)
    write = guard.requires(Permission.ORDERS_WRITE)
    day = today or (lambda: datetime.now(UTC).date())

    def _board(late_only: bool) -> list[PoProgress]:
        with psycopg.connect(url, autocommit=True) as conn:
            return board(conn, today=day(), late_only=late_only)

    @routes.get("/api/v1/projects", tags=["Projects"], dependencies=[Depends(read)])
    async def projects_api(late: bool = False) -> list[PoProgress]:
        """Each PO's milestones (received, in process, inspected, shipped, invoiced), due date, late lines."""
        found: list[PoProgress] = await run_in_threadpool(_board, late)
        return found

    if store is not None:

        @routes.put("/api/v1/projects/{po}/milestones/{milestone}", tags=["Projects"])
        async def plan_milestone(
            po: str, milestone: str, body: PlanIn, login: Login = Depends(write)
        ) -> dict[str, Any]:
            """Commit the PO to reach the milestone by a date (on the ``projects`` ledger node)."""
            try:
                planned = await run_in_threadpool(
                    store.plan, po, milestone, body.due_on, actor=login.username, reason=body.reason
                )
            except Refused as err:
                raise refused(err) from err
            return planned.to_json()

    @routes.get("/projects", response_class=HTMLResponse, include_in_schema=False)
    async def projects_page(
        request: Request, late: bool = False, login: Login = Depends(read)
    ) -> HTMLResponse:
        found = await run_in_threadpool(_board, late)
        return TEMPLATES.TemplateResponse(
            request,
            "work/projects.html",
            {"page": "Projects", "login": login, "board": found, "milestones": MILESTONES, "late": late},
        )

    return routes
