"""Each station's leaf signs in to the hub as that station, with least privilege, on the real floor.

The floor's hub nats-server lists one user per station leaf with the
permissions from ``smart.access.stationauth``; a client on a station's leaf
can reach at the hub only what that station may (its own contract keys, its
own subjects), and a leaf that brings no credentials is refused.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import nats
import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import ExternalStream, StreamConfig, StreamSource

from smart.access import stationauth
from smart.bus import mirror, subjects
from smart.hub.streams import ensure_hub_streams
from smart.runtime import nats as natsconf
from smart.runtime.background import BackgroundFloor
from smart.testing.plugin import FloorFactory

OWN, OTHER = "pt-1", "mt-1"


async def _hub(floor: BackgroundFloor) -> NatsClient:
    assert floor.floor.hub is not None
    connection = await nats.connect(floor.floor.hub.url, **floor.settings.hub_nats_signin())  # as the driver
    await ensure_hub_streams(connection.jetstream())
    contracts = await connection.jetstream().key_value(subjects.CONTRACTS_BUCKET)
    await contracts.put(subjects.contract_key(OWN, "penetrant"), b"pt-1's bundle")
    await contracts.put(subjects.contract_key(OTHER, "magnetic-particle"), b"mt-1's bundle")
    return connection


def _leaves_at_hub(floor: BackgroundFloor) -> int:
    assert floor.floor.hub is not None
    monitor = f"http://{floor.floor.hub.host}:{floor.floor.hub.monitor_port}/leafz"
    return int(httpx.get(monitor, timeout=2).json()["leafnodes"])


async def _signed_in(floor: BackgroundFloor, leaves: int) -> None:
    deadline = time.monotonic() + 15
    while _leaves_at_hub(floor) != leaves:
        assert time.monotonic() < deadline, f"{leaves} leaves never signed in to the hub"
        await asyncio.sleep(0.05)


async def _on_leaf(floor: BackgroundFloor, station: str) -> NatsClient:
    """A client of ``station``'s leaf, as the station's agent connects (replies on its own inbox)."""
    return await nats.connect(floor.floor.leaves[station].url, inbox_prefix=stationauth.inbox_prefix(station))


async def test_a_station_leaf_reads_its_own_contract_keys_at_the_hub_and_no_others(
    floor_factory: FloorFactory,
) -> None:
    floor = floor_factory(stations=2)
    hub = await _hub(floor)
    await _signed_in(floor, 2)
    leaf = await _on_leaf(floor, OWN)
    try:
        at_hub = leaf.jetstream(domain=natsconf.HUB_DOMAIN, timeout=1.0)
        other_key = f"$KV.{subjects.CONTRACTS_BUCKET}.{subjects.contract_key(OTHER, 'magnetic-particle')}"
        stream = mirror.stream_name(subjects.CONTRACTS_BUCKET)
        with pytest.raises((nats.errors.Error, nats.js.errors.Error)):  # refused at the hub
            await at_hub.get_last_msg(stream, other_key)
        # Nor through a mirror of its own making: the hub never serves it mt-1's keys.
        spy = StreamConfig(
            name="SPY",
            mirror=StreamSource(
                name=stream,
                filter_subject=other_key,
                external=ExternalStream(
                    api=f"$JS.{natsconf.HUB_DOMAIN}.API", deliver=subjects.mirror_deliver_prefix(OWN)
                ),
            ),
        )
        await leaf.jetstream().add_stream(spy)

        # The station's mirror (as its agent makes it) holds its own keys only.
        copy = await mirror.mirror_bucket(
            leaf.jetstream(), subjects.CONTRACTS_BUCKET, history=subjects.CONTRACTS_HISTORY
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                entry = await copy.get(subjects.contract_key(OWN, "penetrant"))
                break
            except nats.js.errors.KeyNotFoundError:
                assert time.monotonic() < deadline, "pt-1's contract never reached its mirror"
                await asyncio.sleep(0.05)
        assert entry.value == b"pt-1's bundle"
        with pytest.raises(nats.js.errors.KeyNotFoundError):
            await copy.get(subjects.contract_key(OTHER, "magnetic-particle"))
        assert (await leaf.jetstream().stream_info("SPY")).state.messages == 0
    finally:
        await leaf.close()
        await hub.close()


async def test_a_station_leaf_cannot_publish_as_another_station(floor_factory: FloorFactory) -> None:
    floor = floor_factory(stations=2)
    hub = await _hub(floor)
    await _signed_in(floor, 2)
    leaf = await _on_leaf(floor, OWN)
    try:
        seen: list[str] = []
        own_arrived = asyncio.Event()

        async def on_message(message: Msg) -> None:
            seen.append(message.subject)
            if message.subject.startswith(f"station.{OWN}."):
                own_arrived.set()

        await hub.subscribe("station.>", cb=on_message)
        await hub.flush()
        deadline = time.monotonic() + 15
        while not own_arrived.is_set():  # until the hub's interest has reached the leaf
            await leaf.publish(subjects.station_subject(OTHER, "alert"), b"forged")
            await leaf.publish(subjects.station_subject(OWN, "alert"), b"real")
            await leaf.flush()
            await asyncio.sleep(0.05)
            assert time.monotonic() < deadline, "pt-1's own alert never reached the hub"
        await asyncio.sleep(0.2)
        assert seen and all(subject == f"station.{OWN}.alert" for subject in seen), seen

        # Nor ship a ledger batch in another station's name: the hub's stream never gets it.
        js = leaf.jetstream(timeout=1.0)
        await js.publish(subjects.ledger_subject(OWN), b"own batch")  # acknowledged by the hub
        with pytest.raises((nats.errors.TimeoutError, nats.js.errors.NoStreamResponseError)):
            await js.publish(subjects.ledger_subject(OTHER), b"forged batch")
        info = await hub.jetstream().stream_info(subjects.LEDGER_STREAM)
        assert info.state.messages == 1
    finally:
        await leaf.close()
        await hub.close()


async def test_a_leaf_without_its_stations_credentials_is_refused_by_the_hub(
    floor_factory: FloorFactory,
) -> None:
    floor = floor_factory(stations=1)
    leaf = floor.floor.leaves[OWN]
    await _signed_in(floor, 1)  # the floor's own leaf, with its credentials
    floor.run(floor.floor.supervisor.stop_child(leaf.name))
    natsconf.write_config(floor.floor.layout.nats_config(leaf.name), leaf.config())  # no credentials
    floor.run(floor.floor.supervisor.start_child(leaf.name))
    await asyncio.sleep(1.0)  # ten redials at the hub
    assert _leaves_at_hub(floor) == 0
    hub_log = (floor.floor.layout.logs / "hub.log").read_text()
    assert "authentication error" in hub_log.lower()
    password = (floor.floor.layout.secrets / f"nats-{stationauth.leaf_user_name(OWN)}.password").read_text()
    for log in floor.floor.layout.logs.glob("*.log"):  # the secret is in the configs (0600), never a log
        assert password.strip() not in log.read_text(), log.name
    config = floor.floor.layout.nats_config("hub")
    assert config.stat().st_mode & 0o077 == 0
