"""The shared fixtures give each test real, isolated servers."""

from __future__ import annotations

import asyncio

import nats
import nats.js.errors
import psycopg

from smart.bus.mirror import mirror_bucket
from smart.hub.streams import ensure_hub_streams
from smart.node.records import RECORDS_BUCKET
from smart.runtime.background import BackgroundFloor
from smart.testing.plugin import FreshDatabase


def test_each_test_gets_a_fresh_empty_database(database: FreshDatabase) -> None:
    with psycopg.connect(database.url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        assert tables == (0,)
        conn.execute("CREATE TABLE traveler (id text)")
        current = conn.execute("SELECT current_database()").fetchone()
    assert current == (database.name,)


def test_a_second_test_does_not_see_the_first_ones_tables(database: FreshDatabase) -> None:
    with psycopg.connect(database.url) as conn:
        found = conn.execute("SELECT to_regclass('public.traveler')").fetchone()
    assert found == (None,)


async def _station_reads_hub_bucket(floor: BackgroundFloor) -> bytes:
    """A value the hub puts under the station's own key reaches the station's mirror.

    (A station's leaf signs in with least privilege: it reads its own keys and writes no hub bucket.)
    """
    assert floor.floor.hub is not None
    hub = await nats.connect(floor.floor.hub.url, **floor.settings.hub_nats_signin())
    station = await nats.connect(floor.floor.leaves["mt-1"].url)
    try:
        await ensure_hub_streams(hub.jetstream())
        bucket = await hub.jetstream().key_value(RECORDS_BUCKET)
        await bucket.put("mt-1.fixture.heartbeat", b"alive")
        mirror = await mirror_bucket(station.jetstream(), RECORDS_BUCKET)
        for _ in range(500):
            try:
                entry = await mirror.get("mt-1.fixture.heartbeat")
            except nats.js.errors.KeyNotFoundError:
                await asyncio.sleep(0.02)
                continue
            assert entry.value is not None
            return entry.value
        raise AssertionError("the hub's value never reached mt-1's mirror")
    finally:
        await station.close()
        await hub.close()


def test_nats_floor_has_a_hub_and_three_leaves_a_station_reads_through(
    nats_floor: BackgroundFloor,
) -> None:
    assert list(nats_floor.floor.leaves) == ["pt-1", "mt-1", "ut-1"]
    assert asyncio.run(_station_reads_hub_bucket(nats_floor)) == b"alive"
