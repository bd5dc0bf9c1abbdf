"""Feedback's page (``/feedback``) and API (``POST /api/v1/feedback``, ``orders.write``): a complaint answered
with its reference."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission
from smart.hub.feedback.service import Feedback, FeedbackError
from smart.hub.vault.logins import Login
from smart.hub.web import form_pages
from smart.hub.web.auth import Guard, form_fields


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
        kept = await form_pages.or_422(
            lambda: desk.receive(**body.model_dump(), actor=login.username), FeedbackError
        )
        return dataclasses.asdict(kept)

    async def holds() -> dict[str, Any]:
        return {"entries": await run_in_threadpool(desk.entries)}

    shown = form_pages.FormPage("hubs/feedback.html", "Feedback", holds)

    @api.get("/feedback", response_class=HTMLResponse, include_in_schema=False)
    async def page(request: Request, login: Login = reader) -> HTMLResponse:
        return await shown.show(request, login)

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
            return await shown.refuse(request, login, f"{where}: {first['msg']}")
        except FeedbackError as err:
            return await shown.refuse(request, login, str(err))
        capa = " (a CAPA is requested)" if kept.ledger_seq is not None else ""
        return await shown.show(request, login, done=f"received as {kept.reference}{capa}")

    return api
