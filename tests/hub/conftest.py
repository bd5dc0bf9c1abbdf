"""The hub's database with its ledger and index tables, and its pages behind a real sign-in."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from psycopg.conninfo import make_conninfo

from smart.access.roles import Role
from smart.hub import handoff_central, reorders
from smart.hub.vault.logins import Logins
from smart.hub.web import auth
from smart.hub.web.app import create_app
from smart.ledger import hub_store
from smart.runtime.floor import FloorStatus
from smart.testing.plugin import FreshDatabase

PASSWORD = "correct horse battery"


@dataclass(frozen=True, slots=True)
class HubDatabase:
    owner_url: str
    app_url: str


@pytest.fixture
def hub_db(database: FreshDatabase) -> HubDatabase:
    password = database.app_password
    hub_store.migrate(database.url, app_password=password)
    handoff_central.migrate(database.url)
    reorders.migrate(database.url)
    return HubDatabase(database.url, make_conninfo(database.url, user=hub_store.APP_ROLE, password=password))


async def _no_floor() -> FloorStatus:
    return FloorStatus(healthy=True, services=[], checked_at=time.time())


@contextmanager
def signed_in_pages(
    hub_db: HubDatabase, router: Callable[[str, auth.Guard], APIRouter]
) -> Iterator[TestClient]:
    """The hub app with ``router`` and the sign-in pages; logins ``nadcap-auditor`` and ``op-7``."""
    logins = Logins(hub_db.owner_url)
    for username, role in (("nadcap-auditor", Role.AUDITOR), ("op-7", Role.OPERATOR)):
        logins.add(username, PASSWORD, role=role)
    guard = auth.Guard(logins)
    app = create_app(_no_floor, routers=[auth.router(logins), router(hub_db.app_url, guard)])
    with TestClient(app, follow_redirects=False) as client:
        yield client


def sign_in(client: TestClient, username: str) -> None:
    assert client.post("/login", data={"username": username, "password": PASSWORD}).status_code == 303
