"""Gathering the hub services' own node logs into the hub log, as stations' logs are.

SMART-ID and ``smart apply`` (node ``smart-embedded``) append
to node logs of their own under ``<state_dir>/ledger/`` (DESIGN "Ledger":
hub services append through the same path, as nodes of their own). A
station ships its log over JetStream; these logs sit beside the hub, so the
hub services read them directly and ingest them into PostgreSQL with the
same checks: the chain re-derived from the bytes, each batch closed by a
head the node signed, exactly once by (node, node_seq). The operator runs in a pod of its own
and ships its log over the LEDGER stream instead (:data:`SHIPPED_NODES`,
:mod:`smart.operator.shipping`).

When a hub role runs in a pod of its own (``smart hub run --role vault|business`` on
Kubernetes), its node logs are on its own volume, which the Floor cannot read: the role ships
them instead (:class:`NodeLogShipping`), each node of ``hub_roles.LEDGER_NODES`` to
``ledger.<node>.batch`` as a station ships its ledger, with the role's NATS user (allowed exactly
those subjects and their receipts), and the Floor's intake takes them with the same checks
against the node's key (:func:`register_shipped_nodes`: the public keys the administrator
provisioned; a node without one is refused, never trusted on first sight). Under ``smart up`` the
roles share one state directory and the Floor gathers the files as before.

The reader (``ledger.NodeLogReader``) never takes the writer's lock (the
writer may be another process, e.g. a CLI command) and opens the SQLite
file read-only. It ships
only up to the newest signed head: entries after it wait for the writer's
next head (signed every few seconds while it runs, and at close).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog
from fastapi import APIRouter
from nats.aio.client import Client as NatsClient

from smart.bus import hub_roles
from smart.bus.hub_roles import HubRole
from smart.bus.shipping import MAX_BATCH_BYTES, Blocked, FileCursor, Shipper
from smart.keys import KeyFileError, KeyStore
from smart.ledger.batch import Batch, BatchError, Shipment
from smart.ledger.hub_store import HubLog, IngestError
from smart.ledger.node_store import NodeLogError, NodeLogReader
from smart.ledger.trust import ADMIN_KEY, ADMIN_NODE, ADMIN_NODE_KEY

log = structlog.get_logger("smart.hub.gathering")

#: Hub-service nodes that ship their own log over the LEDGER stream (they run in pods of their
#: own, whose volumes the hub cannot read): never gathered from a file, even one found here.
SHIPPED_NODES = frozenset({"smart-operator"})
#: The nodes hub roles ship when they run apart (on one machine the Floor gathers their files).
ROLE_NODES = frozenset(node for nodes in hub_roles.LEDGER_NODES.values() for node in nodes)
#: Ledger key names of hub-service nodes whose key is not named after the node.
NODE_KEY_NAMES: Mapping[str, str] = {"smart-id": "smart-id-ledger", ADMIN_NODE: ADMIN_NODE_KEY}
#: Entries per ingested batch at most (unless the first signed head lies further on).
BATCH_LIMIT = 2000


class NodeLogFileError(RuntimeError):
    """A node log file cannot be read; the message names the file."""


@dataclass(frozen=True, slots=True)
class Gathered:
    node: str
    entries: int


def read_batch(path: Path, start: int, limit: int = BATCH_LIMIT) -> tuple[str, Batch | None]:
    """The node's name and its entries from ``start`` through a signed head (None when none is signed yet)."""
    try:
        with NodeLogReader(path) as reader:
            return reader.node, reader.signed_batch(start, limit)
    except NodeLogError as err:
        raise NodeLogFileError(str(err)) from err


class HubNodeGathering:
    """Ingests every hub-service node log in ``directory`` that the hub log does not hold yet."""

    def __init__(self, directory: Path, hub_log: HubLog, keys: KeyStore) -> None:
        self.directory = directory
        self.hub_log = hub_log
        self.keys = keys
        self._registered: set[str] = set()

    def _register(self, node: str) -> bool:
        """Enrol the node's public key with the hub log once; a node without a key here is skipped."""
        if node in self._registered:
            return True
        try:
            key = self.keys.verifying_key(NODE_KEY_NAMES.get(node, node))
        except KeyFileError as err:
            log.warning("hub node not gathered: no public key", node=node, error=str(err))
            return False
        self.hub_log.register_node(node, key, admin=self.keys.signing_key(ADMIN_KEY))
        self._registered.add(node)
        return True

    def gather_once(self) -> list[Gathered]:
        """One pass over the directory; returns what was ingested. A bad file is logged and skipped."""
        gathered: list[Gathered] = []
        for path in sorted(self.directory.glob("*.sqlite3")):
            node = path.stem
            if node in SHIPPED_NODES:
                continue
            try:
                while True:
                    start = self.hub_log.node_size(node)
                    found, batch = read_batch(path, start)
                    if found != node:
                        raise NodeLogFileError(f"node log {path} belongs to {found!r}, not {node!r}")
                    if batch is None or not self._register(node):
                        break
                    # Through the same door as a station's batch: canonical RFC 8785 entries only.
                    batch = Batch.from_bytes(batch.to_bytes())
                    self.hub_log.ingest(batch)
                    gathered.append(Gathered(node, len(batch.entries)))
                    log.info(
                        "hub node gathered",
                        node=node,
                        first=batch.entries[0].node_seq,
                        last=batch.head.node_seq,
                    )
            except (NodeLogFileError, IngestError, BatchError) as err:
                log.error("hub node log not gathered", node=node, file=str(path), error=str(err))
        return gathered


def register_shipped_nodes(hub_log: HubLog, keys: KeyStore) -> list[str]:
    """Trust the ledger keys of the hub-service nodes that ship their logs, where provisioned.

    The intake checks their batches' signed heads with these keys, as it checks a station's; a
    node whose public key is not in the keys directory is not trusted (its batches are refused).
    """
    trusted = []
    for node in sorted(SHIPPED_NODES | ROLE_NODES):
        try:
            key = keys.verifying_key(NODE_KEY_NAMES.get(node, node))
        except KeyFileError:
            continue
        # established as the stations' keys are: signed by the administrator's key (smart.ledger.trust)
        hub_log.register_node(node, key, admin=keys.signing_key(ADMIN_KEY))
        trusted.append(node)
    return trusted


class SignedLog:
    """A hub role's node log as its shipper reads it: beside its writer, up to the newest signed head.

    The role's services open their node log per append and close it right after (signing its head),
    so the shipper never takes the writer's lock: it reads with ``NodeLogReader`` and ships only
    what a head the node signed covers.
    """

    def __init__(self, path: Path, node: str) -> None:
        self.path = path
        self._node = node

    @property
    def node(self) -> str:
        return self._node

    def size(self) -> int:
        """Entries through the newest signed head (what may be shipped)."""
        try:
            with NodeLogReader(self.path) as reader:
                head = reader.head()
        except NodeLogError:
            return 0
        return 0 if head is None else head.node_seq + 1

    def shipment(
        self, start: int, *, limit: int = BATCH_LIMIT, max_bytes: int | None = None
    ) -> Shipment | None:
        room = MAX_BATCH_BYTES if max_bytes is None else max_bytes
        while True:
            found, batch = read_batch(self.path, start, limit)
            if found != self.node:
                raise NodeLogFileError(f"node log {self.path} belongs to {found!r}, not {self.node!r}")
            if batch is None:
                return None
            payload = batch.to_bytes()
            if len(payload) <= room or len(batch.entries) == 1 or limit == 1:
                return Shipment(self.node, batch.first_seq, batch.last_seq, payload)
            limit = max(1, len(batch.entries) // 2)  # through an earlier signed head: smaller


class NodeLogShipping:
    """A hub role's own node logs shipped to the Floor's intake, each by a station's shipper.

    A node's shipping starts once its file exists (a service appends its first entry); the cursor
    of each (the last entry the intake said it holds) is kept beside the log, so a restart ships
    on from there. A role service (no pages): :meth:`stop` ends the shippers.
    """

    def __init__(
        self, role: HubRole, directory: Path, connection: NatsClient, *, look_every_s: float = 2.0
    ) -> None:
        self.role = role
        self.directory = directory
        self.connection = connection
        self.look_every_s = look_every_s
        self.shippers: dict[str, Shipper] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._task = asyncio.create_task(self._run(), name=f"hub-node-shipping-{role.value}")

    def routers(self, guard: object) -> list[APIRouter]:
        return []

    async def _run(self) -> None:
        while True:
            for node in hub_roles.LEDGER_NODES[self.role]:
                path = self.directory / f"{node}.sqlite3"
                if node not in self.shippers and path.exists():
                    self._start(node, path)
            await asyncio.sleep(self.look_every_s)

    def _start(self, node: str, path: Path) -> None:
        def on_blocked(blocked: Blocked | None) -> None:
            if blocked is None:
                log.info("hub node shipping resumed", role=self.role.value, node=node)
            else:
                log.error(
                    "the Floor refuses this hub's node log",
                    role=self.role.value,
                    node=node,
                    kind=blocked.kind,
                    alarm=blocked.alarm,
                    reason=blocked.reason,
                )

        shipper = Shipper(
            node=node,
            node_log=SignedLog(path, node),
            cursor=FileCursor(path.with_name(f"{node}.shipped")),
            batch=BATCH_LIMIT // 2,
            on_blocked=on_blocked,
        )
        self.shippers[node] = shipper
        self._tasks.append(asyncio.create_task(shipper.run(self.connection), name=f"ship-{node}"))
        log.info("hub node shipping", role=self.role.value, node=node, from_seq=shipper.shipped_seq + 1)

    async def stop(self) -> None:
        for task in (self._task, *self._tasks):
            task.cancel()
        for task in (self._task, *self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
