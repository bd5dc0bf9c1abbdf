"""No dead ends at a station: an NCR is seen and closed by the right badge, a job is resumed, taken over
or abandoned, on a real station (hub, leaf, agent, modules, ledger), never by a name typed in a request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nats

from smart.contracts import facts as f
from smart.keys import KeyStore
from smart.modules import framework
from smart.node import records
from smart.node.station import StationRuntime
from smart.runtime.background import BackgroundFloor
from tests.node.conftest import Hub, agent_for, eventually
from tests.node.test_job_walkthrough import (
    AT,
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

#: The penetrant shop with a quality manager, who holds no NDT certification.
SHOP: dict[str, list[Any]] = {
    **PENETRANT_SHOP,
    "person": [*PENETRANT_SHOP["person"], f.Person(id="qm-1", authorities=("quality-manager",))],
}
HOT_DRY = {"part-temperature": reading(150, "°F"), "time-at-max-temperature": reading(4, "min")}


async def reject_at_drying(pt: Bench) -> str:
    """Walk the job to the drying step and dry too hot: QA opens an NCR; its id."""
    await checks_done(pt)
    assert (await walk_penetrant_to_the_gate(pt))["allowed"]
    for minutes, step in enumerate(PENETRANT_STEPS[:4], start=3):
        assert (await pt.job("step", at=at(minutes * 15), **step))["allowed"]
    refused = await pt.job("step", at=at(100), step="dry", readings=HOT_DRY)
    assert not refused["allowed"] and refused["state"] == "in-process"
    (opened,) = pt.entries("qa.ncr.opened")
    return str(opened.data["id"])


def board(pt: Bench) -> dict[str, Any]:
    module = pt.runtime.modules["alert-broadcast"]
    found: dict[str, Any] = module.board.to_json()  # type: ignore[attr-defined]
    return found


async def test_an_ncr_is_on_the_alert_board_at_once_and_only_an_authorised_badge_at_the_station_closes_it(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", SHOP) as pt:
        ncr_id = await reject_at_drying(pt)
        alert = next(a for a in board(pt)["alerts"] if a["id"] == ncr_id)
        assert alert["severity"] == "warning" and "part-temperature 150 °F" in alert["message"]
        assert "a Level 3 in PT or a quality manager" in alert["message"]
        assert board(pt)["light"] in ("amber", "red")

        # a raw request naming a Level 3 who is not at the station is refused, whatever name it carries
        forged = f.Event(action="release", at=AT, station="pt-1", person="l3-1", job="J-1")
        raw = await pt.module("qa", "disposition", forged, {"ncr": ncr_id, "disposition": "scrap"})
        assert raw["outcome"] == "deny" and raw["reasons"][0]["rule"] == "ncr.badge"
        assert "never by a name in a request" in raw["reasons"][0]["message"]

        # the operator badged in has no authority to disposition
        mine = await pt.job("disposition", ncr=ncr_id, disposition="rework", at=at(101))
        assert not mine["allowed"] and mine["state"] == "in-process"
        assert [r["rule"] for r in mine["reasons"]] == ["station.authority"]
        assert "op-7 does not have the authority" in mine["reasons"][0]["message"]

        # the Level 3 badges in; the job stays where it stood, and is not theirs to work
        l3 = await pt.job("badge", person="l3-1", at=at(102))
        assert l3["allowed"] and l3["state"] == "in-process"
        step = await pt.job("step", at=at(103), step="dry", readings=HOT_DRY)
        assert not step["allowed"] and step["reasons"][0]["rule"] == "job.operator"
        as_is = await pt.job("disposition", ncr=ncr_id, disposition="use-as-is", at=at(104))
        assert not as_is["allowed"] and as_is["reasons"][0]["rule"] == "ncr.design-authority"
        rework = await pt.job("disposition", ncr=ncr_id, disposition="rework", at=at(105))
        assert rework["allowed"] and rework["state"] == "in-process", rework["reasons"]
        assert any(a["id"] == ncr_id for a in board(pt)["alerts"])  # open until re-inspected
        closed = await pt.job(
            "disposition", ncr=ncr_id, close=True, evidence="re-dried at 120 °F, re-inspected", at=at(106)
        )
        assert closed["allowed"], closed["reasons"]
        assert not any(a["id"] == ncr_id for a in board(pt)["alerts"])
        (done,) = pt.entries("qa.ncr.closed")
        assert done.actor == "l3-1" and done.data["dispositionedBy"] == "l3-1"

        # the operator badges in again and the job goes on to release
        back = await pt.job("badge", person="op-7", at=at(110))
        assert back["allowed"] and back["state"] == "in-process"
        for minutes, step_body in enumerate(PENETRANT_STEPS[4:], start=8):
            assert (await pt.job("step", at=at(minutes * 15), **step_body))["allowed"]
        released = await pt.job("release", signer="op-7", at=at(200))
        assert released["allowed"], released["reasons"]


async def test_a_quality_manager_is_let_in_to_decide_but_not_to_operate(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", SHOP) as pt:
        ncr_id = await reject_at_drying(pt)
        qm = await pt.job("badge", person="qm-1", at=at(101))
        assert qm["allowed"] and qm["outcome"] == "warn" and qm["state"] == "in-process"
        assert qm["reasons"][0]["rule"] == "station.authority-only"
        scrap = await pt.job("disposition", ncr=ncr_id, disposition="scrap", at=at(102))
        assert scrap["allowed"], scrap["reasons"]
        out = await pt.job("badge-out", at=at(103))  # the job stays in hand for its operator
        assert out["allowed"] and out["state"] == "in-process"
        assert (await pt.job("status"))["person"] is None
        # a stranger (no record at the station) is refused at the badge as always
        stranger = await pt.job("badge", person="nobody", at=at(104))
        assert not stranger["allowed"]


async def test_after_a_restart_the_operator_badges_in_again_and_resumes_and_a_level_3_takes_over(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", SHOP) as pt:
        await checks_done(pt)
        assert (await walk_penetrant_to_the_gate(pt))["state"] == "gated"
        assert (await pt.job("step", at=at(30), **PENETRANT_STEPS[0]))["allowed"]
    restarted = StationRuntime(agent_for(nats_floor, "pt-1", keys, tmp_path))
    await restarted.start()
    client = await nats.connect(nats_floor.floor.leaves["pt-1"].url)
    try:
        await eventually(lambda: "gatekeeper" in restarted.modules and restarted.serving(), what="serving")
        again = Bench(restarted, client, hub)
        resumed = await again.job("badge", person="op-7", at=at(40))
        assert resumed["allowed"] and resumed["state"] == "in-process"
        regate = await again.job("start", at=at(41), **PENETRANT_START)  # the gate again closes the relay
        assert regate["allowed"] and regate["state"] == "in-process", regate["reasons"]
        assert (await again.job("step", at=at(45), **PENETRANT_STEPS[1]))["allowed"]

        # another operator cannot work it, nor take it over
        other = await again.job("badge", person="tr-1", supervisor="op-7", at=at(50))
        assert other["allowed"] and other["state"] == "in-process"
        refused = await again.job("step", at=at(51), **PENETRANT_STEPS[2])
        assert refused["reasons"][0]["rule"] == "job.operator"
        assert "op-7 badges in to go on with it" in refused["reasons"][0]["message"]
        grab = await again.job("take-over", reason="op-7 went home", at=at(52))
        assert not grab["allowed"] and grab["reasons"][0]["rule"] == "station.authority"

        # the Level 3 takes it over with a reason (on the ledger) and works it
        assert (await again.job("badge", person="l3-1", at=at(60)))["state"] == "in-process"
        silent = await again.job("take-over", at=at(61))
        assert not silent["allowed"] and silent["reasons"][0]["rule"] == "job.take-over"
        taken = await again.job("take-over", reason="op-7 sent home sick", at=at(62))
        assert taken["allowed"] and taken["state"] == "in-process"
        (entry,) = [
            e for e in again.entries("job.transition") if e.data["verb"] == "take-over" and e.data["allowed"]
        ]
        assert entry.data["reason"] == "op-7 sent home sick" and entry.data["operator"] == "op-7"
        assert entry.actor == "l3-1"
        assert (await again.job("step", at=at(63), **PENETRANT_STEPS[2]))["allowed"]
        status = await again.job("status")
        assert status["job"]["steps"] == ["pre-clean", "penetrant-apply", "penetrant-dwell"]
    finally:
        await client.close()
        await restarted.stop()


async def test_a_quality_manager_abandons_a_job_with_a_reason_and_the_station_is_free_again(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", SHOP) as pt:
        await checks_done(pt)
        assert (await walk_penetrant_to_the_gate(pt))["state"] == "gated"
        assert not (await pt.job("abandon", reason="wrong part", at=at(5)))["allowed"]  # op-7: no authority
        assert (await pt.job("badge", person="qm-1", at=at(6)))["allowed"]
        abandoned = await pt.job("abandon", reason="wrong part loaded", at=at(7))
        assert abandoned["allowed"] and abandoned["state"] == "badged-in"
        last = pt.entries("job.transition")[-1]
        assert last.data["verb"] == "abandon" and last.data["job"] == "J-1"
        assert last.data["reason"] == "wrong part loaded" and last.data["operator"] == "op-7"
        assert (await pt.job("badge", person="op-7", at=at(8)))["state"] == "badged-in"
        scanned = await pt.job(
            "scan", job="J-2", po="PO-4411", line="1", part="BRK-220", serial="SN-001", at=at(9)
        )
        assert scanned["allowed"], scanned["reasons"]


async def test_qa_reads_its_open_ncrs_back_from_the_ledger_after_a_restart(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", SHOP) as pt:
        ncr_id = await reject_at_drying(pt)
    restarted = StationRuntime(agent_for(nats_floor, "pt-1", keys, tmp_path))
    await restarted.start()
    client = await nats.connect(nats_floor.floor.leaves["pt-1"].url)
    try:
        await eventually(lambda: "qa" in restarted.modules and restarted.serving(), what="serving")
        again = Bench(restarted, client, hub)
        assert (await again.job("badge", person="l3-1", at=at(120)))["allowed"]
        request = {"ncr": ncr_id, "disposition": "scrap", "at": at(121)}
        reply = await client.request(
            framework.subject("pt-1", "job", "disposition"), json.dumps(request).encode(), timeout=30
        )
        answer = json.loads(reply.data)
        assert answer["allowed"], answer["reasons"]
        assert records.plain(restarted.facts().jobs["J-1"].ncrs[0])["disposition"] == "scrap"
    finally:
        await client.close()
        await restarted.stop()


async def test_the_inspect_step_records_the_indications_and_a_reject_opens_an_ncr_that_holds_the_release(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", SHOP) as pt:
        await checks_done(pt)
        assert (await walk_penetrant_to_the_gate(pt))["allowed"]
        for minutes, step in enumerate(PENETRANT_STEPS[:-1], start=3):
            assert (await pt.job("step", at=at(minutes * 15), **step))["allowed"]
        silent = await pt.job("step", step="inspect", inspection={"result": "reject"}, at=at(150))
        assert not silent["allowed"] and silent["reasons"][0]["rule"] == "qa.inspection"
        found = "1 linear indication, 3 mm, at the bore"
        rejected = await pt.job(
            "step", step="inspect", inspection={"result": "reject", "indications": found}, at=at(151)
        )
        assert rejected["allowed"], rejected["reasons"]
        (inspection,) = pt.entries("qa.inspection")
        assert inspection.data == {"job": "J-1", "step": "inspect", "result": "reject", "indications": found}
        (opened,) = pt.entries("qa.ncr.opened")
        assert opened.data["characteristic"] == "inspection" and found in opened.data["message"]
        assert any(a["id"] == opened.data["id"] for a in board(pt)["alerts"])
        held = await pt.job("release", signer="op-7", at=at(160))
        assert not held["allowed"] and "is open" in held["reasons"][0]["message"]
