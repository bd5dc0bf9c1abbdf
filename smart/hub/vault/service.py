"""Opening SMART-ID from settings: the Vault database, the ``smart-id`` signing key, its ledger node.

The credential key (``smart-id``) and the ledger node's chain-head key
(``smart-id-ledger``) are separate keys, so a signature made for one purpose
can never be presented as the other. The node's log lives in
``<state_dir>/ledger/smart-id.sqlite3``; one process writes it at a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from smart import ledger
from smart import settings as settings_
from smart.hub.vault.logins import Logins
from smart.hub.vault.smartid import NODE, SmartId, utc_now
from smart.keys import KeyStore
from smart.ledger.node_store import NodeLogBusy
from smart.settings import Settings

CREDENTIAL_KEY = "smart-id"
LEDGER_KEY = "smart-id-ledger"


def database_url(settings: Settings) -> str:
    """The external database when configured, else the embedded floor's (owner role)."""
    return settings_.database_url(settings)


def hub_nats_url(settings: Settings) -> str:
    return settings.hub_nats_url()


@contextmanager
def open_smartid(settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> Iterator[SmartId]:
    """SMART-ID for one command; its ledger node is opened per append, so it works beside ``smart up``."""
    keys = KeyStore(settings.key_directory)
    yield SmartId(
        database_url(settings),
        key=keys.signing_key(CREDENTIAL_KEY),
        ledger=SharedNodeLog(settings.state_dir / "ledger", keys),
        clock=clock,
        zone=settings.shop_zone,
    )


def open_logins(settings: Settings) -> Logins:
    return Logins(database_url(settings))


class SharedNodeLog:
    """SMART-ID's ledger node, opened for each append and closed (head signed) right after.

    One process writes a node log at a time. The hub pages of ``smart up`` and
    a ``smart people``/``smart credentials`` command run at the same time both
    record as SMART-ID; holding the log only for the append lets both, and a
    writer that finds it busy waits a moment instead of failing.
    """

    def __init__(self, directory: Path, keys: KeyStore, *, wait_s: float = 5.0) -> None:
        self.directory = directory
        self.keys = keys
        self.wait_s = wait_s

    def append(
        self, *, kind: str, subject: str, data: Mapping[str, Any], actor: str, contract: str | None = None
    ) -> ledger.Entry:
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                with ledger.NodeLog.open(
                    self.directory, node=NODE, keys=self.keys, key_name=LEDGER_KEY
                ) as log:
                    return log.append(kind=kind, subject=subject, data=data, actor=actor, contract=contract)
            except NodeLogBusy:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
