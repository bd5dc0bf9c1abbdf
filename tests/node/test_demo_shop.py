"""``smart up --demo-shop``: the demo's records reach pt-1 and each badge does what the floor says it will."""

from __future__ import annotations

from pathlib import Path

import nats

from smart.keys import KeyStore
from smart.node import records
from smart.node.station import StationRuntime
from smart.runtime import demo_shop
from smart.runtime.background import BackgroundFloor
from tests.node.conftest import Hub, agent_for, eventually
from tests.node.test_job_walkthrough import AT, Bench, deploy, entries


async def test_demo_shop_badges_and_traveler_do_what_smart_up_prints(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    await records.ensure_records_bucket(hub.connection.jetstream())
    await deploy(hub, "penetrant")
    seeded = await demo_shop.seed(hub.connection.jetstream(), AT)
    runtime = StationRuntime(agent_for(nats_floor, demo_shop.STATION, keys, tmp_path))
    await runtime.start()
    client = await nats.connect(nats_floor.floor.leaves[demo_shop.STATION].url)
    try:
        await eventually(lambda: runtime.serving() and "gatekeeper" in runtime.modules, what="modules")
        await eventually(lambda: len(entries(runtime, "record.received")) >= seeded, what="records mirrored")
        pt = Bench(runtime, client, hub)
        at = AT.isoformat()

        assert (await pt.job("badge", person="op-9", at=at))["allowed"] is False
        assert "pt-near-vision" in pt.denials()
        assert (await pt.job("badge", person="tr-1", at=at))["allowed"] is False
        assert (await pt.job("badge", person="tr-1", supervisor="op-7", at=at))["allowed"] is True
        assert (await pt.job("badge", person="op-7", at=at))["allowed"] is True
        scanned = await pt.job("scan", at=at, **demo_shop.TRAVELER)
        assert scanned["allowed"], scanned["reasons"]
        assert set(demo_shop.BADGES) == {p for p in runtime.facts().people}
    finally:
        await client.close()
        await runtime.stop()
