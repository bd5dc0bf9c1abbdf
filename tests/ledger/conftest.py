"""Fixtures for the ledger: keys, a migrated hub database reached as the owner and as the app role."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from smart.keys import KeyStore
from smart.ledger import hub_store
from smart.testing.plugin import FreshDatabase


@dataclass(frozen=True, slots=True)
class HubDatabase:
    """A ledger database: ``owner_url`` runs migrations (and plays the attacker), ``app_url`` is the hub."""

    owner_url: str
    app_url: str


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "keys")


@pytest.fixture
def hub_db(database: FreshDatabase) -> HubDatabase:
    password = secrets.token_urlsafe(16)
    hub_store.migrate(database.url, app_password=password)
    app_url = make_conninfo(database.url, user=hub_store.APP_ROLE, password=password)
    assert conninfo_to_dict(app_url)["dbname"] == database.name
    return HubDatabase(owner_url=database.url, app_url=app_url)


@pytest.fixture
def hub(hub_db: HubDatabase, keys: KeyStore) -> Iterator[hub_store.HubLog]:
    with hub_store.HubLog.connect(hub_db.app_url, key=keys.signing_key("hub")) as log:
        yield log
