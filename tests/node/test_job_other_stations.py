"""The same job, walked through at mt-1, ut-1 and ht-1 with their reference contracts and deny paths."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest

from smart.contracts import facts as f
from smart.contracts.rules import Level
from smart.hub.streams import ensure_hub_streams
from smart.keys import KeyStore
from smart.runtime.background import BackgroundFloor
from smart.testing.plugin import FloorFactory
from tests.node.conftest import Hub
from tests.node.test_job_walkthrough import AT, DAY, MORNING, Bench, at, bench, person, po_line, reading


async def _to_the_gate(station: Bench, start: dict[str, Any], *, who: str = "op-7") -> dict[str, Any]:
    assert (await station.job("badge", person=who, at=at(0)))["allowed"]
    scanned = await station.job(
        "scan", job="J-2", po="PO-4411", line="1", part="BRK-220", serial="SN-001", at=at(1)
    )
    assert scanned["allowed"], scanned["reasons"]
    return await station.job("start", at=at(2), **start)


async def _steps_and_release(station: Bench, steps: list[str], *, signer: str = "op-7") -> dict[str, Any]:
    for n, step in enumerate(steps, start=3):
        done = await station.job("step", step=step, at=at(n * 10))
        assert done["allowed"], done["reasons"]
    return await station.job("release", signer=signer, at=at(100))


# -- mt-1: magnetic particle ---------------------------------------------------------------------

MT_SHOP: dict[str, list[Any]] = {
    "person": [person("op-7", "MT", Level.LEVEL_2)],
    "equipment": [
        f.EquipmentRecord("AMM-1", "ammeter", calibration=f.Calibration(AT - 30 * DAY)),
        f.EquipmentRecord("UV-METER-1", "light-meter", calibration=f.Calibration(AT - 30 * DAY)),
        f.EquipmentRecord("KETOS-1", "ketos-ring"),
    ],
    "lot": [f.Lot("MP-77", "magnetic-particles", AT + 100 * DAY)],
    "po-line": [po_line("magnetic-particle")],
}
MT_START: dict[str, Any] = {
    "equipment": ["AMM-1", "KETOS-1"],
    "lots": ["MP-77"],
    "ppe": ["nitrile-gloves"],
    "attributes": {"particles": "fluorescent", "carrier": "oil"},
}


async def _mt_checks(mt: Bench, *, concentration: float = 0.2, ketos_when: Any = MORNING) -> None:
    bath = {"bath-concentration": reading(concentration, "mL/100mL"), "settling-time": reading(60, "min")}
    assert (await mt.check("bath-concentration", bath))["outcome"] == "allow"
    assert (await mt.check("bath-contamination", {"contamination": reading(8, "%")}))["outcome"] == "allow"
    await mt.check("ketos-ring", when=ketos_when)


async def test_magnetic_particle_job_walks_through_at_mt_1(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "mt-1", "magnetic-particle", MT_SHOP) as mt:
        await _mt_checks(mt)
        gate = await _to_the_gate(mt, MT_START)
        assert gate["allowed"] and gate["state"] == "gated", gate["reasons"]
        released = await _steps_and_release(mt, ["magnetise", "apply-particles", "inspect", "demagnetise"])
        assert released["state"] == "released", released["reasons"]
        assert (await mt.job("handoff", at=at(101)))["state"] == "handed-off"
        assert mt.denials() == {}


@pytest.mark.parametrize(
    ("change", "rule", "says"),
    [
        ({"concentration": 0.6}, "mt-bath-fluorescent", "bath-concentration 0.6"),
        ({"ketos_when": MORNING - 2 * DAY}, "mt-ketos-ring-today", "not current"),
        ({"ppe": ["nitrile-gloves", "sunglasses"]}, "mt-no-tinted-lenses", "prohibited: sunglasses"),
    ],
    ids=["bath-too-strong", "ketos-ring-not-today", "sunglasses"],
)
async def test_mt_1_gate_refuses(
    nats_floor: BackgroundFloor,
    hub: Hub,
    keys: KeyStore,
    tmp_path: Path,
    change: dict[str, Any],
    rule: str,
    says: str,
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "mt-1", "magnetic-particle", MT_SHOP) as mt:
        await _mt_checks(mt, **{k: v for k, v in change.items() if k != "ppe"})
        start = {**MT_START, **({"ppe": change["ppe"]} if "ppe" in change else {})}
        gate = await _to_the_gate(mt, start)
        assert not gate["allowed"] and gate["state"] == "traveler-scanned"
        assert [r["rule"] for r in gate["reasons"]] == [rule]
        assert says in mt.denials()[rule]


# -- ut-1: ultrasonic ----------------------------------------------------------------------------

UT_SHOP: dict[str, list[Any]] = {
    "person": [person("op-7", "UT", Level.LEVEL_2), person("l3-2", "UT", Level.LEVEL_3)],
    "equipment": [
        f.EquipmentRecord("FLAW-1", "flaw-detector", calibration=f.Calibration(AT - 100 * DAY)),
        f.EquipmentRecord("FLAW-2", "flaw-detector", calibration=f.Calibration(AT - 400 * DAY)),
        f.EquipmentRecord("BLOCK-IIW-1", "reference-block", calibration=f.Calibration(AT - 100 * DAY)),
    ],
    "po-line": [po_line("ultrasonic")],
    "procedure": [f.Procedure("UT-TECH-3", "B", "UT", approved_by="l3-2", validated=True)],
}
UT_START: dict[str, Any] = {
    "equipment": ["FLAW-1", "BLOCK-IIW-1"],
    "procedure": "UT-TECH-3",
    "procedureRevision": "B",
}


async def test_ultrasonic_job_walks_through_at_ut_1_and_release_waits_for_every_step(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "ut-1", "ultrasonic", UT_SHOP) as ut:
        gate = await _to_the_gate(ut, UT_START)
        assert gate["allowed"], gate["reasons"]
        early = await _steps_and_release(ut, ["calibrate", "scan"])
        assert not early["allowed"] and early["state"] == "in-process"
        assert [r["rule"] for r in early["reasons"]] == ["ut-record-complete"]
        assert "lacks steps evaluate" in ut.denials()["ut-record-complete"]
        assert (await ut.job("step", step="evaluate", at=at(90)))["allowed"]
        assert (await ut.job("release", signer="op-7", at=at(101)))["state"] == "released"


async def test_ut_1_gate_refuses_a_flaw_detector_past_its_calibration(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "ut-1", "ultrasonic", UT_SHOP) as ut:
        gate = await _to_the_gate(ut, {**UT_START, "equipment": ["FLAW-2", "BLOCK-IIW-1"]})
        assert not gate["allowed"]
        assert [r["rule"] for r in gate["reasons"]] == ["ut-flaw-detector-calibrated"]
        assert "FLAW-2 calibration" in ut.denials()["ut-flaw-detector-calibrated"]


async def test_ut_1_gate_refuses_a_technique_sheet_revision_no_level_3_approved(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "ut-1", "ultrasonic", UT_SHOP) as ut:
        gate = await _to_the_gate(ut, {**UT_START, "procedureRevision": "C"})
        assert not gate["allowed"] and gate["state"] == "traveler-scanned"
        assert [r["rule"] for r in gate["reasons"]] == ["ut-technique-approved"]
        assert "ut-technique-approved" in ut.denials()


async def test_ut_1_refuses_an_inspector_who_has_not_performed_ut_for_thirteen_months(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    idle = dataclasses.replace(person("op-7", "UT", Level.LEVEL_2), last_performed={"UT": AT - 400 * DAY})
    shop = {**UT_SHOP, "person": [idle, *UT_SHOP["person"][1:]]}
    async with bench(nats_floor, hub, keys, tmp_path, "ut-1", "ultrasonic", shop) as ut:
        badge = await ut.job("badge", person="op-7", at=at(0))
        assert not badge["allowed"] and badge["state"] == "idle"
        assert [r["rule"] for r in badge["reasons"]] == ["ut-operator-certified"]
        assert "ut-operator-certified" in ut.denials()


# -- ht-1: heat treat (a floor of four stations) -------------------------------------------------


def furnace(*, tus_days: int = 10, furnace_class: str = "2") -> f.EquipmentRecord:
    return f.EquipmentRecord(
        "FURNACE-2",
        "furnace",
        # an atmosphere furnace: the contract's vacuum-furnace SAT rule must be able to tell it is not one
        attributes={"class": furnace_class, "instrumentation": "B", "type": "atmosphere"},
        surveys={"TUS": AT - tus_days * DAY, "SAT": AT - 20 * DAY},
        qualified_min=f.Reading(400, "°C"),
        qualified_max=f.Reading(1100, "°C"),
    )


def ht_shop(*, tus_days: int = 10, tc_days: int = 30) -> dict[str, list[Any]]:
    thermocouple = f.EquipmentRecord(
        "TC-BASE-1",
        "thermocouple-base-metal",
        attributes={"grade": "special-limits"},
        calibration=f.Calibration(AT - tc_days * DAY),
    )
    return {
        "person": [person("op-7", "HT", Level.LEVEL_1)],
        "equipment": [furnace(tus_days=tus_days), thermocouple],
        "po-line": [po_line("heat-treat")],
    }


HT_START: dict[str, Any] = {
    "equipment": ["FURNACE-2", "TC-BASE-1"],
    "attributes": {"class": "2"},
    "readings": {"setpoint": reading(850, "°C")},
}


@pytest.fixture
async def ht_floor(floor_factory: FloorFactory, keys: KeyStore) -> AsyncIterator[tuple[BackgroundFloor, Hub]]:
    floor = floor_factory(stations=4)
    assert floor.floor.hub is not None and "ht-1" in floor.floor.leaves
    connection = await nats.connect(floor.floor.hub.url, **floor.settings.hub_nats_signin())
    await ensure_hub_streams(connection.jetstream())
    yield floor, Hub(connection, keys)
    await connection.close()


async def test_heat_treat_job_walks_through_at_ht_1(
    ht_floor: tuple[BackgroundFloor, Hub], keys: KeyStore, tmp_path: Path
) -> None:
    floor, hub = ht_floor
    async with bench(floor, hub, keys, tmp_path, "ht-1", "heat-treat", ht_shop()) as ht:
        gate = await _to_the_gate(ht, HT_START)
        assert gate["allowed"], gate["reasons"]
        assert {d["module"] for d in gate["decisions"]} == {"gatekeeper", "maintenance", "standards", "qa"}
        released = await _steps_and_release(ht, ["load", "soak", "quench", "unload"])
        assert released["state"] == "released", released["reasons"]


@pytest.mark.parametrize(
    ("shop", "start", "rule", "says"),
    [
        ({"tus_days": 40}, {}, "ht-tus-current", "FURNACE-2 TUS overdue"),
        ({}, {"attributes": {"class": "1"}}, "ht-furnace-class", "job class 1 (±3) is tighter"),
        ({"tc_days": 100}, {}, "ht-base-metal-tc", "TC-BASE-1 calibration"),
    ],
    ids=["tus-overdue", "class-tighter-than-furnace", "thermocouple-past-calibration"],
)
async def test_ht_1_gate_refuses(
    ht_floor: tuple[BackgroundFloor, Hub],
    keys: KeyStore,
    tmp_path: Path,
    shop: dict[str, int],
    start: dict[str, Any],
    rule: str,
    says: str,
) -> None:
    floor, hub = ht_floor
    async with bench(floor, hub, keys, tmp_path, "ht-1", "heat-treat", ht_shop(**shop)) as ht:
        gate = await _to_the_gate(ht, {**HT_START, **start})
        assert not gate["allowed"] and gate["state"] == "traveler-scanned"
        assert [r["rule"] for r in gate["reasons"]] == [rule]
        assert says in ht.denials()[rule]


# -- sr-1: shipping and receiving (a floor of six) -----------------------------------------------

SR_SHOP: dict[str, list[Any]] = {
    "person": [
        f.Person("ship-1"),
        f.Person("qm-1", authorities=("coc-signature",)),
    ],
    "po-line": [
        dataclasses.replace(
            po_line("shipping"),
            flowdowns={
                "spec": "ASTM E1417-21",
                "spec-revision": "21",
                "acceptance-criteria": "no relevant indications",
                "retention": "10 years after final payment",
            },
        )
    ],
}


@pytest.fixture
async def sr_floor(floor_factory: FloorFactory, keys: KeyStore) -> AsyncIterator[tuple[BackgroundFloor, Hub]]:
    floor = floor_factory(stations=6)
    assert floor.floor.hub is not None and "sr-1" in floor.floor.leaves
    connection = await nats.connect(floor.floor.hub.url, **floor.settings.hub_nats_signin())
    await ensure_hub_streams(connection.jetstream())
    yield floor, Hub(connection, keys)
    await connection.close()


async def _receive(sr: Bench, *, serial: str = "SN-001") -> dict[str, Any]:
    assert (await sr.job("badge", person="ship-1", at=at(0)))["allowed"]
    return await sr.job(
        "receive", job="J-3", po="PO-4411", line="1", part="BRK-220", serial=serial, received=2, at=at(1)
    )


async def test_shipping_station_receives_reconciles_and_ships_with_a_signed_c_of_c_and_refuses_without(
    sr_floor: tuple[BackgroundFloor, Hub], keys: KeyStore, tmp_path: Path
) -> None:
    floor, hub = sr_floor
    async with bench(floor, hub, keys, tmp_path, "sr-1", "shipping-receiving", SR_SHOP) as sr:
        received = await _receive(sr)
        assert received["allowed"] and received["state"] == "received", received["reasons"]
        assert sr.runtime.facts().jobs["J-3"].quantities == {"received": 2}

        unsigned = await sr.job("ship", quantities={"accepted": 2}, at=at(60))
        assert not unsigned["allowed"] and unsigned["state"] == "received"
        assert [r["rule"] for r in unsigned["reasons"]] == ["sr-coc-signed"]
        assert "no signed certificate of conformance" in sr.denials()["sr-coc-signed"]

        typed = await sr.job("ship", quantities={"accepted": 2}, cocSigner="qm-1", at=at(60))
        assert not typed["allowed"] and [r["rule"] for r in typed["reasons"]] == ["job.own-badge"]
        assert "signed by the signer's own badge: qm-1 badges in at sr-1" in typed["reasons"][0]["message"]
        mine = await sr.job("ship", quantities={"accepted": 2}, signCoc=True, at=at(60))
        assert not mine["allowed"] and mine["state"] == "received"
        lacking = next(r for r in mine["reasons"] if r["rule"] == "logistics.coc-authority")
        assert lacking["message"] == (
            "ship-1 does not have the authority to sign the C of C (needs coc-signature)"
        )

        assert (await sr.job("badge", person="qm-1", at=at(61)))["state"] == "received"  # the job stays
        short = await sr.job("ship", quantities={"accepted": 1}, signCoc=True, at=at(61))
        assert not short["allowed"] and [r["rule"] for r in short["reasons"]] == ["sr-quantity-reconciled"]
        assert "received 2, accounted for 1" in short["reasons"][0]["message"]

        shipped = await sr.job("ship", quantities={"accepted": 2}, signCoc=True, at=at(62))
        assert shipped["allowed"] and shipped["state"] == "shipped", shipped["reasons"]
        job = sr.runtime.facts().jobs["J-3"]
        assert job.coc_signed_by == "qm-1" and job.quantities == {"received": 2, "accepted": 2}


async def test_shipping_station_refuses_a_part_serial_that_is_not_on_the_po(
    sr_floor: tuple[BackgroundFloor, Hub], keys: KeyStore, tmp_path: Path
) -> None:
    floor, hub = sr_floor
    async with bench(floor, hub, keys, tmp_path, "sr-1", "shipping-receiving", SR_SHOP) as sr:
        refused = await _receive(sr, serial="SN-999")
        assert not refused["allowed"] and refused["state"] == "badged-in"
        assert [r["rule"] for r in refused["reasons"]] == ["sr-po-line-released"]
        assert "serial SN-999 is not on PO PO-4411" in sr.denials()["sr-po-line-released"]
        assert "J-3" not in sr.runtime.facts().jobs  # nothing counted for a refused receipt
