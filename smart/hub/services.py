"""The hub services the embedded floor runs in its own process: the ledger intake and gathering.

The intake takes the stations' shipped batches; the gathering takes the hub
services' own node logs (SMART-ID, ``smart apply``, the operator) from
``<state_dir>/ledger/``, so their entries are in the same verifiable log.
HandoffCentral indexes the job records stations handed off, from that log.

On Kubernetes these run in the hub Deployment; on one machine ``smart up``
starts them after the servers are healthy. The ledger tables are migrated
as the database owner; the intake then works as the app role, which may
only INSERT and SELECT.
"""

from __future__ import annotations

import asyncio
import contextlib

import nats
from fastapi import APIRouter
from nats.aio.client import Client as NatsClient
from psycopg.conninfo import make_conninfo

from smart.hub import handoff_central, reorders
from smart.hub.gathering import HubNodeGathering
from smart.hub.intake import LedgerIntake, register_stations
from smart.hub.vault import publish as vault_publish
from smart.hub.vault import service as vault
from smart.hub.vault.logins import Logins
from smart.hub.vault.smartid import SmartId
from smart.hub.web import auth, people
from smart.keys import KeyStore
from smart.ledger import hub_store
from smart.ledger.hub_store import HubLog
from smart.ledger.trust import ADMIN_KEY
from smart.runtime.floor import Floor
from smart.runtime.secrets import secret


class HubServices:
    def __init__(self, floor: Floor) -> None:
        self.floor = floor
        self.settings = floor.settings
        self.hub_log: HubLog | None = None
        self.connection: NatsClient | None = None
        self.intake: LedgerIntake | None = None
        self._task: asyncio.Task[None] | None = None
        self.gathering_log: HubLog | None = None
        self.smartid: SmartId | None = None
        self.logins: Logins | None = None
        self._gathering: asyncio.Task[None] | None = None
        self.handoffs: handoff_central.HandoffCentral | None = None
        self._handoffs: asyncio.Task[None] | None = None
        self.reorders: reorders.ReorderBoard | None = None
        self._reorders: asyncio.Task[None] | None = None

    def app_database_url(self) -> str:
        password = secret(self.floor.layout.secrets / "ledger-app.password")
        return make_conninfo(self.floor.database_url(), user=hub_store.APP_ROLE, password=password)

    async def start(self) -> None:
        owner_url = self.floor.database_url()
        password = secret(self.floor.layout.secrets / "ledger-app.password")
        await asyncio.to_thread(hub_store.migrate, owner_url, app_password=password)
        await asyncio.to_thread(handoff_central.migrate, owner_url)
        await asyncio.to_thread(reorders.migrate, owner_url)
        keys = KeyStore(self.settings.key_directory)
        # Under `smart up` this machine is the administrator's: it holds (makes) the ledger-admin key,
        # which establishes the stations' keys; the hub services only read its public half.
        admin = keys.signing_key(ADMIN_KEY).verifying
        self.hub_log = await asyncio.to_thread(
            HubLog.connect,
            self.app_database_url(),
            key=keys.signing_key(hub_store.HUB_KEY),
            admin=admin,
        )
        stations = list(self.floor.leaves)
        await asyncio.to_thread(register_stations, self.hub_log, keys, stations)
        assert self.floor.hub is not None
        self.connection = await nats.connect(
            self.floor.hub.url, name="smart-hub-services", max_reconnect_attempts=-1, reconnect_time_wait=0.25
        )
        self.intake = LedgerIntake(self.connection, self.hub_log, stations=stations)
        self._task = asyncio.create_task(self.intake.run(), name="ledger-intake")
        # A connection of its own: the gathering runs in a worker thread beside the intake.
        self.gathering_log = await asyncio.to_thread(
            HubLog.connect,
            self.app_database_url(),
            key=keys.signing_key(hub_store.HUB_KEY),
            admin=admin,
        )
        gathering = HubNodeGathering(self.settings.state_dir / "ledger", self.gathering_log, keys)
        self._gathering = asyncio.create_task(self._gather(gathering), name="hub-node-gathering")
        self.handoffs = await asyncio.to_thread(
            handoff_central.HandoffCentral.connect, self.app_database_url()
        )
        self._handoffs = asyncio.create_task(self.handoffs.run(), name="handoff-central")
        self.reorders = await asyncio.to_thread(reorders.ReorderBoard.connect, self.app_database_url())
        self._reorders = asyncio.create_task(self.reorders.run(), name="reorder-board")
        self.logins = await asyncio.to_thread(Logins, self.floor.database_url())
        self.smartid = await asyncio.to_thread(
            SmartId,
            self.floor.database_url(),
            key=keys.signing_key(vault.CREDENTIAL_KEY),
            ledger=vault.SharedNodeLog(self.settings.state_dir / "ledger", keys),
            zone=self.settings.shop_zone,
        )

    def routers(self) -> list[APIRouter]:
        """SMART-ID's sign-in, people and credentials pages, HandoffCentral's jobs, the reorder board."""
        assert self.smartid is not None and self.logins is not None and self.floor.hub is not None
        publish = vault_publish.publisher(self.smartid, self.floor.hub.url, list(self.floor.leaves))
        guard = auth.Guard(self.logins)
        return [
            auth.router(self.logins),
            people.router(self.smartid, guard, publish=publish),
            handoff_central.router(self.app_database_url(), guard),
            reorders.router(self.app_database_url(), guard),
        ]

    async def _gather(self, gathering: HubNodeGathering, every_s: float = 2.0) -> None:
        while True:
            await asyncio.to_thread(gathering.gather_once)
            await asyncio.sleep(every_s)

    async def stop(self) -> None:
        for task in (self._reorders, self._handoffs, self._gathering, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.handoffs is not None:
            self.handoffs.close()
        if self.reorders is not None:
            self.reorders.close()
        if self.gathering_log is not None:
            self.gathering_log.close()
        if self.intake is not None:
            self.intake.close()
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.close()
        if self.hub_log is not None:
            self.hub_log.close()
