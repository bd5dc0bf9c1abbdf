"""Fixtures for the ledger: keys, a migrated hub database reached as the owner and as the app role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from typer.testing import Result

from smart.keys import KeyStore
from smart.ledger import hub_store, synthetic, witness
from smart.testing.cli import invoke
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
    password = database.app_password
    hub_store.migrate(database.url, app_password=password)
    app_url = make_conninfo(database.url, user=hub_store.APP_ROLE, password=password)
    assert conninfo_to_dict(app_url)["dbname"] == database.name
    return HubDatabase(owner_url=database.url, app_url=app_url)


@pytest.fixture
def hub(hub_db: HubDatabase, keys: KeyStore) -> Iterator[hub_store.HubLog]:
    with hub_store.HubLog.connect(
        hub_db.app_url, key=keys.signing_key("hub"), admin=keys.signing_key("ledger-admin")
    ) as log:
        yield log


LedgerCli = Callable[..., Result]


@pytest.fixture
def ledger_cli(hub_db: HubDatabase, keys: KeyStore, tmp_path: Path) -> LedgerCli:
    """Run ``smart …`` in-process against the test database and keys, as an operator would."""
    env = {
        "SMART_DATABASE_URL": hub_db.owner_url,
        "SMART_KEYS_DIR": str(keys.directory),
        "SMART_STATE_DIR": str(tmp_path / "state"),
        "SMART_SETTINGS_FILE": str(tmp_path / "no-settings.toml"),
    }

    def run(*args: str) -> Result:
        return invoke(*args, env=env)

    return run


def enrol(hub: hub_store.HubLog, keys: KeyStore, *nodes: str) -> None:
    for node in nodes:
        hub.register_node(node, keys.signing_key(node).verifying)


def three_stations(
    hub: hub_store.HubLog, keys: KeyStore, *, per_node: int = 120, batch_size: int = 40
) -> None:
    """A small shop's log: pt-1, mt-1 and ut-1 shipping batches in turn (360 entries by default)."""
    nodes = ("pt-1", "mt-1", "ut-1")
    enrol(hub, keys, *nodes)
    chains = [synthetic.chain(n, keys.signing_key(n), per_node, batch_size=batch_size) for n in nodes]
    for round_ in range(len(chains[0])):
        for chain in chains:
            hub.ingest(chain[round_])


WITNESSES = ("witness-pt-1", "witness-mt-1")


@pytest.fixture
def cosigned(hub: hub_store.HubLog, keys: KeyStore) -> hub_store.HubLog:
    """The small shop's log, its latest checkpoint cosigned by two stations' witnesses."""
    three_stations(hub, keys)
    for name in WITNESSES:
        key = keys.signing_key(name)
        hub.register_witness(key.verifying)
        hub.witness(witness.Witness(key, log_key=keys.signing_key("hub").verifying, origin=hub_store.ORIGIN))
    return hub
