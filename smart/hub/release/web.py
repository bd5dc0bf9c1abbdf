"""HandoffCentral's release and job view in ``/api/v1``, and the hub's PO pages (list, one PO with its lines).

The PO page shows each line with its flowdowns, contract reviews, traveler
and release, and the job across stations. Its forms review a line and
release it; they are drawn only for a login whose role may do so, and the
server checks the role again on every post (a quality manager reviews and
releases; an operator may look but not act).
"""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission, allows
from smart.hub.clients.models import Outcome, ReviewIn
from smart.hub.clients.store import ClientManager, Refused
from smart.hub.clients.web import refused
from smart.hub.release import job_view
from smart.hub.release.store import HandoffRelease, Released
from smart.hub.travelers.store import Travelers
from smart.hub.vault.logins import Login
from smart.hub.web.auth import TEMPLATES, Guard, form_fields


def _job(
    url: str, clients: ClientManager, travelers: Travelers, po: str, line: str
) -> job_view.JobView | None:
    held = clients.line(po, line)
    if held is None:
        return None
    traveler = travelers.released(po, line) or travelers.latest(po, line)  # the floor follows the released
    with psycopg.connect(url, autocommit=True) as conn:
        return job_view.job_view(conn, po=po, line=line, serials=held.serials, traveler=traveler)


def router(
    url: str, guard: Guard, *, clients: ClientManager, travelers: Travelers, release: HandoffRelease
) -> APIRouter:
    routes = APIRouter()
    read = guard.requires(Permission.ORDERS_READ)
    may_release = guard.requires(Permission.ORDERS_RELEASE)
    may_review = guard.requires(Permission.ORDERS_REVIEW)

    @routes.post("/api/v1/pos/{po}/lines/{line}/release", tags=["HandoffCentral"])
    async def release_line(po: str, line: str, login: Login = Depends(may_release)) -> Released:
        """Release the reviewed line: its records go to exactly the stations its traveler routes to."""
        try:
            return await release.release(po, line, actor=login.username)
        except Refused as err:
            raise refused(err) from err

    @routes.get(
        "/api/v1/pos/{po}/lines/{line}/releases", tags=["HandoffCentral"], dependencies=[Depends(read)]
    )
    async def line_releases(po: str, line: str) -> list[Released]:
        found: list[Released] = await run_in_threadpool(release.releases, po, line)
        return found

    @routes.get("/api/v1/pos/{po}/lines/{line}/job", tags=["HandoffCentral"], dependencies=[Depends(read)])
    async def line_job(po: str, line: str) -> job_view.JobView:
        """The line's job across stations, serial by serial, from the stations' own entries."""
        found = await run_in_threadpool(_job, url, clients, travelers, po, line)
        if found is None:
            raise HTTPException(status_code=404, detail=f"PO {po} has no line {line}")
        return found

    # -- pages ----------------------------------------------------------------------------------

    @routes.get("/pos", response_class=HTMLResponse, include_in_schema=False)
    async def pos_page(request: Request, q: str = "", login: Login = Depends(read)) -> HTMLResponse:
        found = await run_in_threadpool(clients.search, q.strip(), limit=200)
        return TEMPLATES.TemplateResponse(
            request, "work/pos.html", {"page": "Purchase orders", "login": login, "lines": found, "q": q}
        )

    async def _po_page(request: Request, po: str, login: Login, *, error: str | None = None) -> HTMLResponse:
        order = await run_in_threadpool(clients.po, po)
        if order is None:
            raise HTTPException(status_code=404, detail=f"no PO {po}")
        lines: list[dict[str, Any]] = []
        for held in order.lines:
            lines.append(
                {
                    "line": held,
                    "traveler": await run_in_threadpool(travelers.latest, po, held.line),
                    "revisions": await run_in_threadpool(travelers.revisions, po, held.line),
                    "job": await run_in_threadpool(_job, url, clients, travelers, po, held.line),
                }
            )
        return TEMPLATES.TemplateResponse(
            request,
            "work/po.html",
            {
                "page": f"PO {po}",
                "login": login,
                "order": order,
                "lines": lines,
                "error": error,
                "may_review": allows(login.role, Permission.ORDERS_REVIEW),
                "may_release": allows(login.role, Permission.ORDERS_RELEASE),
                "may_write": allows(login.role, Permission.ORDERS_WRITE),
            },
            status_code=422 if error else 200,
        )

    @routes.get("/clients", response_class=HTMLResponse, include_in_schema=False)
    async def clients_page(request: Request, login: Login = Depends(read)) -> HTMLResponse:
        found = await run_in_threadpool(clients.clients)
        return TEMPLATES.TemplateResponse(
            request, "work/clients.html", {"page": "Clients", "login": login, "clients": found}
        )

    @routes.get("/pos/{po}", response_class=HTMLResponse, include_in_schema=False)
    async def po_page(request: Request, po: str, login: Login = Depends(read)) -> HTMLResponse:
        return await _po_page(request, po, login)

    @routes.post("/pos/{po}/lines/{line}/review", include_in_schema=False)
    async def review_form(
        request: Request, po: str, line: str, login: Login = Depends(may_review)
    ) -> Response:
        fields = await form_fields(request)
        try:
            body = ReviewIn(outcome=Outcome(fields.get("outcome", "")), notes=fields.get("notes", ""))
            await run_in_threadpool(clients.review, po, line, body, actor=login.username)
        except ValueError as err:  # a bad outcome, or Refused
            return await _po_page(request, po, login, error=str(err))
        return RedirectResponse(f"/pos/{po}", status_code=303)

    @routes.post("/pos/{po}/lines/{line}/release", include_in_schema=False)
    async def release_form(
        po: str, line: str, request: Request, login: Login = Depends(may_release)
    ) -> Response:
        try:
            await release.release(po, line, actor=login.username)
        except Refused as err:
            return await _po_page(request, po, login, error=str(err))
        return RedirectResponse(f"/pos/{po}", status_code=303)

    return routes
