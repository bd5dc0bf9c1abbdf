"""Growth's API: ``GET /api/v1/growth`` (``orders.read``), the figures per client and process."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission
from smart.hub.growth.figures import figures
from smart.hub.published import feed
from smart.hub.vault.logins import Login
from smart.hub.web.auth import Guard


def router(url: str, guard: Guard) -> APIRouter:
    api = APIRouter(prefix="/api/v1/growth")
    reader = Depends(guard.requires(Permission.ORDERS_READ))

    @api.get("")
    async def growth(login: Login = reader) -> list[dict[str, Any]]:
        found = await run_in_threadpool(lambda: figures(feed.records(url, "po-status")))
        return [dataclasses.asdict(f) for f in found]

    return api
