"""Travelers' REST API under ``/api/v1``: approved procedure revisions, templates, each line's traveler."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission
from smart.hub.clients.store import Refused
from smart.hub.clients.web import refused
from smart.hub.travelers.models import (
    ProcedureIn,
    ProcedureView,
    TemplateIn,
    TemplateView,
    TravelerIn,
    TravelerView,
)
from smart.hub.travelers.store import Travelers
from smart.hub.vault.logins import Login
from smart.hub.web.auth import Guard


def router(travelers: Travelers, guard: Guard) -> APIRouter:
    routes = APIRouter(prefix="/api/v1", tags=["Travelers"])
    read = guard.requires(Permission.ORDERS_READ)
    write = guard.requires(Permission.ORDERS_WRITE)

    async def _do(call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await run_in_threadpool(call, *args, **kwargs)
        except Refused as err:
            raise refused(err) from err

    @routes.get("/procedures", dependencies=[Depends(read)])
    async def list_procedures() -> list[ProcedureView]:
        found: list[ProcedureView] = await run_in_threadpool(travelers.procedures)
        return found

    @routes.post("/procedures", status_code=201)
    async def approve_procedure(body: ProcedureIn, login: Login = Depends(write)) -> ProcedureView:
        """Record an approved procedure revision (it becomes the current one)."""
        approved: ProcedureView = await _do(travelers.approve_procedure, body, actor=login.username)
        return approved

    @routes.put("/templates/{name}")
    async def save_template(name: str, body: TemplateIn, login: Login = Depends(write)) -> TemplateView:
        if body.name != name:
            raise HTTPException(
                status_code=422, detail=[{"field": "name", "message": f"the body is {body.name}"}]
            )
        saved: TemplateView = await _do(travelers.add_template, body, actor=login.username)
        return saved

    @routes.get("/pos/{po}/lines/{line}/traveler", dependencies=[Depends(read)])
    async def show_traveler(po: str, line: str) -> TravelerView:
        found = await run_in_threadpool(travelers.latest, po, line)
        if found is None:
            raise HTTPException(status_code=404, detail=f"PO {po} line {line} has no traveler")
        return found

    @routes.get("/pos/{po}/lines/{line}/traveler/revisions", dependencies=[Depends(read)])
    async def traveler_revisions(po: str, line: str) -> list[TravelerView]:
        found: list[TravelerView] = await run_in_threadpool(travelers.revisions, po, line)
        return found

    @routes.put("/pos/{po}/lines/{line}/traveler")
    async def save_traveler(
        po: str, line: str, body: TravelerIn, login: Login = Depends(write)
    ) -> TravelerView:
        """Write the line's draft traveler; after a release, a new revision (``reason`` required)."""
        saved: TravelerView = await _do(travelers.save, po, line, body, actor=login.username)
        return saved

    return routes
