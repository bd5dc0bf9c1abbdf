"""A hub service's own ledger node (ClientManager, Travelers, HandoffCentral), as SMART-ID keeps ``smart-id``.

Every change a service makes (a client added, a PO line edited, a review,
a traveler revised, a release) is one entry on its node: who (the signed-in
login or the command's user), what (the kind), the subject (client, PO line,
traveler) and the data before and after. The node's log lives in
``<state_dir>/ledger/<node>.sqlite3``, signed by the key of the same name;
the hub's gathering takes it into the global log like any other node. The
log is opened for each append and closed (its head signed) right after, so
the hub pages and a ``smart po …`` command can both record as the service.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from smart import ledger
from smart.keys import KeyStore
from smart.ledger.node_store import NodeLogBusy

#: The nodes of the work services (each one key, named after the node).
CLIENT_MANAGER = "client-manager"
TRAVELERS = "travelers"
HANDOFF_CENTRAL = "handoff-central"
PROJECTS = "projects"
PAY = "pay"
CLIENT_API = "client-api"


class ServiceLedger(Protocol):
    """What a work service needs of its node: append one entry, in the caller's transaction."""

    def append(
        self, *, kind: str, subject: str, data: Mapping[str, Any], actor: str, contract: str | None = None
    ) -> ledger.Entry: ...

    def append_many(self, entries: Sequence[Mapping[str, Any]], *, actor: str) -> list[ledger.Entry]: ...


class ServiceNodeLog:
    """One service's node log, opened per append; a writer that finds it busy waits a moment."""

    def __init__(self, directory: Path, keys: KeyStore, *, node: str, wait_s: float = 5.0) -> None:
        self.directory = directory
        self.keys = keys
        self.node = node
        self.wait_s = wait_s

    def append(
        self, *, kind: str, subject: str, data: Mapping[str, Any], actor: str, contract: str | None = None
    ) -> ledger.Entry:
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                with ledger.NodeLog.open(self.directory, node=self.node, keys=self.keys) as log:
                    return log.append(kind=kind, subject=subject, data=data, actor=actor, contract=contract)
            except NodeLogBusy:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def append_many(self, entries: Sequence[Mapping[str, Any]], *, actor: str) -> list[ledger.Entry]:
        """Record several entries (``kind``, ``subject``, ``data`` each) with the log opened once."""
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                with ledger.NodeLog.open(self.directory, node=self.node, keys=self.keys) as log:
                    return [
                        log.append(kind=e["kind"], subject=e["subject"], data=e["data"], actor=actor)
                        for e in entries
                    ]
            except NodeLogBusy:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def entries(self) -> list[ledger.Entry]:
        """Every entry of the node, oldest first (for tests and ``smart po history``)."""
        path = self.directory / f"{self.node}.sqlite3"
        if not path.exists():
            return []
        with ledger.NodeLogReader(path) as reader:
            return reader.entries(0, 2**62)
