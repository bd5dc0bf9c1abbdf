"""Listing a bucket's live keys from the stream's subject state, against a real hub nats-server."""

from __future__ import annotations

import nats
from nats.js.api import KeyValueConfig

from smart.bus import buckets
from smart.testing.plugin import FloorFactory


async def test_live_entries_names_every_live_key_and_skips_deleted_and_purged(
    floor_factory: FloorFactory,
) -> None:
    floor = floor_factory(stations=1)
    connection = await nats.connect(floor.hub_url, **floor.settings.hub_nats_signin())
    try:
        kv = await connection.jetstream().create_key_value(KeyValueConfig(bucket="listing", history=3))
        assert await buckets.live_entries(kv) == {}
        for station in ("pt-1", "mt-1", "ut-1", "sr-1"):
            await kv.put(f"{station}.penetrant", station.encode())
            await kv.put(f"{station}.magnetic", b"m")
        await kv.put("pt-1.penetrant", b"pt-1 again")  # a new revision of a key is listed once, as it is now
        await kv.delete("mt-1.penetrant")
        await kv.purge("ut-1.magnetic")

        penetrant = await buckets.live_entries(kv, "*.penetrant")
        assert penetrant == {
            "pt-1.penetrant": b"pt-1 again",
            "ut-1.penetrant": b"ut-1",
            "sr-1.penetrant": b"sr-1",
        }
        everything = await buckets.live_entries(kv)
        assert sorted(everything) == [
            "mt-1.magnetic",
            "pt-1.magnetic",
            "pt-1.penetrant",
            "sr-1.magnetic",
            "sr-1.penetrant",
            "ut-1.penetrant",
        ]
        assert list(await buckets.live_entries(kv, "sr-1.>")) == ["sr-1.magnetic", "sr-1.penetrant"]
    finally:
        await connection.close()
