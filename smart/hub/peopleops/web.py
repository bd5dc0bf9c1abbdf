"""PeopleOps' API: a hire's onboarding checklist per station (``people.read``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission
from smart.hub.peopleops.onboarding import PeopleOps
from smart.hub.vault.logins import Login
from smart.hub.vault.smartid import VaultError
from smart.hub.web.auth import Guard


def router(people: PeopleOps, guard: Guard) -> APIRouter:
    api = APIRouter(prefix="/api/v1/peopleops")
    reader = Depends(guard.requires(Permission.PEOPLE_READ))

    @api.get("/{employee_id}/onboarding")
    async def onboarding(employee_id: str, login: Login = reader) -> dict[str, Any]:
        try:
            found = await run_in_threadpool(people.checklist, employee_id)
        except VaultError as err:
            raise HTTPException(status_code=404, detail=str(err)) from err
        return {station: [dataclasses.asdict(i) for i in items] for station, items in found.items()}

    return api
