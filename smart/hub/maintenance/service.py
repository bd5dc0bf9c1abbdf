"""MaintenanceHub as a Floor-hub service: its store, its background pass, its pages, started from settings.

:class:`MaintenanceService` is what ``HubServices`` holds: the schema is
migrated as the owner, the store works as the app role on the
``maintenance-hub`` ledger node, credentials are verified against the
issuer keys and revocations SMART-ID publishes on the hub's NATS
(``access-keys``, ``access-revocations``), and the intervals come from the
settings' contracts folder (``contracts_dir``, absolute), never the process's working directory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import tzinfo
from pathlib import Path

from fastapi import APIRouter
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError

from smart.access import distribution
from smart.access.verify import Verifier
from smart.hub.maintenance import schedule, signers
from smart.hub.maintenance import store as maintenance_store
from smart.hub.maintenance import web as maintenance_web
from smart.hub.service_log import ServiceNodeLog
from smart.hub.web.auth import Guard
from smart.keys import KeyStore


def kv_verifiers(js: JetStreamContext) -> signers.VerifierSource:
    """Issuer keys and revocations as SMART-ID published them, read at each signature (fail closed)."""

    async def current() -> Verifier:
        try:
            return await distribution.station_verifier(js)
        except BucketNotFoundError:
            return Verifier(keys={}, revocations={})  # nothing published: no credential verifies

    return current


class MaintenanceService:
    def __init__(
        self,
        app_url: str,
        *,
        keys: KeyStore,
        ledger_dir: Path,
        stations: Sequence[str],
        js: JetStreamContext,
        contracts: Path,
        zone: tzinfo,
    ) -> None:
        self.hub = maintenance_store.MaintenanceHub(
            app_url,
            ledger=ServiceNodeLog(ledger_dir, keys, node=maintenance_store.NODE),
            schedule=schedule.Schedule.of_folder(contracts),
            stations=stations,
            js=js,
            verifiers=kv_verifiers(js),
            zone=zone,
        )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.hub.run(), name="maintenance-hub")

    def routers(self, guard: Guard) -> list[APIRouter]:
        return [maintenance_web.router(self.hub, guard), maintenance_web.page_router(self.hub, guard)]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.hub.close()
