"""The operator's ledger reaches the hub as a station's does: shipped, ingested once, never read as a file."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import secrets
import threading
from pathlib import Path

import nats
from psycopg.conninfo import make_conninfo

from smart import ledger
from smart.hub.gathering import HubNodeGathering, register_shipped_nodes
from smart.hub.intake import LedgerIntake
from smart.hub.streams import ensure_hub_streams
from smart.keys import KeyStore
from smart.ledger import hub_store
from smart.ledger.hub_store import HubLog
from smart.runtime.background import BackgroundFloor
from smart.testing.plugin import FreshDatabase
from tests.operator.conftest import CONTRACTS, STATIONS, LoopThread, Starter, eventually
from tests.operator.test_operator import CONTRACT, distributed, station


async def test_the_operators_entries_reach_the_hub_over_the_ledger_stream_once(
    start_operator: Starter, nats_floor: BackgroundFloor, database: FreshDatabase, tmp_path: Path
) -> None:
    password = secrets.token_urlsafe(16)
    hub_store.migrate(database.url, app_password=password)
    app_url = make_conninfo(database.url, user=hub_store.APP_ROLE, password=password)
    keys = KeyStore(tmp_path / "keys")
    keys.signing_key("smart-operator")  # provisioned with the operator; the hub holds the public half
    intakes: list[LedgerIntake] = []

    async def hub_intake(stopping: asyncio.Event, started: threading.Event) -> None:
        """The hub's intake, as the hub runs it (another pod on a floor)."""
        hub = await nats.connect(nats_floor.hub_url)
        await ensure_hub_streams(hub.jetstream())
        intake_log = HubLog.connect(app_url, key=keys.signing_key("hub"))
        assert register_shipped_nodes(intake_log, keys) == ["smart-operator"]
        intake = LedgerIntake(hub, intake_log, stations=[])
        intakes.append(intake)
        task = asyncio.create_task(intake.run())
        started.set()
        await stopping.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        intake.close()
        intake_log.close()
        await hub.close()

    hub = LoopThread(hub_intake)
    await asyncio.to_thread(hub.start)
    reading = HubLog.connect(app_url)
    try:
        api = await start_operator()
        await api.call("POST", STATIONS, station("pt-1", "inspection", "penetrant"))
        await api.call("POST", CONTRACTS, copy.deepcopy(CONTRACT))
        sent = await eventually(lambda: distributed(api, "floor-basics", 1, 1))
        await api.stop()  # its log closes with a signed head; the shipper has had its chance
        node_log = tmp_path / "operator" / "ledger" / "smart-operator.sqlite3"
        written = ledger.NodeLogReader(node_log).entries(0, 1 << 30)
        assert [e.kind for e in written] == ["contract.deployed"]

        api = await start_operator()  # the cursor survives: nothing is shipped twice

        async def at_hub() -> bool:
            return await asyncio.to_thread(reading.node_size, "smart-operator") == len(written)

        await eventually(at_hub, patience=60)
        entries = [e for e in await asyncio.to_thread(reading.entries, 0) if e.node == "smart-operator"]
        assert [e.raw for e in entries] == [e.raw for e in written]
        assert entries[0].data["revision"] == sent["status"]["revisions"]["pt-1"]
        assert intakes[0].refused_batches == 0

        # The hub's own gathering never reads the operator's file, even when it lies in its directory.
        gathering_log = HubLog.connect(app_url, key=keys.signing_key("hub"))
        try:
            gathered = HubNodeGathering(node_log.parent, gathering_log, keys).gather_once()
        finally:
            gathering_log.close()
        assert gathered == []
    finally:
        await asyncio.to_thread(hub.stop)
        reading.close()
