"""The Floor started before the operator waits for the ``LEDGER`` stream, saying so, then takes batches.

On Kubernetes the operator makes the hub's streams at its start and no hub role may; the Floor's
pod may well start first. Here the hub NATS has no ``LEDGER`` stream: the Floor's start logs
``hub.waiting_for_ledger_stream`` and does not go on; once the stream is made (as the operator
makes it) the start completes and the intake runs. Past its patience it gives up, saying who makes
the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import nats
import pytest
from pydantic import SecretStr

from smart.bus import subjects
from smart.hub import streams
from smart.hub.services import HubServices
from smart.runtime.background import BackgroundFloor
from smart.testing.logs import captured
from smart.testing.patience import STATE_DEADLINE_S
from smart.testing.plugin import FreshDatabase, give_app_password, make_settings


async def _drop_ledger_stream(url: str) -> None:
    connection = await nats.connect(url)
    try:
        await connection.jetstream().delete_stream(subjects.LEDGER_STREAM)
    finally:
        await connection.close()


async def test_the_floor_waits_for_the_ledger_stream_then_starts_its_intake(
    database: FreshDatabase, nats_floor: BackgroundFloor, tmp_path: Path
) -> None:
    await _drop_ledger_stream(nats_floor.hub_url)
    settings = make_settings(tmp_path / "state", stations=1).model_copy(
        update={"database_url": SecretStr(database.url), "nats_url": nats_floor.hub_url}
    )
    give_app_password(database.server, settings.secrets_directory)
    hub = HubServices(settings, role="all")
    with captured() as logged:
        starting = asyncio.create_task(hub.start())
        try:
            deadline = asyncio.get_running_loop().time() + STATE_DEADLINE_S
            while not any(e["event"] == "hub.waiting_for_ledger_stream" for e in logged):
                assert not starting.done(), starting.exception()
                assert asyncio.get_running_loop().time() < deadline, "the Floor never said it waits"
                await asyncio.sleep(0.1)
            assert not starting.done() and hub.intake is None  # waiting, not running without it
            connection = await nats.connect(nats_floor.hub_url)
            try:
                await streams.ensure_hub_streams(connection.jetstream())  # what the operator does
            finally:
                await connection.close()
            await asyncio.wait_for(starting, STATE_DEADLINE_S)
            assert hub.intake is not None
            assert any(e["event"] == "hub.ledger_stream_found" for e in logged)
        finally:
            if not starting.done():
                starting.cancel()
                with contextlib.suppress(BaseException):
                    await starting
            await hub.stop()


async def test_past_its_patience_the_floor_gives_up_saying_who_makes_the_stream(
    nats_floor: BackgroundFloor,
) -> None:
    await _drop_ledger_stream(nats_floor.hub_url)
    connection = await nats.connect(nats_floor.hub_url)
    try:
        with pytest.raises(streams.StreamMissing, match="the operator makes it at its start"):
            await streams.wait_for_ledger_stream(connection.jetstream(), patience_s=0.5, every_s=0.1)
    finally:
        await connection.close()
