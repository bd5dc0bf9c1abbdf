"""Feedback's API: ``POST /api/v1/feedback`` (``orders.write``), a complaint answered with its reference."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission
from smart.hub.feedback.service import Feedback, FeedbackError
from smart.hub.vault.logins import Login
from smart.hub.web.auth import Guard


class Said(BaseModel):
    model_config = ConfigDict(extra="forbid")
    po: str = Field(min_length=1)
    line: str | None = None
    kind: Literal["feedback", "complaint"]
    text: str = Field(min_length=1, max_length=4000)


def router(desk: Feedback, guard: Guard) -> APIRouter:
    api = APIRouter(prefix="/api/v1/feedback")
    writer = Depends(guard.requires(Permission.ORDERS_WRITE))

    @api.post("", status_code=201)
    async def receive(body: Said, login: Login = writer) -> dict[str, Any]:
        try:
            kept = await run_in_threadpool(lambda: desk.receive(**body.model_dump(), actor=login.username))
        except FeedbackError as err:
            raise HTTPException(status_code=422, detail=str(err)) from err
        return dataclasses.asdict(kept)

    return api
