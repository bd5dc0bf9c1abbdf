"""Education's page (``/education``) and API (``/api/v1/education/…``): courses, sessions, completions,
who is due."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission
from smart.hub.education.service import Education
from smart.hub.vault.logins import Login
from smart.hub.vault.smartid import VaultError
from smart.hub.web import form_pages
from smart.hub.web.auth import Guard, form_fields


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
    api = APIRouter()
    reader = Depends(guard.requires(Permission.PEOPLE_READ))
    writer = Depends(guard.requires(Permission.RECORDS_WRITE))

    @api.get("/api/v1/education/courses")
    async def courses(login: Login = reader) -> list[dict[str, Any]]:
        return [
            {"course": c.course, "kind": c.kind.value, "title": c.title, "scope": dict(c.scope)}
            for c in school.courses.values()
        ]

    @api.get("/api/v1/education/sessions")
    async def sessions(login: Login = reader) -> list[dict[str, Any]]:
        return [dataclasses.asdict(s) for s in await run_in_threadpool(school.sessions)]

    @api.post("/api/v1/education/sessions", status_code=201)
    async def add_session(body: NewSession, login: Login = writer) -> dict[str, Any]:
        made = await form_pages.or_422(
            lambda: school.add_session(**body.model_dump(), actor=login.username), VaultError
        )
        return dataclasses.asdict(made)

    @api.post("/api/v1/education/completions", status_code=201)
    async def complete(body: Completion, login: Login = writer) -> dict[str, Any]:
        issued = await form_pages.or_422(
            lambda: school.complete(body.employee_id, course=body.course, on=body.on, actor=login.username),
            VaultError,
        )
        return {"granted": [c.credential_id for c in issued]}

    @api.get("/api/v1/education/due")
    async def due(within_days: int = 30, login: Login = reader) -> list[dict[str, Any]]:
        return [
            dataclasses.asdict(d)
            for d in await run_in_threadpool(lambda: school.due(within_days=within_days))
        ]

    async def holds() -> dict[str, Any]:
        return {
            "courses": list(school.courses.values()),
            "sessions": await run_in_threadpool(school.sessions),
            "due": await run_in_threadpool(lambda: school.due(within_days=30)),
        }

    shown = form_pages.FormPage("hubs/education.html", "Education", holds)

    @api.get("/education", response_class=HTMLResponse, include_in_schema=False)
    async def page(request: Request, login: Login = reader) -> HTMLResponse:
        return await shown.show(request, login)

    @api.post("/education/completions", response_class=HTMLResponse, include_in_schema=False)
    async def completed(request: Request, login: Login = writer) -> HTMLResponse:
        """A completion typed on the page; a bad field is named and nothing is recorded."""
        fields = await form_fields(request)
        try:
            on = date.fromisoformat(fields.get("on", ""))
        except ValueError:
            return await shown.refuse(
                request, login, f"on: {fields.get('on', '')!r} is not a date (YYYY-MM-DD)"
            )
        employee, course = fields.get("employee_id", "").strip(), fields.get("course", "")
        try:
            issued = await run_in_threadpool(
                lambda: school.complete(employee, course=course, on=on, actor=login.username)
            )
        except VaultError as err:
            return await shown.refuse(request, login, str(err))
        granted = ", ".join(c.credential_id for c in issued) or "no credential (nothing it makes current)"
        return await shown.show(request, login, done=f"{employee} completed {course}: granted {granted}")

    return api
