"""The client API as the Business hub runs it: its credentials and its routes, on Business's own login.

It reads only what the Floor published to Business (``published.records``)
and writes only its own schema ``client_api`` and ledger node
``client-api``; Pay, which the API's invoices come from, runs on the Floor
(:mod:`smart.hub.pay.service`).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from smart.hub.client_api import store as client_api_store
from smart.hub.client_api import web as client_api_web
from smart.hub.service_log import CLIENT_API, ServiceNodeLog
from smart.hub.web.auth import Guard
from smart.keys import KeyStore
from smart.ledger import hub_store

#: Requests a second per credential on average, and at once (a client's integration polls; a burst is a page).
RATE_PER_S = 20.0
BURST = 40


def migrate(owner_url: str, *, app_role: str = hub_store.APP_ROLE) -> None:
    """The ``client_api`` schema for ``app_role`` (the Business hub's login); ``published`` is the feed's."""
    client_api_store.migrate(owner_url, app_role=app_role)


class ClientApiServices:
    def __init__(
        self,
        url: str,
        *,
        keys: KeyStore,
        ledger_dir: Path,
        rate_per_s: float = RATE_PER_S,
        burst: int = BURST,
    ) -> None:
        self.credentials = client_api_store.ClientCredentials(
            url, ledger=ServiceNodeLog(ledger_dir, keys, node=CLIENT_API)
        )
        self.api = client_api_web.ClientApi(
            credentials=self.credentials, limit=client_api_store.RateLimit(rate_per_s, burst)
        )

    def routers(self, guard: Guard) -> list[APIRouter]:
        client_routes = client_api_web.router(self.api)
        return [client_routes, client_api_web.openapi_router(client_routes)]

    async def stop(self) -> None:
        await self.credentials.close_serving()  # the serving loop's pool, from that loop
        self.credentials.close()
