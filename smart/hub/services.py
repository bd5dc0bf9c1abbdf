"""The hub services, built from settings alone: the ledger intake and gathering, SMART-ID, HandoffCentral, ….

The intake takes the stations' shipped batches; the gathering takes the hub
services' own node logs (SMART-ID, ``smart apply``, the operator) from
``<state_dir>/ledger/``, so their entries are in the same verifiable log.
HandoffCentral indexes the job records stations handed off, from that log.

On Kubernetes these run in the hub Deployment (``smart hub run``); on one
machine ``smart up`` starts them after its servers are healthy, the same
way: from the settings' database URL, hub NATS URL and credentials, keys and
secrets directories and stations, never from the embedded floor. The ledger
tables are migrated as the database owner; the intake then works as the app
role, which may only INSERT and SELECT.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import nats
import psycopg
from fastapi import APIRouter
from nats.aio.client import Client as NatsClient
from psycopg.conninfo import make_conninfo

from smart import settings as settings_
from smart.hub import handoff_central, reorders, work
from smart.hub.client_api import service as client_api_service
from smart.hub.gathering import HubNodeGathering, register_shipped_nodes
from smart.hub.intake import LedgerIntake, register_stations
from smart.hub.vault import publish as vault_publish
from smart.hub.vault import service as vault
from smart.hub.vault.logins import Logins
from smart.hub.vault.smartid import SmartId
from smart.hub.web import auth, people
from smart.hub.web.status import FloorStatus, ServiceHealth
from smart.keys import KeyStore
from smart.ledger import hub_store
from smart.ledger.hub_store import HubLog
from smart.ledger.trust import ADMIN_KEY
from smart.secret_files import secret

#: The app role's password, generated on first use (or mounted) in the secrets directory.
APP_PASSWORD_FILE = "ledger-app.password"


class HubServices:
    """Every hub service of one hub, started in order by :meth:`start`, from ``settings`` only."""

    def __init__(self, settings: settings_.Settings) -> None:
        self.settings = settings
        #: The stations this hub takes ledgers from and publishes to.
        self.stations = list(settings.station_ids)
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
        self.work: work.WorkServices | None = None
        self.client_api: client_api_service.ClientApiServices | None = None

    def owner_database_url(self) -> str:
        return settings_.database_url(self.settings)

    def app_database_url(self) -> str:
        password = secret(self.settings.secrets_directory / APP_PASSWORD_FILE)
        return make_conninfo(self.owner_database_url(), user=hub_store.APP_ROLE, password=password)

    async def connect_nats(self, name: str) -> NatsClient:
        """A connection to the hub's NATS as the hub services' user (its credentials file, if any)."""
        credentials = self.settings.nats_credentials
        return await nats.connect(
            self.settings.hub_nats_url(),
            name=name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.25,
            **({"user_credentials": str(credentials)} if credentials is not None else {}),
        )

    async def start(self) -> None:
        owner_url = self.owner_database_url()
        password = secret(self.settings.secrets_directory / APP_PASSWORD_FILE)
        await asyncio.to_thread(hub_store.migrate, owner_url, app_password=password)
        await asyncio.to_thread(handoff_central.migrate, owner_url)
        await asyncio.to_thread(reorders.migrate, owner_url)
        await asyncio.to_thread(work.migrate, owner_url)
        await asyncio.to_thread(client_api_service.migrate, owner_url)
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
        stations = self.stations
        await asyncio.to_thread(register_stations, self.hub_log, keys, stations)
        await asyncio.to_thread(register_shipped_nodes, self.hub_log, keys)  # the operator's node
        self.connection = await self.connect_nats("smart-hub-services")
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
        self.work = await asyncio.to_thread(
            work.WorkServices,
            self.app_database_url(),
            keys=keys,
            ledger_dir=self.settings.state_dir / "ledger",
            stations=stations,
            js=self.connection.jetstream(),
        )
        self.work.start()
        self.client_api = await asyncio.to_thread(
            client_api_service.ClientApiServices,
            self.app_database_url(),
            keys=keys,
            ledger_dir=self.settings.state_dir / "ledger",
            clients=self.work.clients,
            log_key=keys.signing_key(hub_store.HUB_KEY).verifying,
        )
        self.client_api.start()
        self.logins = await asyncio.to_thread(Logins, owner_url)
        self.smartid = await asyncio.to_thread(
            SmartId,
            owner_url,
            key=keys.signing_key(vault.CREDENTIAL_KEY),
            ledger=vault.SharedNodeLog(self.settings.state_dir / "ledger", keys),
            zone=self.settings.shop_zone,
        )

    def routers(self) -> list[APIRouter]:
        """SMART-ID's sign-in, people and credentials pages, HandoffCentral's jobs, the reorder board."""
        assert self.smartid is not None and self.logins is not None
        publish = vault_publish.publisher(self.smartid, self.settings.hub_nats_url(), self.stations)
        guard = auth.Guard(self.logins)
        return [
            auth.router(self.logins),
            people.router(self.smartid, guard, publish=publish),
            handoff_central.router(self.app_database_url(), guard),
            reorders.router(self.app_database_url(), guard),
            *(self.work.routers(guard) if self.work is not None else []),
            *(self.client_api.routers(guard) if self.client_api is not None else []),
        ]

    async def status(self) -> FloorStatus:
        """The hub's own parts as the status page shows them: its database and its NATS, probed now."""
        checked = time.time()
        database = ServiceHealth(name="postgresql", kind="database", healthy=True, state="running")
        try:
            await asyncio.wait_for(asyncio.to_thread(_probe_database, self.app_database_url()), timeout=2)
        except Exception as err:  # down, refusing, slow: the page says so
            database = database.model_copy(
                update={"healthy": False, "state": "unreachable", "detail": f"{type(err).__name__}: {err}"}
            )
        connected = self.connection is not None and self.connection.is_connected
        hub_nats = ServiceHealth(
            name="nats-hub",
            kind="hub-nats",
            healthy=connected,
            state="running" if connected else "unreachable",
            detail="" if connected else f"not connected to {self.settings.hub_nats_url()}",
        )
        return FloorStatus(
            healthy=database.healthy and connected, services=[database, hub_nats], checked_at=checked
        )

    async def _gather(self, gathering: HubNodeGathering, every_s: float = 2.0) -> None:
        while True:
            await asyncio.to_thread(gathering.gather_once)
            await asyncio.sleep(every_s)

    async def stop(self) -> None:
        if self.client_api is not None:
            await self.client_api.stop()
        if self.work is not None:
            await self.work.stop()
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


def _probe_database(url: str) -> None:
    with psycopg.connect(url, connect_timeout=2) as connection:
        connection.execute("SELECT 1")
