"""PeopleOps' page (``/peopleops``) and API: the hires and each one's onboarding checklist per station
(``people.read``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission
from smart.hub.peopleops.onboarding import PeopleOps
from smart.hub.vault.logins import Login
from smart.hub.vault.smartid import VaultError
from smart.hub.web.auth import TEMPLATES, Guard


def router(people: PeopleOps, guard: Guard) -> APIRouter:
    api = APIRouter()
    reader = Depends(guard.requires(Permission.PEOPLE_READ))

    @api.get("/api/v1/peopleops/{employee_id}/onboarding")
    async def onboarding(employee_id: str, login: Login = reader) -> dict[str, Any]:
        try:
            found = await run_in_threadpool(people.checklist, employee_id)
        except VaultError as err:
            raise HTTPException(status_code=404, detail=str(err)) from err
        return {station: [dataclasses.asdict(i) for i in items] for station, items in found.items()}

    @api.get("/peopleops", response_class=HTMLResponse, include_in_schema=False)
    async def page(request: Request, employee: str = "", login: Login = reader) -> HTMLResponse:
        """The hires; with ``?employee=`` that hire's checklist (an unknown one is named, 404)."""
        context: dict[str, Any] = {
            "page": "PeopleOps",
            "login": login,
            "hires": await run_in_threadpool(people.hires),
            "employee": employee,
            "checklist": {},
        }
        status = 200
        if employee:
            try:
                context["checklist"] = await run_in_threadpool(people.checklist, employee)
            except VaultError as err:
                context.update(employee="", error=str(err))
                status = 404
        return TEMPLATES.TemplateResponse(request, "hubs/peopleops.html", context, status_code=status)

    return api
