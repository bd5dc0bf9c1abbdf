"""The hub's means of work together: StandardsCentral, QACentral and InventoryHub, as one unit to start.

Each keeps its own schema (``standards``, ``qa``, ``inventory``) migrated as
the owner and used as the app role, its own ledger node under
``<state_dir>/ledger/`` (``standards-central``, ``qa-central``,
``inventory-hub``), and reaches stations only through ``station-records``.
Their background work: StandardsCentral's sweep (a revision takes effect on
its day), InventoryHub's sweep (an expired lot withdrawn on the day, reorder
signals become purchase requests) and QACentral's index of the stations'
NCR entries in the hub log. Signing (approvals, dispositions) verifies
SMART-ID credentials against the pinned ``smart-id`` key.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from nats.js import JetStreamContext

from smart.hub.inventory import store as inventory_store
from smart.hub.qa import store as qa_store
from smart.hub.service_log import ServiceNodeLog
from smart.hub.service_store import utc_now
from smart.hub.standards import store as standards_store
from smart.hub.standards.esign import CredentialSource, Signer
from smart.hub.web.auth import Guard
from smart.keys import KeyStore
from smart.ledger import hub_store

#: SMART-ID's credential key (the one signatures are checked against), pinned by name.
CREDENTIAL_KEY = "smart-id"


def migrate(owner_url: str, *, app_role: str = hub_store.APP_ROLE) -> None:
    standards_store.migrate(owner_url, app_role=app_role)
    qa_store.migrate(owner_url, app_role=app_role)
    inventory_store.migrate(owner_url, app_role=app_role)


class MeansServices:
    def __init__(
        self,
        app_url: str,
        *,
        keys: KeyStore,
        ledger_dir: Path,
        stations: Sequence[str],
        js: JetStreamContext,
        smartid: CredentialSource,
        travelers: Any = None,
        clock: Callable[[], datetime] = utc_now,
        zone: tzinfo = UTC,
    ) -> None:
        self.app_url = app_url
        self.smartid = smartid
        self.stations = tuple(stations)
        self.standards = standards_store.StandardsCentral(
            app_url,
            ledger=ServiceNodeLog(ledger_dir, keys, node=standards_store.NODE),
            stations=stations,
            clock=clock,
            zone=zone,
        )
        self.qa = qa_store.QaCentral(
            app_url,
            ledger=ServiceNodeLog(ledger_dir, keys, node=qa_store.NODE),
            stations=stations,
            clock=clock,
        )
        self.inventory = inventory_store.InventoryHub(
            app_url,
            ledger=ServiceNodeLog(ledger_dir, keys, node=inventory_store.NODE),
            stations=stations,
            clock=clock,
            zone=zone,
        )
        self.signer = Signer(smartid, issuer_keys=[keys.verifying_key(CREDENTIAL_KEY)], clock=clock)
        self.standards_publisher = standards_store.StandardsPublisher(self.standards, js, travelers=travelers)
        self.inventory_publisher = inventory_store.InventoryPublisher(self.inventory, js)
        self.decisions = qa_store.NcrDecisions(self.qa, js)
        self.ncr_index = qa_store.NcrIndex.connect(app_url)
        self._tasks: list[asyncio.Task[None]] = []

    def station_method(self, station: str) -> str | None:
        """The method a station's procedures are for (a Level 3 of it may disposition its NCRs)."""
        return next((p.method for p in self.standards.procedures() if station in p.stations), None)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.standards_publisher.run(), name="standards-central"),
            asyncio.create_task(self.inventory_publisher.run(), name="inventory-hub"),
            asyncio.create_task(self.ncr_index.run(), name="qa-central-ncrs"),
            asyncio.create_task(self.decisions.run(), name="qa-central-decisions"),
        ]

    def routers(self, guard: Guard) -> list[APIRouter]:
        from smart.hub import means_web

        return means_web.routers(self, guard, smartid=self.smartid, stations=self.stations)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.ncr_index.close()
        self.standards.close()
        self.qa.close()
        self.inventory.close()
