"""The shared fixtures give each test real, isolated servers."""

from __future__ import annotations

import asyncio

import nats
import psycopg

from smart.bus.mirror import hub_put, mirror_bucket
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


async def _station_writes_to_hub_bucket(floor: BackgroundFloor) -> bytes:
    assert floor.floor.hub is not None
    hub = await nats.connect(floor.floor.hub.url)
    station = await nats.connect(floor.floor.leaves["mt-1"].url)
    try:
        bucket = await hub.jetstream().create_key_value(bucket="heartbeats", history=1)
        await mirror_bucket(station.jetstream(), "heartbeats")
        await hub_put(station, "heartbeats", "mt-1", b"alive")
        entry = await bucket.get("mt-1")
        assert entry.value is not None
        return entry.value
    finally:
        await station.close()
        await hub.close()


def test_nats_floor_has_a_hub_and_three_leaves_a_station_can_write_through(
    nats_floor: BackgroundFloor,
) -> None:
    assert list(nats_floor.floor.leaves) == ["pt-1", "mt-1", "ut-1"]
    assert asyncio.run(_station_writes_to_hub_bucket(nats_floor)) == b"alive"
