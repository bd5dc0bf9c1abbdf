"""The operator's ledger reaches the hub as a station's does: shipped, ingested once, never read as a file."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import threading
from pathlib import Path

import nats
from psycopg.conninfo import make_conninfo

from smart import ledger
from smart.bus import subjects
from smart.hub.gathering import HubNodeGathering, register_shipped_nodes
from smart.hub.intake import LedgerIntake
from smart.hub.streams import ensure_hub_streams
from smart.keys import KeyStore
from smart.ledger import hub_store
from smart.ledger.hub_store import HubLog
from smart.operator import shipping
from smart.runtime.background import BackgroundFloor
from smart.testing.plugin import FloorFactory, FreshDatabase
from tests.operator.conftest import CONTRACTS, STATIONS, LoopThread, Starter, eventually
from tests.operator.test_operator import CONTRACT, distributed, station


async def test_the_operators_entries_reach_the_hub_over_the_ledger_stream_once(
    start_operator: Starter, nats_floor: BackgroundFloor, database: FreshDatabase, tmp_path: Path
) -> None:
    password = database.app_password
    hub_store.migrate(database.url, app_password=password)
    app_url = make_conninfo(database.url, user=hub_store.APP_ROLE, password=password)
    keys = KeyStore(tmp_path / "keys")
    keys.signing_key("smart-operator")  # provisioned with the operator; the hub holds the public half
    intakes: list[LedgerIntake] = []

    async def hub_intake(stopping: asyncio.Event, started: threading.Event) -> None:
        """The hub's intake, as the hub runs it (another pod on a floor)."""
        hub = await nats.connect(nats_floor.hub_url, **nats_floor.settings.hub_nats_signin())
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
        assert [e.kind for e in written] == ["contract.bootstrapped", "contract.deployed"]

        api = await start_operator()  # the cursor survives: nothing is shipped twice

        async def at_hub() -> bool:
            return await asyncio.to_thread(reading.node_size, "smart-operator") == len(written)

        await eventually(at_hub, patience=60)
        entries = [e for e in await asyncio.to_thread(reading.entries, 0) if e.node == "smart-operator"]
        assert [e.raw for e in entries] == [e.raw for e in written]
        assert entries[1].data["revision"] == sent["status"]["revisions"]["pt-1"]
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


async def test_the_operators_cursor_moves_only_on_the_hubs_receipt_not_on_the_streams_ack(
    floor_factory: FloorFactory, database: FreshDatabase, tmp_path: Path
) -> None:
    """With the hub's stream up and no intake, every batch is stored (acked) and none accepted:
    the cursor stays; once the intake takes them, its receipt moves the cursor to the last entry."""
    floor = floor_factory(stations=1)
    keys = KeyStore(tmp_path / "keys")
    node_log = ledger.NodeLog.open(tmp_path / "ledger", node="smart-operator", keys=keys)
    for n in range(5):
        node_log.append(kind="contract.deployed", subject=f"c-{n}", data={"n": n}, actor="smart-operator")
    cursor = shipping.Cursor(tmp_path / "ledger" / "shipped-seq")
    hub = await nats.connect(floor.hub_url, **floor.settings.hub_nats_signin())
    js = hub.jetstream()
    await ensure_hub_streams(js)
    shipper = shipping.shipper(node_log, cursor)
    task = asyncio.create_task(shipper.run(hub))
    password = database.app_password
    hub_store.migrate(database.url, app_password=password)
    app_url = make_conninfo(database.url, user=hub_store.APP_ROLE, password=password)
    intake_log = HubLog.connect(app_url, key=keys.signing_key("hub"), admin=keys.signing_key("ledger-admin"))
    intake: LedgerIntake | None = None
    intake_task: asyncio.Task[None] | None = None
    try:

        async def stored() -> bool:
            info = await js.stream_info(subjects.LEDGER_STREAM)
            return info.state.messages > 0

        await eventually(stored)  # the stream acknowledged the batch: the old code's cursor moved here
        await asyncio.sleep(0.5)
        assert cursor.read() == -1 and shipper.shipped_seq == -1

        assert register_shipped_nodes(intake_log, keys) == ["smart-operator"]
        intake = LedgerIntake(hub, intake_log, stations=[])
        intake_task = asyncio.create_task(intake.run())

        async def accepted() -> bool:
            return cursor.read() == node_log.size() - 1

        await eventually(accepted)
        assert await asyncio.to_thread(intake_log.node_size, "smart-operator") == 5
        assert shipper.blocked is None and intake.refused_batches == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if intake_task is not None:
            intake_task.cancel()
            await asyncio.gather(intake_task, return_exceptions=True)
        if intake is not None:
            intake.close()
        intake_log.close()
        node_log.close()
        await hub.close()
