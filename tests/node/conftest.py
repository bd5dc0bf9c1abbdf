"""A station's agent against a real hub and leaf: reference contracts, the hub key, the hub's streams."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NatsClient
from psycopg.conninfo import make_conninfo

from smart.bus import subjects
from smart.contracts import bundle as contract_bundle
from smart.contracts import manifests
from smart.contracts.models import SmartContract, Station
from smart.hub.intake import LedgerIntake, register_stations
from smart.hub.streams import ensure_hub_streams
from smart.keys import KeyStore
from smart.ledger import hub_store
from smart.node.agent import AgentConfig, NodeAgent
from smart.runtime.background import BackgroundFloor
from smart.testing.patience import STATE_DEADLINE_S
from smart.testing.plugin import FreshDatabase

REPO = Path(__file__).resolve().parents[2]


def reference(kind: type[SmartContract] | type[Station], name: str) -> SmartContract | Station:
    for loaded in manifests.load([REPO / "contracts"]):
        if isinstance(loaded.manifest, kind) and loaded.manifest.metadata.name == name:
            return loaded.manifest
    raise LookupError(name)


def signed_envelope(
    contract_name: str, station_id: str, keys: KeyStore, *, limit: float | None = None
) -> bytes:
    contract = reference(SmartContract, contract_name)
    station = reference(Station, station_id)
    assert isinstance(contract, SmartContract) and isinstance(station, Station)
    bundle = contract_bundle.compile_bundle(contract, station)
    if limit is not None:  # a new revision: the same contract with one limit changed
        for rule in bundle["rules"]:
            if rule.get("limits", {}).get("min") is not None:
                rule["limits"]["min"] = limit
                break
    return contract_bundle.sign(bundle, keys.signing_key("hub")).envelope


def tampered(envelope: bytes) -> bytes:
    """The same envelope with one limit changed after signing: the signature no longer matches."""
    value = json.loads(envelope)
    for rule in value["bundle"]["rules"]:
        if rule.get("limits", {}).get("min") is not None:
            rule["limits"]["min"] = 1
            break
    value["revision"] = contract_bundle.revision_of(value["bundle"])
    value["signature"]["value"] = base64.b64encode(b"\0" * 64).decode()
    return contract_bundle.canonical(value)


@dataclass
class Hub:
    connection: NatsClient
    keys: KeyStore

    async def put_contract(self, station: str, contract: str, envelope: bytes) -> int:
        bucket = await self.connection.jetstream().key_value(subjects.CONTRACTS_BUCKET)
        return int(await bucket.put(subjects.contract_key(station, contract), envelope))

    async def retire_contract(self, station: str, contract: str) -> None:
        bucket = await self.connection.jetstream().key_value(subjects.CONTRACTS_BUCKET)
        await bucket.delete(subjects.contract_key(station, contract))


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    store = KeyStore(tmp_path / "keys")
    store.signing_key("hub")
    return store


@pytest.fixture
async def hub(nats_floor: BackgroundFloor, keys: KeyStore, database: FreshDatabase) -> AsyncIterator[Hub]:
    """The hub's NATS and its ledger intake (real PostgreSQL): a station's shipped cursor moves only
    on the intake's receipt, so a station's entries reach "the hub" only with an intake running."""
    assert nats_floor.floor.hub is not None
    connection = await nats.connect(nats_floor.floor.hub.url, **nats_floor.settings.hub_nats_signin())
    await ensure_hub_streams(connection.jetstream())
    password = database.app_password
    hub_store.migrate(database.url, app_password=password)
    app_url = make_conninfo(database.url, user=hub_store.APP_ROLE, password=password)
    hub_log = hub_store.HubLog.connect(
        app_url, key=keys.signing_key("hub"), admin=keys.signing_key("ledger-admin")
    )
    stations = list(nats_floor.floor.leaves)
    register_stations(hub_log, keys, stations)
    intake = LedgerIntake(connection, hub_log, stations=stations)
    task = asyncio.create_task(intake.run())
    yield Hub(connection, keys)
    task.cancel()
    await asyncio.wait({task}, timeout=10)
    with contextlib.suppress(Exception):  # a test may leave the hub's server away or half back
        await connection.close()  # an intake still running ends with its connection
    await asyncio.wait({task}, timeout=10)
    intake.close()
    hub_log.close()


def agent_for(floor: BackgroundFloor, station: str, keys: KeyStore, data_root: Path) -> NodeAgent:
    return NodeAgent(
        AgentConfig(
            station=station,
            leaf_url=floor.floor.leaves[station].url,
            data_dir=data_root / station,
            keys=keys,
            heartbeat_s=0.2,
        )
    )


async def eventually(
    predicate: object, deadline_s: float = STATE_DEADLINE_S, what: str = "condition", state: object = None
) -> None:
    """Wait for ``predicate``; on timeout say what was awaited and (``state()``) how things stood."""
    assert callable(predicate)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    while loop.time() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.02)
    found = state() if callable(state) else ""
    raise AssertionError(f"{what} not reached within {deadline_s} s {found}")


def now() -> datetime:
    return datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class LedgerDatabase:
    owner_url: str
    app_url: str


@pytest.fixture
def ledger_db(database: FreshDatabase) -> LedgerDatabase:
    password = database.app_password
    hub_store.migrate(database.url, app_password=password)
    return LedgerDatabase(
        database.url, make_conninfo(database.url, user=hub_store.APP_ROLE, password=password)
    )


REFERENCE = {
    "pt-1": "penetrant",
    "mt-1": "magnetic-particle",
    "ut-1": "ultrasonic",
    "ht-1": "heat-treat",
    "cp-1": "chemical-processing",
    "sr-1": "shipping-receiving",
}
