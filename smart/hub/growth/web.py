"""Growth's page (``/growth``) and API (``GET /api/v1/growth``, ``orders.read``): figures per client
and process."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission
from smart.hub.growth.figures import figures
from smart.hub.published import feed
from smart.hub.vault.logins import Login
from smart.hub.web.auth import TEMPLATES, Guard


def router(url: str, guard: Guard) -> APIRouter:
    api = APIRouter()
    reader = Depends(guard.requires(Permission.ORDERS_READ))

    @api.get("/api/v1/growth")
    async def growth(login: Login = reader) -> list[dict[str, Any]]:
        found = await run_in_threadpool(lambda: figures(feed.records(url, "po-status")))
        return [dataclasses.asdict(f) for f in found]

    @api.get("/growth", response_class=HTMLResponse, include_in_schema=False)
    async def page(request: Request, login: Login = reader) -> HTMLResponse:
        found = await run_in_threadpool(lambda: figures(feed.records(url, "po-status")))
        return TEMPLATES.TemplateResponse(
            request, "hubs/growth.html", {"page": "Growth", "login": login, "figures": found}
        )

    return api
