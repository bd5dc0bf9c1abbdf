"""``smart up --demo-shop``: the demo's records reach pt-1 and each badge does what the floor says it will."""

from __future__ import annotations

from pathlib import Path

import nats

from smart import ledger
from smart.hub.streams import ensure_hub_streams
from smart.hub.vault import publish as vault_publish
from smart.hub.vault.smartid import SmartId
from smart.keys import KeyStore
from smart.node import records
from smart.node.station import StationRuntime
from smart.runtime import demo_shop
from smart.runtime.background import BackgroundFloor
from smart.testing.plugin import FloorFactory, FreshDatabase
from tests.node.conftest import Hub, agent_for, eventually
from tests.node.test_job_walkthrough import AT, Bench, deploy, entries


async def test_demo_shop_badges_and_traveler_do_what_smart_up_prints(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    await records.ensure_records_bucket(hub.connection.jetstream())
    await deploy(hub, "penetrant")
    seeded = await demo_shop.seed(hub.connection.jetstream(), AT, stations={demo_shop.STATION})
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
        assert set(demo_shop.PEOPLE_AT[demo_shop.STATION]) == {p for p in runtime.facts().people}
        assert set(demo_shop.BADGES) == {b for at_station in demo_shop.PEOPLE_AT.values() for b in at_station}
    finally:
        await client.close()
        await runtime.stop()


async def test_the_demo_po_line_reaches_sr_1_which_admits_only_its_own_badges_and_ships_with_the_qms_c_of_c(
    floor_factory: FloorFactory, keys: KeyStore, tmp_path: Path
) -> None:
    floor = floor_factory(stations=6)
    assert floor.floor.hub is not None
    connection = await nats.connect(floor.floor.hub.url, **floor.settings.hub_nats_signin())
    await ensure_hub_streams(connection.jetstream())
    hub = Hub(connection, keys)
    await records.ensure_records_bucket(connection.jetstream())
    await deploy(hub, "shipping-receiving")
    seeded = await demo_shop.seed(connection.jetstream(), AT, stations={demo_shop.SHIPPING})
    runtime = StationRuntime(agent_for(floor, demo_shop.SHIPPING, keys, tmp_path))
    await runtime.start()
    client = await nats.connect(floor.floor.leaves[demo_shop.SHIPPING].url)
    try:
        await eventually(lambda: runtime.serving() and "logistics" in runtime.modules, what="modules")
        await eventually(lambda: len(entries(runtime, "record.received")) >= seeded, what="records mirrored")
        sr = Bench(runtime, client, hub)
        at = AT.isoformat()
        stranger = await sr.job("badge", person="op-7", at=at)  # pt-1's operator: no access to sr-1
        assert not stranger["allowed"] and stranger["reasons"][0]["rule"] == "gatekeeper.no-access"
        assert (await sr.job("badge", person="ship-1", at=at))["allowed"]
        traveler = {k: v for k, v in demo_shop.TRAVELER.items()}
        received = await sr.job("receive", received=1, at=at, **traveler)
        assert received["allowed"] and received["state"] == "received", received["reasons"]
        assert (await sr.job("badge", person="qm-1", at=at))["state"] == "received"
        shipped = await sr.job("ship", quantities={"accepted": 1}, signCoc=True, at=at)
        assert shipped["allowed"] and shipped["state"] == "shipped", shipped["reasons"]
        assert runtime.facts().jobs[traveler["job"]].coc_signed_by == "qm-1"
    finally:
        await client.close()
        await runtime.stop()
        await connection.close()


async def test_smart_up_demo_people_are_smart_ids_verified_by_signed_badge_at_pt_1_and_sr_1(
    floor_factory: FloorFactory, keys: KeyStore, tmp_path: Path, database: FreshDatabase
) -> None:
    floor = floor_factory(stations=6)
    assert floor.floor.hub is not None
    connection = await nats.connect(floor.floor.hub.url, **floor.settings.hub_nats_signin())
    await ensure_hub_streams(connection.jetstream())
    hub = Hub(connection, keys)
    await records.ensure_records_bucket(connection.jetstream())
    await deploy(hub, "penetrant")
    await deploy(hub, "shipping-receiving")
    with ledger.NodeLog.open(tmp_path / "smart-id", node="smart-id", keys=keys) as smart_id_log:
        smartid = SmartId(
            database.url, key=keys.signing_key("smart-id"), ledger=smart_id_log, clock=lambda: AT
        )
        assert demo_shop.enrol(smartid, AT) == len(demo_shop.ENROLLED)
        assert demo_shop.enrol(smartid, AT) == 0  # a floor started again leaves SMART-ID's people be
        seeded = await demo_shop.seed(connection.jetstream(), AT, people=False)
        published = await vault_publish.publish(smartid, connection.jetstream(), ["pt-1", "sr-1"])
        assert published.badges == {"pt-1": 4, "sr-1": 2}
    runtimes = {s: StationRuntime(agent_for(floor, s, keys, tmp_path)) for s in ("pt-1", "sr-1")}
    clients = {}
    try:
        for station, runtime in runtimes.items():
            await runtime.start()
            clients[station] = await nats.connect(floor.floor.leaves[station].url)
        for runtime in runtimes.values():
            await eventually(lambda r=runtime: r.serving() and "gatekeeper" in r.modules, what="modules")
        pt1, sr1 = (runtimes[s] for s in ("pt-1", "sr-1"))
        await eventually(
            lambda: (
                set(pt1.facts().people) == set(demo_shop.PEOPLE_AT["pt-1"])
                and pt1.badges is not None
                and pt1.badges.required
                and len(pt1.badges.badges) == 4
            ),
            what="pt-1 holds SMART-ID's people and badges",
        )
        await eventually(
            lambda: (
                set(sr1.facts().people) == set(demo_shop.PEOPLE_AT["sr-1"])
                and sr1.badges is not None
                and len(sr1.badges.badges) == 2
            ),
            what="sr-1 holds SMART-ID's people and badges",
        )
        assert len(entries(pt1, "record.received")) + len(entries(sr1, "record.received")) >= seeded
        assert sr1.facts().people["qm-1"].authorities == ("coc-signature", "quality-manager")
        pt = Bench(pt1, clients["pt-1"], hub)
        sr = Bench(sr1, clients["sr-1"], hub)
        at = AT.isoformat()
        assert (await pt.job("badge", person="op-7", at=at))["allowed"]
        lapsed = await pt.job("badge", person="op-9", at=at)
        assert not lapsed["allowed"] and "pt-near-vision" in {r["rule"] for r in lapsed["reasons"]}
        assert (await pt.job("badge", person="op-7", at=at))["allowed"]
        assert (await pt.job("scan", at=at, **demo_shop.TRAVELER))["allowed"]
        elsewhere = await sr.job("badge", person="op-7", at=at)  # no access to sr-1: refused
        assert not elsewhere["allowed"]
        assert {"access.signed-badge", "gatekeeper.no-access"} <= {r["rule"] for r in elsewhere["reasons"]}
        assert (await sr.job("badge", person="qm-1", at=at))["allowed"]
    finally:
        for client in clients.values():
            await client.close()
        for runtime in runtimes.values():
            await runtime.stop()
        await connection.close()
