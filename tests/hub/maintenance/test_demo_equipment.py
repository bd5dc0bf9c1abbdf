"""The demo shop's equipment comes through MaintenanceHub: registered, calibrated, published by it alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats

from smart.node import records
from smart.runtime import demo_shop
from smart.testing.plugin import FloorFactory
from tests.hub.conftest import HubDatabase
from tests.hub.maintenance.shop import make


async def test_the_demo_shops_meter_and_tam_panel_are_registered_calibrated_and_published(
    hub_db: HubDatabase, floor_factory: FloorFactory, tmp_path: Path
) -> None:
    floor = floor_factory(stations=1)
    assert floor.floor.hub is not None
    connection = await nats.connect(floor.floor.hub.url)
    shop = make(hub_db, tmp_path, js=connection.jetstream())
    now = datetime.now(UTC)
    try:
        await records.ensure_records_bucket(connection.jetstream())
        assert (
            await demo_shop.seed_people_and_equipment(
                connection.jetstream(), now, people=False, equipment=False
            )
            == 2
        )
        assert await demo_shop.load_equipment(shop.hub, now) == 2
        assert await demo_shop.load_equipment(shop.hub, now) == 0  # a restarted demo floor adds nothing
        bucket = await connection.jetstream().key_value(records.RECORDS_BUCKET)
        meter = records.parse(
            "equipment", json.loads((await bucket.get("pt-1.equipment.UV-METER-1")).value or b"")
        )
        panel = records.parse(
            "equipment", json.loads((await bucket.get("pt-1.equipment.TAM-146040")).value or b"")
        )
        assert meter.kind == "light-meter" and meter.calibration.in_tolerance
        assert meter.calibration.at == now - timedelta(days=60)
        assert (
            meter.calibration.due.date() == (now + timedelta(days=123)).date() or meter.calibration.due > now
        )
        assert panel.attributes["finish"] == "grit-blasted"
        keys = set(await bucket.keys())
        assert {"pt-1.lot.PEN-2291", "pt-1.lot.PEN-1990"} <= keys  # the lots still go in directly
        kinds = [e.kind for e in shop.ledger.entries()]
        assert kinds == ["equipment.registered", "calibration.recorded", "equipment.registered"]
    finally:
        shop.hub.close()
        await connection.close()
