"""SafetyCentral on the Floor hub: the incident index running, its page and ``/api/v1``.

Reading incidents needs ``records.read``; completing one (cause, action) needs ``records.write``
(the Level 3s and the quality manager, who act as the shop's safety leads). A report goes to the
hub's ``safety-central`` ledger node first (:class:`~smart.hub.service_log.ServiceNodeLog`).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission
from smart.hub.safety import incidents
from smart.hub.service_log import ServiceNodeLog
from smart.hub.vault.logins import Login
from smart.hub.web.auth import TEMPLATES, Guard, form_fields
from smart.keys import KeyStore

NODE = "safety-central"


class ReportIn(BaseModel):
    """A safety lead's completion of an incident (the edge: JSON or the page's form)."""

    cause: str = Field(min_length=1, max_length=2000)
    action: str = Field(min_length=1, max_length=2000)


class SafetyCentral:
    def __init__(
        self, owner_url: str, app_url: str, *, ledger_dir: Path, keys: KeyStore, migrate: bool = True
    ) -> None:
        self.owner_url = owner_url
        self.migrate = migrate
        self.app_url = app_url
        self.ledger = ServiceNodeLog(ledger_dir, keys, node=NODE)
        self.index: incidents.IncidentIndex | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.migrate:  # else migrated by the owner beforehand (HubServices.prepare)
            await asyncio.to_thread(incidents.migrate, self.owner_url)
        self.index = await asyncio.to_thread(incidents.IncidentIndex.connect, self.app_url)
        self.task = asyncio.create_task(self.index.run(), name="safety-incidents")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.index is not None:
            self.index.close()

    def router(self, guard: Guard) -> APIRouter:
        routes = APIRouter()
        read = guard.requires(Permission.RECORDS_READ)
        write = guard.requires(Permission.RECORDS_WRITE)
        url = self.app_url

        def _list(station: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            with psycopg.connect(url, autocommit=True) as conn:
                return [i.json() for i in incidents.incidents(conn, station=station)], incidents.trends(conn)

        def _report(incident: int, body: ReportIn, by: str) -> dict[str, Any]:
            with psycopg.connect(url, autocommit=True) as conn:
                return incidents.report(
                    conn, self.ledger, incident=incident, cause=body.cause, action=body.action, by=by
                ).json()

        @routes.get("/safety", response_class=HTMLResponse, include_in_schema=False)
        async def safety_page(
            request: Request, station: str | None = None, login: Login = Depends(read)
        ) -> HTMLResponse:
            """Incidents newest first, each with its report or a form to complete it; trends per station."""
            found, trend = await run_in_threadpool(_list, station or None)
            return TEMPLATES.TemplateResponse(
                request,
                "compliance/safety.html",
                {"page": "SafetyCentral", "login": login, "incidents": found, "trends": trend},
            )

        @routes.post("/safety/incidents/{incident}/report", include_in_schema=False)
        async def report_form(request: Request, incident: int, login: Login = Depends(write)) -> Any:
            fields = await form_fields(request)
            try:
                body = ReportIn(cause=fields.get("cause", ""), action=fields.get("action", ""))
                await run_in_threadpool(_report, incident, body, login.username)
            except (ValueError, incidents.ReportError) as err:
                found, trend = await run_in_threadpool(_list, None)
                return TEMPLATES.TemplateResponse(
                    request,
                    "compliance/safety.html",
                    {
                        "page": "SafetyCentral",
                        "login": login,
                        "incidents": found,
                        "trends": trend,
                        "error": str(err).splitlines()[0],
                    },
                    status_code=400,
                )
            return RedirectResponse("/safety", status_code=303)

        @routes.get("/api/v1/safety/incidents")
        async def incidents_api(station: str | None = None, login: Login = Depends(read)) -> dict[str, Any]:
            found, trend = await run_in_threadpool(_list, station)
            return {"incidents": found, "trends": trend}

        @routes.post("/api/v1/safety/incidents/{incident}/report")
        async def report_api(incident: int, body: ReportIn, login: Login = Depends(write)) -> dict[str, Any]:
            try:
                return await run_in_threadpool(_report, incident, body, login.username)
            except incidents.ReportError as err:
                raise HTTPException(status_code=400, detail=str(err)) from err

        return routes
