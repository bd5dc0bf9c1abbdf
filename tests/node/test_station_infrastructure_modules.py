"""The station's own infrastructure runs wherever it holds a contract: its store, hand-off, scans, questions.

ut-1's ultrasonic contract names none of these modules; they run there
because their manifests say ``everyStation``. Each is asked over the
station's own bus, as a kiosk or the hub would ask it, on a real floor.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import nats
import segno

from smart.contracts import facts as f
from smart.contracts import rules
from smart.keys import KeyStore
from smart.modules import framework
from smart.modules.vision.module import SCANS_FOLDER
from smart.node.station import StationRuntime
from smart.runtime.background import BackgroundFloor
from tests.node.conftest import Hub, agent_for, eventually
from tests.node.test_job_other_stations import UT_SHOP, UT_START
from tests.node.test_job_walkthrough import (
    AT,
    PENETRANT_SHOP,
    Bench,
    at,
    bench,
    deploy,
    entries,
)

#: The six station-wide modules (tests/modules/test_manifests.py names them).
EVERY_STATION = {name for name, m in framework.load_manifests().items() if m.every_station}


def drop(folder: Path, name: str, text: str, *, at: datetime = AT) -> None:
    """A QR code of ``text`` (drawn by segno) dropped whole into the station's scan folder.

    A folder frame is seen at its file's time, so the file is dated on the shop's test day: the
    records it is judged against are dated from that day, not from whenever the suite runs.
    """
    partial = folder / f".{name}"
    segno.make_qr(text, error="m").save(str(partial), kind="png", scale=8, border=4)
    os.utime(partial, (at.timestamp(), at.timestamp()))
    os.replace(partial, folder / name)


def _event(person: str | None = "op-7", job: str | None = None) -> f.Event:
    return f.Event(action="operate", at=AT, station="ut-1", person=person, job=job)


async def _refused_flaw_detector(ut: Bench) -> dict[str, Any]:
    """A genuine refusal at ut-1: the gate turns down a flaw detector past its calibration."""
    assert (await ut.job("badge", person="op-7", at=at(0)))["allowed"]
    scanned = await ut.job(
        "scan", job="J-2", po="PO-4411", line="1", part="BRK-220", serial="SN-001", at=at(1)
    )
    assert scanned["allowed"], scanned["reasons"]
    gate = await ut.job("start", at=at(2), **{**UT_START, "equipment": ["FLAW-2", "BLOCK-IIW-1"]})
    assert not gate["allowed"] and [r["rule"] for r in gate["reasons"]] == ["ut-flaw-detector-calibrated"]
    return gate


async def _released(ut: Bench) -> None:
    assert (await ut.job("badge", person="op-7", at=at(0)))["allowed"]
    assert (
        await ut.job("scan", job="J-2", po="PO-4411", line="1", part="BRK-220", serial="SN-001", at=at(1))
    )["allowed"]
    assert (await ut.job("start", at=at(2), **UT_START))["allowed"]
    for n, step in enumerate(["calibrate", "scan", "evaluate"], start=3):
        assert (await ut.job("step", step=step, at=at(n * 10)))["allowed"]
    released = await ut.job("release", signer="op-7", at=at(100))
    assert released["state"] == "released", released["reasons"]


async def test_the_station_wide_modules_run_at_a_station_whose_contract_does_not_name_them(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    assert len(EVERY_STATION) == 6
    async with bench(nats_floor, hub, keys, tmp_path, "ut-1", "ultrasonic", UT_SHOP) as ut:
        await eventually(lambda: EVERY_STATION <= set(ut.runtime.modules), what="station-wide modules")
        assert ut.runtime.serving()
        assert store_bundle_modules(ut.runtime).isdisjoint(EVERY_STATION)
        active = await ut.module("policy-node-storage", "active", _event())
        revision = ut.runtime.agent.enforcer.revisions["ultrasonic"]
        assert active["outcome"] == "allow"
        assert [(a["contract"], a["revision"]) for a in active["effects"]["active"]] == [
            ("ultrasonic", revision)
        ]
        assert (await ut.module("info-broadcast", "status", _event(None)))["outcome"] == "allow"
        raised = await ut.module(
            "alert-broadcast", "raise", _event(), {"severity": "info", "message": "test"}
        )
        assert raised["outcome"] == "allow"
        vision = await ut.module("vision", "status", _event())
        assert vision["effects"]["watching"] and vision["effects"]["folder"].endswith(SCANS_FOLDER)
        history = await ut.module("policy-node-storage", "history", _event(), {"contract": "ultrasonic"})
        assert [h["revision"] for h in history["effects"]["history"]] == [revision]


def store_bundle_modules(runtime: StationRuntime) -> set[str]:
    """The modules the contracts in force name at the station (from its store)."""
    assert runtime.agent.store is not None
    return {m for a in runtime.agent.store.active() for m in json.loads(a.envelope)["bundle"]["modules"]}


async def test_why_gives_a_rules_text_and_citation_now_and_as_it_stood_when_a_decision_was_taken(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "ut-1", "ultrasonic", UT_SHOP) as ut:
        why = await ut.module("policy-node-storage", "why", _event(), {"rule": "ut-operator-certified"})
        assert why["outcome"] == "allow" and why["effects"]["found"] and why["effects"]["inForce"]
        text = why["effects"]
        assert text["kind"] == "credential" and text["parameters"]["method"] == "UT"
        assert text["parameters"]["minLevel"] == "level-2"
        assert text["citations"] == [
            {
                "standard": "nas410",
                "title": "NAS410 / EN4179",
                "revision": "5",
                "clause": "8.4",
                "note": "S5 S6 S7; ⚠",
            }
        ]
        unknown = await ut.module("policy-node-storage", "why", _event(), {"rule": "no-such-rule"})
        assert unknown["outcome"] == "allow" and unknown["effects"]["found"] is False

        await _refused_flaw_detector(ut)
        denial = next(
            e
            for e in reversed(ut.entries("module.decision"))
            if e.data["outcome"] == "deny" and e.data["module"] == "maintenance"
        )
        old = ut.runtime.agent.enforcer.revisions["ultrasonic"]

        def reworded(rule: rules.RuleBase) -> rules.RuleBase:
            if rule.id == "ut-flaw-detector-calibrated":
                return rule.model_copy(update={"message": "Flaw detector calibration lapsed."})
            return rule

        await deploy(hub, "ultrasonic", change=reworded)
        await eventually(
            lambda: ut.runtime.agent.enforcer.revisions["ultrasonic"] != old, what="new revision"
        )
        body = {"rule": "ut-flaw-detector-calibrated", "entry": denial.node_seq}
        then = (await ut.module("policy-node-storage", "why", _event(), body))["effects"]
        assert then["found"] and then["revision"] == old and then["inForce"] is False
        assert then["message"] is None and then["outcome"] == "deny"
        assert [r["rule"] for r in then["reasons"]] == ["ut-flaw-detector-calibrated"]
        assert then["citations"][0]["title"] == "AS9100D" and then["citations"][0]["clause"] == "7.1.5.2"
        now = (await ut.module("policy-node-storage", "why", _event(), {"rule": body["rule"]}))["effects"]
        assert now["inForce"] and now["message"] == "Flaw detector calibration lapsed."
        history = await ut.module("policy-node-storage", "history", _event(), {"contract": "ultrasonic"})
        assert [h["revision"] for h in history["effects"]["history"]][-2:] == [old, now["revision"]]


async def test_asked_why_the_last_operation_was_refused_the_station_answers_from_the_genuine_denial(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "ut-1", "ultrasonic", UT_SHOP) as ut:
        nothing = await ut.module(
            "node-query", "ask", _event(), {"text": "why was the last operation refused"}
        )
        assert nothing["effects"]["answer"]["lines"] == ["No operation has been refused at station ut-1."]
        await _refused_flaw_detector(ut)
        asked = await ut.module(
            "node-query",
            "ask",
            _event(),
            {"text": "Hey SMART, why was the last operation refused?", "badge": "op-7"},
        )
        answer = asked["effects"]["answer"]
        assert asked["outcome"] == "allow" and answer["understood"] and answer["topic"] == "why-refused"
        text = "\n".join(answer["lines"])
        assert (
            "FLAW-2" in text
            and "rule ut-flaw-detector-calibrated of ultrasonic, AS9100D rev D §7.1.5.2" in text
        )
        assert "AS9100D" in answer["spoken"]


async def test_a_badge_dropped_into_the_scan_folder_badges_the_person_in_and_is_recorded(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "ut-1", "ultrasonic", UT_SHOP) as ut:
        folder = ut.runtime.data_dir / SCANS_FOLDER
        assert folder.is_dir()
        drop(folder, "badge.png", "SMART:BADGE:op-7")
        await eventually(lambda: ut.runtime.jobs.state.value == "badged-in", what="badged in by the scan")
        await eventually(lambda: bool(entries(ut.runtime, "vision.scan")), what="the scan recorded")
        (scan,) = entries(ut.runtime, "vision.scan")
        assert scan.data["code"] == "badge" and scan.data["person"] == "op-7" and scan.actor == "op-7"
        assert scan.data["file"] == "badge.png" and scan.data["decoder"] in ("pyzbar", "opencv")
        assert scan.data["asked"] == "badge" and scan.data["outcome"] == "allow"
        badge = entries(ut.runtime, "job.transition")[-1]
        assert badge.data["verb"] == "badge" and badge.data["allowed"]
        assert scan.data["transition"] == badge.node_seq


async def test_a_part_whose_serial_is_not_on_the_po_is_refused_when_scanned_with_the_reason(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt:
        folder = pt.runtime.data_dir / SCANS_FOLDER
        drop(folder, "1-badge.png", "SMART:BADGE:op-7")
        await eventually(lambda: pt.runtime.jobs.state.value == "badged-in", what="badged in")
        drop(folder, "2-traveler.png", "SMART:TRAVELER:J-1:penetrant")
        drop(folder, "3-part.png", "SMART:PART:PO-4411:1:BRK-220:SN-999")
        await eventually(lambda: len(entries(pt.runtime, "vision.scan")) == 3, what="three scans")
        part = entries(pt.runtime, "vision.scan")[-1]
        assert part.data["code"] == "part" and part.data["serial"] == "SN-999"
        assert part.data["asked"] == "scan" and part.data["outcome"] == "deny"
        assert part.data["rules"] == ["pt-traveler-authorised"]
        assert "serial SN-999 is not on PO PO-4411 line 1" in pt.denials()["pt-traveler-authorised"]
        assert pt.runtime.jobs.state.value == "badged-in"


async def test_a_released_job_is_handed_off_once_however_often_and_whenever_it_is_asked(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "ut-1", "ultrasonic", UT_SHOP) as ut:
        early = await ut.module("handoff", "job", _event(job="J-2"))
        assert early["outcome"] == "deny" and early["reasons"][0]["rule"] == "handoff.not-released"
        await _released(ut)
        first = await ut.module("handoff", "job", _event(job="J-2"))
        again = await ut.module("handoff", "job", _event(), {"job": "J-2"})
        assert first["effects"]["recorded"] and not again["effects"]["recorded"]
        assert first["effects"]["entry"] == again["effects"]["entry"]
        (handed,) = ut.entries("job.handoff")
        assert handed.node_seq == first["effects"]["entry"] and handed.subject == "J-2"
        assert handed.data["record"]["signed_by"] == "op-7"
        assert handed.data["record"]["steps"] == ["calibrate", "scan", "evaluate"]
        await eventually(
            lambda: (
                (ut.runtime.agent.store is not None)
                and ut.runtime.agent.store.shipped_seq("ut-1") >= handed.node_seq
            ),
            what="the hand-off shipped",
        )
    restarted = StationRuntime(agent_for(nats_floor, "ut-1", keys, tmp_path))
    await restarted.start()
    client = await nats.connect(nats_floor.floor.leaves["ut-1"].url)
    try:
        await eventually(lambda: "handoff" in restarted.modules and restarted.serving(), what="serving")
        after = await Bench(restarted, client, hub).module("handoff", "job", _event(job="J-2"))
        assert after["effects"] == {
            **first["effects"],
            "recorded": False,
            "atHub": True,
            "shippedSeq": after["effects"]["shippedSeq"],
        }
        assert [e.node_seq for e in entries(restarted, "job.handoff")] == [handed.node_seq]
    finally:
        await client.close()
        await restarted.stop()


async def test_the_next_persons_badge_after_badge_out_badges_them_in_alone_and_a_supervisor_follows_a_refusal(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt:
        folder = pt.runtime.data_dir / SCANS_FOLDER
        drop(folder, "1.png", "SMART:BADGE:op-7")
        await eventually(lambda: pt.runtime.jobs.session.person == "op-7", what="op-7 badged in")
        assert (await pt.job("badge-out"))["state"] == "idle"
        drop(folder, "2.png", "SMART:BADGE:tr-1")
        await eventually(lambda: len(entries(pt.runtime, "vision.scan")) == 2, what="the trainee's scan")
        alone = entries(pt.runtime, "vision.scan")[-1]
        assert alone.data["outcome"] == "deny" and alone.data["rules"] == ["pt-operator-certified"]
        drop(folder, "3.png", "SMART:BADGE:op-7")
        await eventually(lambda: pt.runtime.jobs.state.value == "badged-in", what="the trainee supervised")
        session = pt.runtime.jobs.session
        assert (session.person, session.supervisor) == ("tr-1", "op-7")
