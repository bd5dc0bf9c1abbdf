"""What the rule-bound modules write before they judge: checks, calibrations, lots, the e-stop."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from pathlib import Path

from smart.contracts import facts as f
from smart.keys import KeyStore
from smart.modules.safety import gpio, pins
from smart.runtime.background import BackgroundFloor
from tests.node.conftest import Hub
from tests.node.test_job_walkthrough import (
    AT,
    DAY,
    MORNING,
    PENETRANT_SHOP,
    PENETRANT_START,
    PENETRANT_STEPS,
    at,
    bench,
    checks_done,
    reading,
    walk_penetrant_to_the_gate,
)

STALE_METER = f.EquipmentRecord("UV-METER-2", "light-meter", calibration=f.Calibration(AT - 300 * DAY))
PIN_MAP = pins.PinMap(green=5, amber=6, red=13, buzzer=19, relay=26, estop=17)
SHOP = {**PENETRANT_SHOP, "equipment": [*PENETRANT_SHOP["equipment"], STALE_METER]}


def _event(action: str = "operate", **changes: object) -> f.Event:
    return dataclasses.replace(f.Event(action=action, at=AT, station="pt-1", person="op-7"), **changes)  # type: ignore[arg-type]


async def test_a_check_taken_with_a_meter_past_calibration_is_refused_and_recorded_failed_locking_the_line(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", SHOP) as pt:
        uva = {"uv-a-intensity": reading(1200, "µW/cm²"), "ambient-white-light": reading(1, "fc")}
        refused = await pt.check("uv-a-intensity", uva, meter="UV-METER-2")
        assert refused["outcome"] == "deny" and refused["effects"] == {
            "check": "uv-a-intensity",
            "passed": False,
        }
        assert [r["rule"] for r in refused["reasons"]] == ["pt-light-meter-calibrated"]
        check = pt.runtime.facts().checks["uv-a-intensity"]
        assert not check.passed and check.readings["uv-a-intensity"] == f.Reading(1200, "µW/cm²")
        assert pt.entries("record.check")[-1].data["value"]["passed"] is False

        use = await pt.module("maintenance", "use", _event(equipment=("UV-METER-1",)))
        assert "pt-uva-checked-today" in [r["rule"] for r in use["reasons"]]
        assert "locked until a rerun passes" in pt.denials()["pt-uva-checked-today"]

        rerun = await pt.check("uv-a-intensity", uva, when=MORNING + timedelta(minutes=5))
        assert rerun["outcome"] == "allow" and pt.runtime.facts().checks["uv-a-intensity"].passed


async def test_a_gauge_found_out_of_tolerance_is_refused_and_its_record_says_so(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", SHOP) as pt:
        event = _event("measure", equipment=("UV-METER-1",))
        found = await pt.module(
            "maintenance", "calibration", event, {"equipment": "UV-METER-1", "inTolerance": False}
        )
        assert found["outcome"] == "deny"
        assert found["effects"] == {"equipment": "UV-METER-1", "inTolerance": False, "recall": []}
        assert "out of tolerance" in found["reasons"][0]["message"]
        assert pt.runtime.facts().equipment["UV-METER-1"].calibration == f.Calibration(AT, in_tolerance=False)
        unknown = await pt.module("maintenance", "calibration", event, {"equipment": "NOPE"})
        assert unknown["reasons"][0]["rule"] == "maintenance.calibration.equipment"


async def test_opening_a_lot_is_kept_once_and_an_unknown_lot_is_refused(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", SHOP) as pt:
        opened = await pt.module("inventory", "lot", _event(lots=("PEN-2291",)), {"lot": "PEN-2291"})
        assert opened["outcome"] == "allow" and pt.runtime.facts().lots["PEN-2291"].opened == AT
        later = _event(lots=("PEN-2291",), at=AT + DAY)
        await pt.module("inventory", "lot", later, {"lot": "PEN-2291"})
        assert pt.runtime.facts().lots["PEN-2291"].opened == AT
        unknown = await pt.module("inventory", "lot", _event(), {"lot": "PEN-0"})
        assert unknown["outcome"] == "deny" and unknown["reasons"][0]["rule"] == "inventory.lot.unknown"


async def test_the_e_stop_refuses_every_safety_decision_until_it_is_reset(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", SHOP) as pt:
        gloves = _event(ppe=frozenset({"nitrile-gloves"}))
        assert (await pt.module("safety", "ppe", gloves))["outcome"] == "allow"
        pressed = await pt.module("safety", "estop", gloves, {"pressed": True})
        assert pressed["outcome"] == "deny" and pressed["reasons"][0]["rule"] == "safety.estop"
        assert (await pt.module("safety", "ppe", gloves))["reasons"][0]["rule"] == "safety.estop"
        assert (await pt.module("safety", "estop", gloves, {"pressed": False}))["outcome"] == "allow"
        assert (await pt.module("safety", "ppe", gloves))["outcome"] == "allow"


async def test_a_badge_is_judged_by_the_person_rules_and_a_start_by_every_gatekeeper_rule(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", SHOP) as pt:
        assert (await pt.module("gatekeeper", "badge", _event()))["outcome"] == "allow"
        start = await pt.module("gatekeeper", "start", _event())
        assert [r["rule"] for r in start["reasons"]] == ["pt-traveler-authorised"]
        assert "no PO or traveler scanned" in start["reasons"][0]["message"]


async def test_the_interlock_closes_on_an_allowed_gate_stays_closed_while_the_job_runs_and_opens_at_release(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    presses: list[bool] = []
    station_gpio = gpio.simulated(PIN_MAP, lease_s=0.6, on_estop=presses.append)
    try:
        relay = station_gpio.interlock
        async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", SHOP, interlock=relay) as pt:
            await checks_done(pt)
            refused = await walk_penetrant_to_the_gate(pt, lots=["PEN-1990"])
            assert not refused["allowed"] and not relay.energised
            assert (await pt.job("start", at=at(3), **PENETRANT_START))["allowed"]
            assert relay.energised and relay.state.job == "J-1"
            revision = pt.runtime.agent.enforcer.revisions["penetrant"]
            assert relay.state.revision == f"penetrant@{revision}"
            await asyncio.sleep(1.5)  # longer than the lease: the runtime renews it
            assert relay.energised
            for minutes, step in enumerate(PENETRANT_STEPS, start=3):
                assert (await pt.job("step", at=at(minutes * 15), **step))["allowed"]
            assert (await pt.job("release", signer="op-7", at=at(200)))["allowed"]
            assert not relay.energised and "ended" in relay.state.reason
    finally:
        station_gpio.close()


async def test_a_meter_found_out_of_tolerance_lists_every_job_it_served_since_its_last_good_calibration(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", SHOP) as pt:
        await checks_done(pt)
        assert (await walk_penetrant_to_the_gate(pt))["allowed"]
        found = await pt.module(
            "maintenance",
            "calibration",
            _event("measure", equipment=("UV-METER-1",), at=AT + DAY),
            {"equipment": "UV-METER-1", "inTolerance": False},
        )
        assert found["outcome"] == "deny" and found["effects"]["recall"] == ["J-1"]
        recall = pt.entries("maintenance.recall")[-1]
        assert recall.data["jobs"] == ["J-1"] and recall.data["since"] == (AT - 60 * DAY).isoformat()
        stale = await pt.module(
            "maintenance",
            "calibration",
            _event("measure", equipment=("UV-METER-2",)),
            {"equipment": "UV-METER-2", "inTolerance": False},
        )
        assert stale["effects"]["recall"] == []
