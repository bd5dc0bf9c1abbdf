"""From the hub to the gate: a calibration's due at the station, an overdue meter refused, a recall's block.

Real PostgreSQL and NATS: pt-1 runs with the penetrant contract and mirrors
``station-records``; MaintenanceHub publishes its meter there; the station's
decisions ship to the hub log through the intake, where the recall finds them.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from smart.contracts import facts as f
from smart.hub.maintenance import recall
from smart.keys import KeyStore
from smart.runtime.background import BackgroundFloor
from tests.hub.conftest import HubDatabase
from tests.hub.maintenance.shop import certificate, make, meter
from tests.node.conftest import Hub, eventually
from tests.node.test_job_walkthrough import (
    AT,
    DAY,
    PENETRANT_SHOP,
    bench,
    checks_done,
    walk_penetrant_to_the_gate,
)

#: pt-1's records without its meter: the meter comes from MaintenanceHub.
SHOP = {**PENETRANT_SHOP, "equipment": [e for e in PENETRANT_SHOP["equipment"] if e.id != "UV-METER-1"]}


async def test_a_calibration_reaches_the_gate_an_overdue_meter_is_refused_and_a_recall_blocks_it(
    nats_floor: BackgroundFloor,
    hub: Hub,
    keys: KeyStore,
    hub_db: HubDatabase,
    tmp_path: Path,
) -> None:
    shop = make(hub_db, tmp_path / "hub", js=hub.connection.jetstream(), keys=keys)
    maintenance = shop.hub
    try:
        async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", SHOP) as pt:
            maintenance.register(meter(), actor="qm-anna")
            # five months old, inside the contract's 6 months, but the certificate said due yesterday
            stale = certificate(AT - 150 * DAY, next_due=(AT - DAY).date())
            maintenance.record_calibration("UV-METER-1", stale, actor="qm-anna")
            assert await maintenance.publish_pending() == 1

            def held() -> f.EquipmentRecord | None:
                return pt.runtime.facts().equipment.get("UV-METER-1")

            await eventually(lambda: held() is not None, what="the meter at pt-1")
            calibration = held().calibration  # type: ignore[union-attr]
            assert calibration is not None and calibration.due is not None
            assert calibration.due.date() == AT.date()  # the end of its due day, yesterday
            refused = await walk_penetrant_to_the_gate(pt)
            assert not refused["allowed"]
            reasons = {r["rule"]: r["message"] for r in refused["reasons"]}
            assert "current until" in reasons["pt-light-meter-calibrated"], reasons

            # re-calibrated yesterday: the station holds it and the gate allows job J-1 with the meter
            maintenance.record_calibration("UV-METER-1", certificate(AT - DAY), actor="qm-anna")
            await maintenance.publish_pending()
            await eventually(
                lambda: (c := held().calibration) is not None and c.at == AT - DAY,  # type: ignore[union-attr]
                what="the new calibration at pt-1",
            )
            await checks_done(pt)
            gate = await pt.job(
                "start",
                at=(AT + timedelta(minutes=3)).isoformat(),
                equipment=["UV-METER-1", "TAM-146040"],
                lots=["PEN-2291"],
                ppe=["nitrile-gloves"],
                procedure="PT-PROC-12",
                procedureRevision="D",
                attributes={"part-finish": "grit-blasted"},
            )
            assert gate["allowed"], gate["reasons"]

            # the stations' decisions reach the hub log; the meter found out of tolerance six hours later
            def served() -> list[str]:
                maintenance.index_uses()
                with maintenance.pool.connection() as conn:
                    uses = recall.impact(conn, equipment="UV-METER-1", since=AT - DAY, until=AT + DAY)
                return [u.job for u in uses]

            await eventually(lambda: served() == ["J-1"], what="J-1's use of the meter on the hub log")
            found = certificate(AT + timedelta(hours=6), in_tolerance=False, as_found="+9 % at 1000 µW/cm²")
            _, opened = maintenance.record_calibration("UV-METER-1", found, actor="qm-anna")
            assert opened is not None and [(r.job, r.station) for r in opened.reviews] == [("J-1", "pt-1")]
            assert opened.since == AT - DAY
            await maintenance.publish_pending()
            await eventually(
                lambda: (c := held().calibration) is not None and not c.in_tolerance,  # type: ignore[union-attr]
                what="the block at pt-1",
            )
            later = f.Event(
                action="operate",
                at=AT + timedelta(hours=7),
                station="pt-1",
                person="op-7",
                equipment=("UV-METER-1",),
            )
            blocked = await pt.module("maintenance", "use", later)
            assert blocked["outcome"] == "deny"
            assert any("out of tolerance" in r["message"] for r in blocked["reasons"]), blocked["reasons"]
            earlier = await pt.module(
                "maintenance", "use", dataclasses.replace(later, at=AT + timedelta(hours=1))
            )
            assert "pt-light-meter-calibrated" not in {
                r["rule"] for r in earlier["reasons"]
            }  # judged at its time
    finally:
        maintenance.close()
