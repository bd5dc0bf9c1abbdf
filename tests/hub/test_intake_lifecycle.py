"""The ledger intake pauses through a hub outage but ends when its own connection is closed for good."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats

from smart.hub.intake import LedgerIntake
from smart.hub.streams import ensure_hub_streams
from smart.ledger import hub_store
from smart.runtime.background import BackgroundFloor
from smart.testing.patience import STATE_DEADLINE_S
from tests.hub.test_gathering import hub_log  # noqa: F401 - the fixture


async def test_intake_ends_once_its_connection_is_closed(
    nats_floor: BackgroundFloor,
    hub_log: hub_store.HubLog,  # noqa: F811
    tmp_path: Path,
) -> None:
    assert nats_floor.floor.hub is not None
    connection = await nats.connect(nats_floor.floor.hub.url, **nats_floor.settings.hub_nats_signin())
    await ensure_hub_streams(connection.jetstream())
    intake = LedgerIntake(connection, hub_log, stations=["pt-1"])
    running = asyncio.create_task(intake.run())
    try:
        await asyncio.sleep(0.5)
        assert not running.done()  # waiting for batches
        await connection.close()
        await asyncio.wait_for(
            running, timeout=STATE_DEADLINE_S
        )  # ends by itself rather than pausing forever
    finally:
        running.cancel()
        intake.close()
