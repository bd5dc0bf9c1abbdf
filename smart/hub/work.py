"""The hub's work services together: ClientManager, Travelers, HandoffCentral's release, Projects.

Each keeps its own PostgreSQL schema (``clients``, ``travelers``,
``handoff``, ``projects``) migrated as the owner and used as the app role, and its own
ledger node under ``<state_dir>/ledger/``. On one machine (``smart up``) they
run in the hub process beside the ledger intake; they are apart enough that
a Vault hub can run ClientManager and a Floor hub the rest (a later issue).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter
from nats.js import JetStreamContext

from smart.hub import projects
from smart.hub.clients import store as clients_store
from smart.hub.clients import web as clients_web
from smart.hub.projects import store as projects_store
from smart.hub.release import store as release_store
from smart.hub.release import web as release_web
from smart.hub.service_log import CLIENT_MANAGER, HANDOFF_CENTRAL, PROJECTS, TRAVELERS, ServiceNodeLog
from smart.hub.travelers import store as travelers_store
from smart.hub.travelers import web as travelers_web
from smart.hub.web.auth import Guard
from smart.keys import KeyStore
from smart.ledger import hub_store


def migrate(owner_url: str, *, app_role: str = hub_store.APP_ROLE) -> None:
    """Every work schema up to date (each service's migrations, in order)."""
    clients_store.migrate(owner_url, app_role=app_role)
    travelers_store.migrate(owner_url, app_role=app_role)
    release_store.migrate(owner_url, app_role=app_role)
    projects_store.migrate(owner_url, app_role=app_role)


class WorkServices:
    """The work services on app-role connections, their ledger nodes, and the floor-events index."""

    def __init__(
        self, app_url: str, *, keys: KeyStore, ledger_dir: Path, stations: Sequence[str], js: JetStreamContext
    ) -> None:
        self.app_url = app_url
        self.clients = clients_store.ClientManager(
            app_url, ledger=ServiceNodeLog(ledger_dir, keys, node=CLIENT_MANAGER)
        )
        self.travelers = travelers_store.Travelers(
            app_url, ledger=ServiceNodeLog(ledger_dir, keys, node=TRAVELERS), stations=stations
        )
        self.release = release_store.HandoffRelease(
            app_url,
            clients=self.clients,
            travelers=self.travelers,
            js=js,
            ledger=ServiceNodeLog(ledger_dir, keys, node=HANDOFF_CENTRAL),
        )
        self.floor_events = release_store.FloorEvents.connect(app_url)
        self.projects = projects_store.Projects(
            app_url, ledger=ServiceNodeLog(ledger_dir, keys, node=PROJECTS)
        )
        self.invoices = projects_store.InvoiceIndex.connect(app_url)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.floor_events.run(), name="handoff-floor-events"),
            asyncio.create_task(self.invoices.run(), name="projects-invoices"),
        ]

    def routers(self, guard: Guard) -> list[APIRouter]:
        return [
            clients_web.page_router(guard),  # before /pos/{po}: /pos/import is a page of its own
            clients_web.router(self.clients, guard),
            travelers_web.router(self.travelers, guard),
            travelers_web.page_router(self.travelers, guard),
            release_web.router(
                self.app_url, guard, clients=self.clients, travelers=self.travelers, release=self.release
            ),
            projects.router(self.app_url, guard, store=self.projects),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.floor_events.close()
        self.invoices.close()
        self.projects.close()
        self.release.close()
        self.clients.close()
        self.travelers.close()
