"""The client API and Pay together, as the hub runs them: their stores, the C of C index, their routes.

Both are Business-hub services: they read ClientManager's POs and the
floor's indexes of the ledger, and write only their own schemas
(``client_api``, ``pay``) and ledger nodes (``client-api``, ``pay``).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from fastapi import APIRouter

from smart.hub.audit import index as audit_index
from smart.hub.client_api import store as client_api_store
from smart.hub.client_api import web as client_api_web
from smart.hub.clients.store import ClientManager
from smart.hub.pay import store as pay_store
from smart.hub.pay import web as pay_web
from smart.hub.service_log import CLIENT_API, PAY, ServiceNodeLog
from smart.hub.web.auth import Guard
from smart.keys import KeyStore, VerifyingKey
from smart.ledger import hub_store

#: Requests a second per credential on average, and at once (a client's integration polls; a burst is a page).
RATE_PER_S = 20.0
BURST = 40


def migrate(owner_url: str, *, app_role: str = hub_store.APP_ROLE) -> None:
    pay_store.migrate(owner_url, app_role=app_role)
    audit_index.migrate(owner_url, app_role=app_role)  # the C of Cs AuditCentral printed, served as stored
    client_api_store.migrate(owner_url, app_role=app_role)


class ClientApiServices:
    def __init__(
        self,
        app_url: str,
        *,
        keys: KeyStore,
        ledger_dir: Path,
        clients: ClientManager,
        log_key: VerifyingKey | None,
        rate_per_s: float = RATE_PER_S,
        burst: int = BURST,
    ) -> None:
        self.pay = pay_store.Pay(app_url, ledger=ServiceNodeLog(ledger_dir, keys, node=PAY))
        self.credentials = client_api_store.ClientCredentials(
            app_url, ledger=ServiceNodeLog(ledger_dir, keys, node=CLIENT_API)
        )
        self.certificates = pay_store.CertificateIndex.connect(app_url)
        self.api = client_api_web.ClientApi(
            url=app_url,
            credentials=self.credentials,
            pay=self.pay,
            clients=clients,
            log_key=log_key,
            limit=client_api_store.RateLimit(rate_per_s, burst),
        )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.certificates.run(), name="pay-certificates")

    def routers(self, guard: Guard) -> list[APIRouter]:
        client_routes = client_api_web.router(self.api)
        return [
            client_routes,
            client_api_web.openapi_router(client_routes),
            pay_web.router(self.pay, guard),
            pay_web.page_router(self.pay, guard),
        ]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.certificates.close()
        self.pay.close()
        await self.credentials.close_serving()  # the serving loop's pool, from that loop
        self.credentials.close()
