"""Feedback's page (``/feedback``) and API (``POST /api/v1/feedback``, ``orders.write``): a complaint answered
with its reference."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission
from smart.hub.feedback.service import Feedback, FeedbackError
from smart.hub.vault.logins import Login
from smart.hub.web.auth import TEMPLATES, Guard, form_fields


class Said(BaseModel):
    model_config = ConfigDict(extra="forbid")
    po: str = Field(min_length=1)
    line: str | None = None
    kind: Literal["feedback", "complaint"]
    text: str = Field(min_length=1, max_length=4000)


def router(desk: Feedback, guard: Guard) -> APIRouter:
    api = APIRouter()
    reader = Depends(guard.requires(Permission.ORDERS_READ))
    writer = Depends(guard.requires(Permission.ORDERS_WRITE))

    @api.post("/api/v1/feedback", status_code=201)
    async def receive(body: Said, login: Login = writer) -> dict[str, Any]:
        try:
            kept = await run_in_threadpool(lambda: desk.receive(**body.model_dump(), actor=login.username))
        except FeedbackError as err:
            raise HTTPException(status_code=422, detail=str(err)) from err
        return dataclasses.asdict(kept)

    async def _page(
        request: Request, login: Login, *, done: str = "", error: str = "", status: int = 200
    ) -> HTMLResponse:
        context = {
            "page": "Feedback",
            "login": login,
            "entries": await run_in_threadpool(desk.entries),
            "done": done,
            "error": error,
        }
        return TEMPLATES.TemplateResponse(request, "hubs/feedback.html", context, status_code=status)

    @api.get("/feedback", response_class=HTMLResponse, include_in_schema=False)
    async def page(request: Request, login: Login = reader) -> HTMLResponse:
        return await _page(request, login)

    @api.post("/feedback", response_class=HTMLResponse, include_in_schema=False)
    async def said(request: Request, login: Login = writer) -> HTMLResponse:
        """Feedback typed on the page; a bad field is named and nothing is kept."""
        fields = await form_fields(request)
        try:
            body = Said(
                po=fields.get("po", "").strip(),
                line=fields.get("line", "").strip() or None,
                kind=fields.get("kind", ""),  # validated by the model
                text=fields.get("text", ""),
            )
            kept = await run_in_threadpool(lambda: desk.receive(**body.model_dump(), actor=login.username))
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            return await _page(request, login, error=f"{where}: {first['msg']}", status=422)
        except FeedbackError as err:
            return await _page(request, login, error=str(err), status=422)
        capa = " (a CAPA is requested)" if kept.ledger_seq is not None else ""
        return await _page(request, login, done=f"received as {kept.reference}{capa}")

    return api
