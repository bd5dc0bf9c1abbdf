"""HubQuery's page (``/ask``) and API (``POST /api/v1/hubquery``), behind sign-in (``orders.read``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission
from smart.hub.hubquery.answers import HubQuery
from smart.hub.vault.logins import Login
from smart.hub.web.auth import TEMPLATES, Guard, form_fields


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=300)


def router(query: HubQuery, guard: Guard) -> APIRouter:
    api = APIRouter()
    reader = Depends(guard.requires(Permission.ORDERS_READ))

    async def _ask(text: str) -> dict[str, Any]:
        try:
            answer = await run_in_threadpool(query.ask, text)
        except ValueError as err:
            raise HTTPException(status_code=422, detail=str(err)) from err
        return dataclasses.asdict(answer)

    @api.post("/api/v1/hubquery")
    async def ask(body: Question, login: Login = reader) -> dict[str, Any]:
        return await _ask(body.question)

    @api.get("/ask", response_class=HTMLResponse)
    async def page(request: Request, login: Login = reader) -> HTMLResponse:
        return TEMPLATES.TemplateResponse(request, "hubs/ask.html", {"page": "Hey SMART", "answer": None})

    @api.post("/ask", response_class=HTMLResponse)
    async def asked(request: Request, login: Login = reader) -> HTMLResponse:
        answer = await _ask((await form_fields(request)).get("question", ""))
        return TEMPLATES.TemplateResponse(request, "hubs/ask.html", {"page": "Hey SMART", "answer": answer})

    return api
