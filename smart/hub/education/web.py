"""Education's API (``/api/v1/education/…``): courses, sessions, completions, who is due."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission
from smart.hub.education.service import Education
from smart.hub.vault.logins import Login
from smart.hub.vault.smartid import VaultError
from smart.hub.web.auth import Guard


class NewSession(BaseModel):
    model_config = ConfigDict(extra="forbid")
    course: str
    starts_on: date
    place: str = Field(min_length=1)
    seats: int = Field(ge=1)


class Completion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    employee_id: str = Field(min_length=1)
    course: str
    on: date


def router(school: Education, guard: Guard) -> APIRouter:
    api = APIRouter(prefix="/api/v1/education")
    reader = Depends(guard.requires(Permission.PEOPLE_READ))
    writer = Depends(guard.requires(Permission.RECORDS_WRITE))

    @api.get("/courses")
    async def courses(login: Login = reader) -> list[dict[str, Any]]:
        return [
            {"course": c.course, "kind": c.kind.value, "title": c.title, "scope": dict(c.scope)}
            for c in school.courses.values()
        ]

    @api.get("/sessions")
    async def sessions(login: Login = reader) -> list[dict[str, Any]]:
        return [dataclasses.asdict(s) for s in await run_in_threadpool(school.sessions)]

    @api.post("/sessions", status_code=201)
    async def add_session(body: NewSession, login: Login = writer) -> dict[str, Any]:
        try:
            made = await run_in_threadpool(
                lambda: school.add_session(**body.model_dump(), actor=login.username)
            )
        except VaultError as err:
            raise HTTPException(status_code=422, detail=str(err)) from err
        return dataclasses.asdict(made)

    @api.post("/completions", status_code=201)
    async def complete(body: Completion, login: Login = writer) -> dict[str, Any]:
        try:
            issued = await run_in_threadpool(
                lambda: school.complete(
                    body.employee_id, course=body.course, on=body.on, actor=login.username
                )
            )
        except VaultError as err:
            raise HTTPException(status_code=422, detail=str(err)) from err
        return {"granted": [c.credential_id for c in issued]}

    @api.get("/due")
    async def due(within_days: int = 30, login: Login = reader) -> list[dict[str, Any]]:
        return [
            dataclasses.asdict(d)
            for d in await run_in_threadpool(lambda: school.due(within_days=within_days))
        ]

    return api
