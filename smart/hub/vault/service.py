"""Opening SMART-ID from settings: the Vault database, the ``smart-id`` signing key, its ledger node.

The credential key (``smart-id``) and the ledger node's chain-head key
(``smart-id-ledger``) are separate keys, so a signature made for one purpose
can never be presented as the other. The node's log lives in
``<state_dir>/ledger/smart-id.sqlite3``; one process writes it at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from smart import ledger
from smart.hub.vault.logins import Logins
from smart.hub.vault.smartid import NODE, SmartId, utc_now
from smart.keys import KeyStore
from smart.runtime.floor import Floor
from smart.settings import Settings

CREDENTIAL_KEY = "smart-id"
LEDGER_KEY = "smart-id-ledger"


def database_url(settings: Settings) -> str:
    """The external database when configured, else the embedded floor's (owner role)."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return Floor(settings, nats_servers=False).database_url()


def hub_nats_url(settings: Settings) -> str:
    return settings.nats_url or f"nats://{settings.host}:{settings.nats_port}"


@contextmanager
def open_smartid(settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> Iterator[SmartId]:
    keys = KeyStore(settings.key_directory)
    with ledger.NodeLog.open(
        settings.state_dir / "ledger", node=NODE, keys=keys, key_name=LEDGER_KEY
    ) as node_log:
        yield SmartId(
            database_url(settings), key=keys.signing_key(CREDENTIAL_KEY), ledger=node_log, clock=clock
        )


def open_logins(settings: Settings) -> Logins:
    return Logins(database_url(settings))
