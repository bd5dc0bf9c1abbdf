"""What the modules write and count: checks, calibrations, lots, usage counters, stock, the e-stop."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from pathlib import Path

import nats

from smart.contracts import facts as f
from smart.keys import KeyStore
from smart.modules.safety import gpio, pins
from smart.node.station import StationRuntime
from smart.runtime.background import BackgroundFloor
from tests.node.conftest import Hub, agent_for, eventually
from tests.node.test_job_walkthrough import (
    AT,
    DAY,
    MORNING,
    PENETRANT_SHOP,
    PENETRANT_START,
    PENETRANT_STEPS,
    Bench,
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


# -- usage counters (MaintenanceNode) ------------------------------------------------------------

PANEL_LIMIT = f.UsageLimit("panel-clean", "cycles", every=3, due_within=1)
COUNTED_SHOP = {
    **PENETRANT_SHOP,
    "equipment": [
        PENETRANT_SHOP["equipment"][0],
        dataclasses.replace(PENETRANT_SHOP["equipment"][1], usage_limits=(PANEL_LIMIT,)),
    ],
}


def _panel_count(pt: Bench) -> f.UsageCount | None:
    held = pt.runtime.held("usage", "TAM-146040/panel-clean")
    assert held is None or isinstance(held, f.UsageCount)
    return held


async def test_each_allowed_gate_counts_the_panels_use_and_a_refused_gate_counts_nothing(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", COUNTED_SHOP) as pt:
        await checks_done(pt)
        refused = await walk_penetrant_to_the_gate(pt, lots=["PEN-1990"])
        assert not refused["allowed"] and _panel_count(pt) is None
        gate = await pt.job("start", at=at(3), **PENETRANT_START)
        assert gate["allowed"] and gate["outcome"] == "allow", gate["reasons"]
        gated, counted = [d for d in gate["decisions"] if d["module"] == "maintenance"]
        assert gated["effects"]["counters"][0]["count"] == 0.0  # judged before the use, counted after
        assert counted["effects"]["counters"] == [
            {
                "equipment": "TAM-146040",
                "task": "panel-clean",
                "unit": "cycles",
                "count": 1.0,
                "threshold": 3.0,
                "status": "ok",
            }
        ]
        panel = _panel_count(pt)
        assert panel is not None and panel.since_service == 1 and panel.total == 1
        assert pt.entries("record.usage")[-1].data["value"]["since_service"] == 1


async def test_a_panel_used_to_its_threshold_warns_then_blocks_until_serviced_and_its_count_survives_restart(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    panel = _event(equipment=("TAM-146040",))
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", COUNTED_SHOP) as pt:
        await checks_done(pt)
        for _ in range(2):
            assert (await pt.module("maintenance", "count", panel))["outcome"] == "allow"
        due = await pt.module("maintenance", "use", panel)
        assert due["outcome"] == "warn" and [r["rule"] for r in due["reasons"]] == ["maintenance.usage-due"]
        assert due["reasons"][0]["severity"] == "warn"
        assert "TAM-146040 panel-clean due: 1 cycles left" in due["reasons"][0]["message"]
        await pt.module("maintenance", "count", panel)
    restarted = StationRuntime(agent_for(nats_floor, "pt-1", keys, tmp_path))
    await restarted.start()
    client = await nats.connect(nats_floor.floor.leaves["pt-1"].url)
    try:
        await eventually(lambda: "maintenance" in restarted.modules and restarted.serving(), what="serving")
        pt = Bench(restarted, client, hub)
        overdue = await pt.module("maintenance", "use", panel)
        assert overdue["outcome"] == "deny"
        (reason,) = [r for r in overdue["reasons"] if r["rule"] == "maintenance.usage-overdue"]
        assert reason["values"] == {
            "equipment": "TAM-146040",
            "task": "panel-clean",
            "count": 3.0,
            "threshold": 3.0,
            "unit": "cycles",
        }
        assert "TAM-146040 panel-clean overdue: 3 cycles since service, due at 3" in reason["message"]
        assert "maintenance.usage-overdue" in pt.denials()

        nobody = await pt.module(
            "maintenance", "service", _event(person=None), {"equipment": "TAM-146040", "task": "panel-clean"}
        )
        assert nobody["outcome"] == "deny" and nobody["reasons"][0]["rule"] == "maintenance.service.person"
        wrong = await pt.module("maintenance", "service", panel, {"equipment": "TAM-146040", "task": "bulb"})
        assert wrong["reasons"][0]["rule"] == "maintenance.service.task"
        assert "counts no task 'bulb'; it counts panel-clean" in wrong["reasons"][0]["message"]
        counted = restarted.held("usage", "TAM-146040/panel-clean")
        assert isinstance(counted, f.UsageCount) and counted.since_service == 3  # refusals changed nothing

        serviced = await pt.module(
            "maintenance", "service", panel, {"equipment": "TAM-146040", "task": "panel-clean"}
        )
        assert serviced["outcome"] == "allow" and serviced["effects"]["before"] == 3.0
        kept = restarted.held("usage", "TAM-146040/panel-clean")
        assert kept == f.UsageCount(
            "TAM-146040/panel-clean",
            "TAM-146040",
            "panel-clean",
            since_service=0,
            total=3,
            last_service_at=AT,
            last_service_by="op-7",
        )
        assert pt.entries("record.usage")[-1].actor == "op-7"
        (done,) = pt.entries("maintenance.serviced")
        assert done.node_seq == serviced["effects"]["entry"] and done.actor == "op-7"
        assert (done.data["equipment"], done.data["task"], done.data["countBefore"]) == (
            "TAM-146040",
            "panel-clean",
            3.0,
        )
        after = await pt.module("maintenance", "use", panel)
        assert not [r for r in after["reasons"] if r["rule"].startswith("maintenance.usage")]
    finally:
        await client.close()
        await restarted.stop()


async def test_the_gate_refuses_equipment_whose_counter_is_overdue_naming_the_task(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", COUNTED_SHOP) as pt:
        await checks_done(pt)
        await pt.module("maintenance", "count", _event(), {"equipment": ["TAM-146040"]})
        await pt.module("maintenance", "count", _event(), {"equipment": "TAM-146040"})
        await pt.module("maintenance", "count", _event(), {"equipment": "TAM-146040"})
        gate = await walk_penetrant_to_the_gate(pt)
        assert not gate["allowed"] and gate["state"] == "traveler-scanned"
        assert [r["rule"] for r in gate["reasons"]] == ["maintenance.usage-overdue"]
        held = _panel_count(pt)
        assert held is not None and held.since_service == 3  # the refused start counted nothing
        unknown = await pt.module("maintenance", "count", _event(), {"equipment": "NOPE-1"})
        assert (
            unknown["outcome"] == "deny" and "no equipment NOPE-1 at pt-1" in unknown["reasons"][0]["message"]
        )
        bad = await pt.module("maintenance", "count", _event(), {"equipment": "TAM-146040", "hours": -2})
        assert bad["reasons"][0]["rule"] == "maintenance.count.hours"
        held = _panel_count(pt)
        assert held is not None and held.since_service == 3


# -- stock and reorder signals (InventoryNode) ---------------------------------------------------

#: 20 L of penetrant on the shelf; reorder below 10 L projected a week ahead, in cases of 5 L.
PENETRANT_TERMS = f.Material(
    "penetrant", "L", min_stock=10, lead_time_days=7, planned_daily_use=1, pack_size=5
)
STOCKED_SHOP = {
    **PENETRANT_SHOP,
    "lot": [
        f.Lot("PEN-2291", "penetrant", AT + 200 * DAY, on_hand=20, unit="L"),
        f.Lot("PEN-1990", "penetrant", AT - 10 * DAY),
    ],
    "material": [PENETRANT_TERMS],
}


def _on_hand(pt: Bench, lot: str) -> float | None:
    return pt.runtime.facts().lots[lot].on_hand


async def test_a_shelf_running_low_raises_one_reorder_signal_until_a_lot_is_received(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", STOCKED_SHOP) as pt:
        used = _event(lots=("PEN-2291",))
        first = await pt.module("inventory", "consume", used, {"consumed": {"PEN-2291": 5}})
        # 15 L left, 5 L in 30 days → 7 days ahead 13.8 L ≥ 10 L: no signal
        assert first["outcome"] == "allow" and "reorder" not in first["effects"]
        assert _on_hand(pt, "PEN-2291") == 15 and pt.entries("inventory.reorder") == []

        low = await pt.module("inventory", "consume", used, {"consumed": {"PEN-2291": 5}})
        # 10 L left, 10 L in 30 days → 10 − 2.33 = 7.67 L projected < 10 L: order 4.67 L → one case of 5 L
        (raised,) = low["effects"]["reorder"]
        assert raised["state"] == "raised" and raised["quantity"] == 5 and raised["unit"] == "L"
        (signal,) = pt.entries("inventory.reorder")
        assert signal.node_seq == raised["entry"] and signal.subject == "penetrant"
        assert signal.data["station"] == "pt-1" and signal.data["material"] == "penetrant"
        assert signal.data["onHand"] == 10 and signal.data["minStock"] == 10 and signal.data["quantity"] == 5
        assert "below the minimum 10" in signal.data["message"]

        again = await pt.module("inventory", "consume", used, {"consumed": {"PEN-2291": 1}})
        assert again["effects"]["reorder"] == [
            {"material": "penetrant", "state": "open", "entry": signal.node_seq}
        ]
        gate_use = await pt.module("inventory", "use", used)
        assert gate_use["effects"]["reorder"][0]["state"] == "open"
        assert len(pt.entries("inventory.reorder")) == 1  # one open signal, not one per use

        received = await pt.module(
            "inventory",
            "receive",
            _event(at=AT + DAY),
            {
                "lot": "PEN-3001",
                "material": "penetrant",
                "quantity": 20,
                "unit": "L",
                "expires": (AT + 300 * DAY).isoformat(),
            },
        )
        assert received["effects"]["reorder"][0]["state"] == "cleared"
        (cleared,) = pt.entries("inventory.reorder.cleared")
        assert cleared.data["signal"] == signal.node_seq and cleared.data["station"] == "pt-1"
        assert _on_hand(pt, "PEN-3001") == 20
        stock = pt.runtime.held("stock", "penetrant")
        assert isinstance(stock, f.StockRecord) and stock.reorder_entry is None
        assert [u.quantity for u in stock.used] == [5, 5, 1]
        await eventually(
            lambda: (
                (pt.runtime.agent.store is not None)
                and pt.runtime.agent.store.shipped_seq("pt-1") >= signal.node_seq
            ),
            what="the reorder signal shipped to the hub",
        )


async def test_the_gate_draws_the_jobs_penetrant_and_refuses_a_draw_larger_than_the_lot_holds(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", STOCKED_SHOP) as pt:
        await checks_done(pt)
        short = await walk_penetrant_to_the_gate(pt, consumed={"PEN-2291": 25})
        assert not short["allowed"] and short["state"] == "traveler-scanned"
        assert [r["rule"] for r in short["reasons"]] == ["inventory.lot.short"]
        assert "lot PEN-2291 (penetrant) holds 20 L; cannot use 25" in short["reasons"][0]["message"]
        assert _on_hand(pt, "PEN-2291") == 20 and pt.runtime.held("stock", "penetrant") is None

        gate = await pt.job("start", at=at(3), **{**PENETRANT_START, "consumed": {"PEN-2291": 12}})
        assert gate["allowed"] and gate["state"] == "gated", gate["reasons"]
        drawn = [d for d in gate["decisions"] if d["module"] == "inventory"][-1]
        assert drawn["effects"]["consumed"] == {"PEN-2291": 12.0}
        assert drawn["effects"]["reorder"][0]["state"] == "raised"
        assert _on_hand(pt, "PEN-2291") == 8
        bad = await pt.module("inventory", "consume", _event(), {"consumed": {"PEN-2291": -1}})
        assert bad["outcome"] == "deny" and bad["reasons"][0]["rule"] == "inventory.consumed"
        unknown = await pt.module("inventory", "stock", _event(), {"lot": "PEN-0", "onHand": 3})
        assert unknown["reasons"][0]["rule"] == "inventory.lot.unknown"
        assert _on_hand(pt, "PEN-2291") == 8
        counted = await pt.module(
            "inventory", "stock", _event(at=AT + DAY), {"lot": "PEN-2291", "onHand": 30}
        )
        assert counted["effects"]["reorder"][0]["state"] == "cleared" and _on_hand(pt, "PEN-2291") == 30


LAMP = f.EquipmentRecord(
    "UV-LAMP-1",
    "uv-lamp",
    usage_limits=(
        f.UsageLimit("bulb", "hours", every=1500, due_within=100),
        f.UsageLimit("ballast-check", "cycles", every=500),
    ),
)


async def test_an_hours_counter_counts_the_hours_reported_and_a_cycles_counter_one_per_use(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    shop = {**PENETRANT_SHOP, "equipment": [*PENETRANT_SHOP["equipment"], LAMP]}
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", shop) as pt:
        lamp = _event(equipment=("UV-LAMP-1",))
        ran = await pt.module("maintenance", "count", lamp, {"hours": 1395.5})
        assert [(c["task"], c["count"], c["status"]) for c in ran["effects"]["counters"]] == [
            ("bulb", 1395.5, "ok"),
            ("ballast-check", 1.0, "ok"),
        ]
        ran = await pt.module("maintenance", "count", lamp, {"hours": 10})
        assert ran["effects"]["counters"][0]["status"] == "due"
        bulb = pt.runtime.held("usage", "UV-LAMP-1/bulb")
        assert isinstance(bulb, f.UsageCount) and bulb.since_service == 1405.5 and bulb.total == 1405.5
        use = await pt.module("maintenance", "use", lamp)
        assert "maintenance.usage-due" in [r["rule"] for r in use["reasons"]]
        assert "UV-LAMP-1 bulb due: 94.5 hours left" in use["reasons"][-1]["message"]


async def test_a_reorder_signal_raised_while_the_hub_is_down_reaches_it_once_it_is_back(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", STOCKED_SHOP) as pt:
        store = pt.runtime.agent.store
        assert store is not None
        nats_floor.run(nats_floor.floor.supervisor.stop_child("hub"))
        try:
            low = await pt.module("inventory", "consume", _event(), {"consumed": {"PEN-2291": 12}})
            (raised,) = low["effects"]["reorder"]
            assert raised["state"] == "raised"  # decided and recorded at the station alone
            assert store.shipped_seq("pt-1") < raised["entry"]
        finally:
            nats_floor.run(nats_floor.floor.supervisor.start_child("hub"))
        await eventually(
            lambda: store.shipped_seq("pt-1") >= raised["entry"],
            what="the reorder signal shipped once the hub is back",
        )
        assert [e.node_seq for e in pt.entries("inventory.reorder")] == [raised["entry"]]
