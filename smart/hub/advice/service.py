"""AI Central running on the hub: the analysis issued every quarter of an hour, and its pages.

Registered as the Floor's ``ai-central`` service (:data:`smart.hub.services.ROLE_SERVICES`): it
reads the hub log, which the Floor holds. ``smart advice run`` issues the same way on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from zoneinfo import ZoneInfo

import structlog
from fastapi import APIRouter

from smart.hub.advice import web
from smart.hub.advice.central import AI_CENTRAL, AiCentral
from smart.hub.service_log import ServiceNodeLog
from smart.hub.web.auth import Guard
from smart.keys import KeyStore

log = structlog.get_logger("smart.hub.advice")

#: How often the hub issues advice (a trend is read over days: no need to run more often).
EVERY_S = 900.0


def central(
    url: str, *, ledger_dir: Path, keys: KeyStore, zone: ZoneInfo, vault_url: str | None = None
) -> AiCentral:
    """AI Central over the hub database at ``url``, issuing on its node in ``ledger_dir``."""
    return AiCentral(url, ServiceNodeLog(ledger_dir, keys, node=AI_CENTRAL), zone=zone, vault_url=vault_url)


class AdviceService:
    """The periodic run and the pages; a failed run is logged and the next one tries again."""

    def __init__(self, advice: AiCentral, *, every_s: float = EVERY_S) -> None:
        self.advice = advice
        self.every_s = every_s
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="ai-central")

    async def _run(self) -> None:
        while True:
            try:
                done = await asyncio.to_thread(self.advice.run)
                log.info(
                    "advice.run", findings=len(done.advice), issued=done.issued_now, unread=list(done.unread)
                )
            except Exception as err:  # advice is never a reason for the hub to stop: said, and tried again
                log.warning("advice.run_failed", error=f"{type(err).__name__}: {err}"[:300])
            await asyncio.sleep(self.every_s)

    def routers(self, guard: Guard) -> list[APIRouter]:
        return [web.router(self.advice, guard)]

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
