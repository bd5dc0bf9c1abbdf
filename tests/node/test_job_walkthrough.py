"""DOMAIN.md's job, walked through on a real station: hub, leaf, agent, modules, ledger.

The contracts are the reference ones, compiled, signed and put in KV by the
reconcile core as ``smart apply`` does; the people, equipment, lots, PO
lines and procedures come from the hub's ``station-records`` bucket through
the station's mirror; the daily checks are done at the station. Every
transition is asked on ``station.<id>.job.<verb>`` and every deny names its
rule on the station's ledger.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client as NatsClient

from smart import ledger
from smart.contracts import distribution, manifests, reconcile, rules
from smart.contracts import facts as f
from smart.contracts.models import SmartContract, Station
from smart.contracts.rules import Level
from smart.keys import KeyStore
from smart.modules import framework
from smart.modules.safety.interlock import Interlock
from smart.node import records
from smart.node.station import StationRuntime
from smart.runtime.background import BackgroundFloor
from tests.node.conftest import REPO, Hub, agent_for, eventually, now

AT = now()
DAY = timedelta(days=1)
MORNING = AT - timedelta(hours=3)


def _loaded() -> tuple[list[SmartContract], list[Station]]:
    found = [item.manifest for item in manifests.load([REPO / "contracts"])]
    return (
        [m for m in found if isinstance(m, SmartContract)],
        [m for m in found if isinstance(m, Station)],
    )


async def deploy(
    hub: Hub,
    name: str,
    *,
    enforcement: str | None = None,
    change: Callable[[rules.RuleBase], rules.RuleBase] | None = None,
    log_: ledger.NodeLog | None = None,
) -> None:
    """Compile, sign and distribute a reference contract through the reconcile core (recorded on ``log_``)."""
    contracts, stations = _loaded()
    contract = next(c for c in contracts if c.metadata.name == name)
    spec_update: dict[str, Any] = {}
    if enforcement is not None:
        spec_update["enforcement"] = enforcement
    if change is not None:
        spec_update["rules"] = [change(rule) for rule in contract.spec.rules]
    if spec_update:
        contract = contract.model_copy(update={"spec": contract.spec.model_copy(update=spec_update)})
    store = distribution.KvBundleStore(await distribution.bucket(hub.connection.jetstream()))
    await reconcile.deploy(contract, stations, key=hub.keys.signing_key("hub"), store=store, log_=log_)


def cert(method: str, level: Level, *, years: float = 3, **extra: Any) -> f.Certification:
    return f.Certification(
        method, level, issued=AT - years * 365 * DAY, expires=AT + 2 * 365 * DAY, practical_samples=3, **extra
    )


def person(person_id: str, method: str, level: Level, *, vision_days: int = 120, **extra: Any) -> f.Person:
    return f.Person(
        id=person_id,
        certifications=(cert(method, level),),
        exams=(
            f.Exam("near-vision", AT - vision_days * DAY, "jaeger-1-12in"),
            f.Exam("color-contrast", AT - 400 * DAY),
        ),
        last_performed={method: AT - 7 * DAY},
        **extra,
    )


def po_line(process: str) -> f.PoLine:
    return f.PoLine(
        "PO-4411",
        "1",
        True,
        "BRK-220",
        ("SN-001", "SN-002"),
        (process,),
        "qa-2",
        {"spec": "ASTM E1417-21", "retention": "10 years after final payment"},
    )


PENETRANT_SHOP: dict[str, list[Any]] = {
    "person": [
        person("op-7", "PT", Level.LEVEL_2),
        person("op-9", "PT", Level.LEVEL_2, vision_days=395),
        person("tr-1", "PT", Level.TRAINEE),
        person("l3-1", "PT", Level.LEVEL_3),
    ],
    "equipment": [
        f.EquipmentRecord("UV-METER-1", "light-meter", calibration=f.Calibration(AT - 60 * DAY)),
        f.EquipmentRecord("TAM-146040", "tam-panel", attributes={"finish": "grit-blasted"}),
    ],
    "lot": [
        f.Lot("PEN-2291", "penetrant", AT + 200 * DAY),
        f.Lot("PEN-1990", "penetrant", AT - 10 * DAY),
    ],
    "po-line": [po_line("penetrant")],
    "procedure": [f.Procedure("PT-PROC-12", "D", "PT", approved_by="l3-1", validated=True)],
}

PENETRANT_START: dict[str, Any] = {
    "equipment": ["UV-METER-1", "TAM-146040"],
    "lots": ["PEN-2291"],
    "ppe": ["nitrile-gloves"],
    "procedure": "PT-PROC-12",
    "procedureRevision": "D",
    "attributes": {"part-finish": "grit-blasted"},
}


def reading(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit}


PENETRANT_STEPS: list[dict[str, Any]] = [
    {"step": "pre-clean"},
    {"step": "penetrant-apply"},
    {
        "step": "penetrant-dwell",
        "readings": {"part-temperature": reading(72, "°F"), "dwell-time": reading(12, "min")},
    },
    {"step": "wash"},
    {
        "step": "dry",
        "readings": {"part-temperature": reading(120, "°F"), "time-at-max-temperature": reading(4, "min")},
    },
    {"step": "developer", "readings": {"developer-dwell-time": reading(12, "min")}},
    {"step": "inspect"},
]


def at(offset_minutes: float) -> str:
    return (AT + timedelta(minutes=offset_minutes)).isoformat()


@dataclass
class Bench:
    """A station under test and a client on its leaf, as a kiosk or a bench tool would be."""

    runtime: StationRuntime
    client: NatsClient
    hub: Hub

    @property
    def station(self) -> str:
        return self.runtime.station

    async def job(self, verb: str, **body: Any) -> dict[str, Any]:
        reply = await self.client.request(
            framework.subject(self.station, "job", verb), json.dumps(body).encode(), timeout=15
        )
        answer: dict[str, Any] = json.loads(reply.data)
        return answer

    async def module(
        self, module: str, verb: str, event: f.Event, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        request = {"event": records.plain(event), "body": body or {}}
        reply = await self.client.request(
            framework.subject(self.station, module, verb), json.dumps(request).encode(), timeout=15
        )
        answer: dict[str, Any] = json.loads(reply.data)
        return answer

    async def check(
        self,
        name: str,
        readings: dict[str, Any] | None = None,
        *,
        when: datetime = MORNING,
        by: str = "op-7",
        meter: str = "UV-METER-1",
    ) -> dict[str, Any]:
        """A daily check done at the station with its meter, through the Maintenance module."""
        event = f.Event(action="measure", at=when, station=self.station, person=by, equipment=(meter,))
        body: dict[str, Any] = {"check": name, "passed": True, "readings": readings or {}}
        return await self.module("maintenance", "check", event, body)

    def entries(self, kind: str) -> list[ledger.Entry]:
        return entries(self.runtime, kind)

    def denials(self) -> dict[str, str]:
        """Rule id → message of every denying reason the modules recorded."""
        return {
            reason["rule"]: reason["message"]
            for entry in self.entries("module.decision")
            if entry.data["outcome"] == "deny"
            for reason in entry.data["reasons"]
        }


def entries(runtime: StationRuntime, kind: str) -> list[ledger.Entry]:
    assert runtime.agent.ledger is not None
    return [e for e in runtime.agent.ledger.entries(0) if e.kind == kind]


async def publish(hub: Hub, station: str, shop: dict[str, list[Any]]) -> int:
    js = hub.connection.jetstream()
    count = 0
    for kind, values in shop.items():
        for value in values:
            await records.publish_record(js, station, kind, records.fact_key(kind, value), value)
            count += 1
    return count


@asynccontextmanager
async def bench(
    floor: BackgroundFloor,
    hub: Hub,
    keys: KeyStore,
    tmp_path: Path,
    station: str,
    contract: str,
    shop: dict[str, list[Any]],
    interlock: Interlock | None = None,
    **deploy_options: Any,
) -> AsyncIterator[Bench]:
    await records.ensure_records_bucket(hub.connection.jetstream())
    await deploy(hub, contract, **deploy_options)
    count = await publish(hub, station, shop)
    runtime = StationRuntime(agent_for(floor, station, keys, tmp_path), interlock=interlock)
    await runtime.start()
    client = await nats.connect(floor.floor.leaves[station].url)
    try:
        await eventually(lambda: contract in runtime.agent.enforcer.revisions, what=f"{contract} active")
        await eventually(
            lambda: "gatekeeper" in runtime.modules and runtime.serving(), what="modules answering"
        )
        await eventually(
            lambda: len(entries(runtime, "record.received")) >= count,
            what="hub records mirrored",
            state=lambda: entries(runtime, "record.refused"),
        )
        yield Bench(runtime, client, hub)
    finally:
        await client.close()
        await runtime.stop()


async def walk_penetrant_to_the_gate(pt: Bench, *, person: str = "op-7", **start: Any) -> dict[str, Any]:
    assert (await pt.job("badge", person=person, at=at(0)))["allowed"]
    scanned = await pt.job(
        "scan", job="J-1", po="PO-4411", line="1", part="BRK-220", serial="SN-002", at=at(1)
    )
    assert scanned["allowed"], scanned["reasons"]
    return await pt.job("start", at=at(2), **{**PENETRANT_START, **start})


# -- the allow path ------------------------------------------------------------------------------


async def test_penetrant_job_walks_from_badge_in_to_hand_off_with_every_decision_on_the_ledger(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt:
        uva = await pt.check(
            "uv-a-intensity",
            {"uv-a-intensity": reading(1180, "µW/cm²"), "ambient-white-light": reading(1.5, "fc")},
        )
        assert uva["outcome"] == "allow", uva
        assert (await pt.check("tam-panel"))["outcome"] == "allow"

        gate = await walk_penetrant_to_the_gate(pt)
        assert gate["allowed"] and gate["state"] == "gated", gate["reasons"]
        assert gate["light"] == "green"
        assert {d["module"] for d in gate["decisions"]} == {
            "gatekeeper",
            "maintenance",
            "safety",
            "standards",
            "inventory",
            "qa",
        }
        for minutes, step in enumerate(PENETRANT_STEPS, start=3):
            done = await pt.job("step", at=at(minutes * 15), **step)
            assert done["allowed"], (step, done["reasons"])
        released = await pt.job("release", signer="op-7", at=at(200))
        assert released["allowed"] and released["state"] == "released", released["reasons"]
        handed = await pt.job("handoff", at=at(201))
        assert handed["state"] == "handed-off"
        (handoff,) = pt.entries("job.handoff")  # HandoffNode put the record on the ledger for the hub
        assert handed["handoff"]["entry"] == handoff.node_seq and handed["handoff"]["recorded"]
        assert handoff.data["record"]["signed_by"] == "op-7" and handoff.data["station"] == "pt-1"
        await eventually(
            lambda: (
                (pt.runtime.agent.store is not None)
                and pt.runtime.agent.store.shipped_seq("pt-1") >= handoff.node_seq
            ),
            what="the hand-off shipped",
        )
        again = await pt.module("handoff", "job", f.Event(action="release", at=AT, station="pt-1", job="J-1"))
        assert again["effects"]["atHub"] and not again["effects"]["recorded"]

        job = pt.runtime.facts().jobs["J-1"]
        assert job.steps == tuple(step["step"] for step in PENETRANT_STEPS)
        assert job.measurements["part-temperature"] == f.Reading(120, "°F")
        # each step keeps its own readings: the dwell's part temperature is not lost to the drying's
        assert job.step_measurements["penetrant-dwell"]["part-temperature"] == f.Reading(72, "°F")
        assert job.step_measurements["dry"]["part-temperature"] == f.Reading(120, "°F")
        assert "pre-clean" not in job.step_measurements  # no readings, no entry
        assert job.signed_by == "op-7"
        transitions = [(e.data["verb"], e.data["to"]) for e in pt.entries("job.transition")]
        assert transitions[:3] == [("badge", "badged-in"), ("scan", "traveler-scanned"), ("start", "gated")]
        assert transitions[-2:] == [("release", "released"), ("handoff", "handed-off")]
        assert pt.entries("job.transition")[-1].data["record"]["signed_by"] == "op-7"
        revision = pt.runtime.agent.enforcer.revisions["penetrant"]
        decisions = pt.entries("module.decision")
        assert all(e.contract == f"penetrant@{revision}" for e in decisions)
        assert {e.data["module"] for e in decisions} >= {"gatekeeper", "guardian", "compliance", "qa"}
        assert pt.denials() == {}
        assert pt.runtime.facts().people["op-7"].last_performed["PT"] == AT + timedelta(minutes=200)


# -- the deny paths at pt-1 ----------------------------------------------------------------------


async def checks_done(pt: Bench, *, uva: float = 1180, tam_when: datetime = MORNING) -> None:
    await pt.check(
        "uv-a-intensity",
        {"uv-a-intensity": reading(uva, "µW/cm²"), "ambient-white-light": reading(1.5, "fc")},
    )
    await pt.check("tam-panel", when=tam_when)


async def test_gate_refuses_operator_whose_eye_exam_is_thirteen_months_old(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt:
        refused = await pt.job("badge", person="op-9", at=at(0))
        assert not refused["allowed"] and refused["state"] == "idle"
        assert [r["rule"] for r in refused["reasons"]] == ["pt-near-vision"]
        assert "near-vision exam" in refused["reasons"][0]["message"]
        assert "pt-near-vision" in pt.denials()
        last = pt.entries("job.transition")[-1]
        assert last.data["allowed"] is False and last.data["to"] == "idle"


async def test_gate_refuses_a_trainee_without_a_supervisor_and_allows_one_beside_a_level_2(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt:
        alone = await pt.job("badge", person="tr-1", at=at(0))
        assert not alone["allowed"] and alone["state"] == "idle"
        assert [r["rule"] for r in alone["reasons"]] == ["pt-operator-certified"]
        assert "needs a supervisor's badge" in pt.denials()["pt-operator-certified"]
        supervised = await pt.job("badge", person="tr-1", supervisor="op-7", at=at(1))
        assert supervised["allowed"] and supervised["state"] == "badged-in"


async def test_gate_refuses_a_uv_a_lamp_reading_940(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt:
        await checks_done(pt, uva=940)
        gate = await walk_penetrant_to_the_gate(pt)
        assert not gate["allowed"] and gate["state"] == "traveler-scanned" and gate["light"] == "red"
        # the check itself was recorded failed (the line locked until a rerun passes) and the gate's
        # QA reads the same reading out of limits
        assert sorted(r["rule"] for r in gate["reasons"]) == ["pt-uva-checked-today", "pt-uva-intensity"]
        assert "uv-a-intensity 940" in pt.denials()["pt-uva-intensity"]


async def test_a_uv_a_check_reading_940_is_recorded_failed_though_passed_was_pressed(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt:
        pressed = await pt.check(  # the body says passed: True, as a careless button press would
            "uv-a-intensity",
            {"uv-a-intensity": reading(940, "µW/cm²"), "ambient-white-light": reading(1.5, "fc")},
        )
        assert pressed["outcome"] == "deny" and pressed["effects"]["passed"] is False
        assert [r["rule"] for r in pressed["reasons"]] == ["pt-uva-intensity"]
        assert "uv-a-intensity 940 µW/cm² outside ≥ 1000" in pressed["reasons"][0]["message"]
        held = pt.runtime.facts().checks["uv-a-intensity"]
        assert held.passed is False
        (kept,) = [e for e in pt.entries("record.check") if e.data["value"]["check"] == "uv-a-intensity"]
        assert kept.data["value"]["passed"] is False
        await pt.check("tam-panel")
        gate = await walk_penetrant_to_the_gate(pt)  # the line stays locked until a rerun passes
        assert not gate["allowed"]
        assert "pt-uva-checked-today" in {r["rule"] for r in gate["reasons"]}
        missing = await pt.check("uv-a-intensity", {"uv-a-intensity": reading(1180, "µW/cm²")})
        assert missing["effects"]["passed"] is False  # no ambient-light reading: not a passed check
        assert "no ambient-white-light reading" in missing["reasons"][0]["message"]
        rerun = await pt.check(
            "uv-a-intensity",
            {"uv-a-intensity": reading(1180, "µW/cm²"), "ambient-white-light": reading(1.5, "fc")},
        )
        assert rerun["outcome"] == "allow" and rerun["effects"]["passed"] is True
        again = await pt.job("start", at=at(3), **PENETRANT_START)
        assert again["allowed"], again["reasons"]


async def test_gate_refuses_an_expired_penetrant_lot(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt:
        await checks_done(pt)
        gate = await walk_penetrant_to_the_gate(pt, lots=["PEN-1990"])
        assert not gate["allowed"] and gate["state"] == "traveler-scanned"
        assert [r["rule"] for r in gate["reasons"]] == ["pt-penetrant-lot"]
        assert "expired" in pt.denials()["pt-penetrant-lot"]
        again = await pt.job("start", at=at(3), **PENETRANT_START)
        assert again["allowed"] and again["state"] == "gated"


async def test_gate_refuses_when_the_tam_panel_check_was_not_done_today(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt:
        await checks_done(pt, tam_when=MORNING - 2 * DAY)
        gate = await walk_penetrant_to_the_gate(pt)
        assert not gate["allowed"] and gate["state"] == "traveler-scanned"
        assert [r["rule"] for r in gate["reasons"]] == ["pt-tam-panel-today"]
        assert "not current" in pt.denials()["pt-tam-panel-today"]


def _developer_dwell_recorded(rule: rules.RuleBase) -> rules.RuleBase:
    """A customer flowdown: the developer dwell time is part of the record."""
    if isinstance(rule, rules.RecordCompleteRule):
        return rule.model_copy(
            update={"required_measurements": [*rule.required_measurements, "developer-dwell-time"]}
        )
    return rule


async def test_guardian_refuses_release_of_a_job_missing_a_measurement_and_releases_it_once_recorded(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(
        nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP, change=_developer_dwell_recorded
    ) as pt:
        await checks_done(pt)
        assert (await walk_penetrant_to_the_gate(pt))["allowed"]
        for minutes, step in enumerate(PENETRANT_STEPS, start=3):
            if step["step"] == "developer":
                step = {"step": "developer"}  # the dwell time was not written down
            assert (await pt.job("step", at=at(minutes * 15), **step))["allowed"]
        refused = await pt.job("release", signer="op-7", at=at(200))
        assert not refused["allowed"] and refused["state"] == "in-process"
        assert [r["rule"] for r in refused["reasons"]] == ["pt-record-complete"]
        assert "lacks measurements developer-dwell-time" in pt.denials()["pt-record-complete"]
        developer = {"step": "developer", "readings": {"developer-dwell-time": reading(12, "min")}}
        assert (await pt.job("step", at=at(205), **developer))["allowed"]
        assert (await pt.job("release", signer="op-7", at=at(210)))["state"] == "released"


async def test_audit_mode_contract_lets_the_job_through_and_records_the_would_be_denial(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(
        nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP, enforcement="audit"
    ) as pt:
        badged = await pt.job("badge", person="op-9", at=at(0))
        assert badged["allowed"] and badged["outcome"] == "warn" and badged["state"] == "badged-in"
        (reason,) = badged["reasons"]
        assert reason["rule"] == "pt-near-vision" and reason["audit"] is True
        assert reason["message"].startswith("audit: would have denied:")
        recorded = [e for e in pt.entries("module.decision") if e.data["module"] == "gatekeeper"][-1]
        assert recorded.data["outcome"] == "warn"
        assert (
            recorded.data["reasons"][0]["rule"] == "pt-near-vision" and recorded.data["reasons"][0]["audit"]
        )


async def test_a_transition_asked_out_of_order_is_refused_and_leaves_the_state(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt:
        refused = await pt.job("release", signer="op-7", at=at(0))
        assert not refused["allowed"] and refused["state"] == "idle"
        assert refused["reasons"][0]["rule"] == "job.state"
        assert (await pt.job("status"))["state"] == "idle"
        bad = await pt.job("step", at="yesterday")
        assert "error" in bad


async def test_a_drying_temperature_over_the_limit_opens_an_ncr_and_the_guardian_holds_the_release(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt:
        await checks_done(pt)
        assert (await walk_penetrant_to_the_gate(pt))["allowed"]
        for minutes, step in enumerate(PENETRANT_STEPS, start=3):
            if step["step"] == "dry":
                hot = {"part-temperature": reading(150, "°F"), "time-at-max-temperature": reading(4, "min")}
                refused = await pt.job("step", at=at(minutes * 15), step="dry", readings=hot)
                assert not refused["allowed"] and refused["state"] == "in-process"
                assert [r["rule"] for r in refused["reasons"]] == ["pt-dry-part-temperature"]
                (ncr,) = pt.runtime.facts().jobs["J-1"].ncrs
                assert ncr.open and pt.entries("qa.ncr.opened")[-1].data["job"] == "J-1"
            assert (await pt.job("step", at=at(minutes * 15 + 1), **step))["allowed"]
        held = await pt.job("release", signer="op-7", at=at(200))
        assert not held["allowed"] and held["state"] == "in-process"
        assert [r["rule"] for r in held["reasons"]] == ["pt-record-complete"]
        assert "is open" in held["reasons"][0]["message"]


async def test_a_station_restarted_mid_job_takes_the_job_up_where_it_stood(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt:
        await checks_done(pt)
        assert (await walk_penetrant_to_the_gate(pt))["state"] == "gated"
        assert (await pt.job("step", at=at(30), **PENETRANT_STEPS[0]))["allowed"]
    restarted = StationRuntime(agent_for(nats_floor, "pt-1", keys, tmp_path))
    await restarted.start()
    client = await nats.connect(nats_floor.floor.leaves["pt-1"].url)
    try:
        await eventually(lambda: "gatekeeper" in restarted.modules and restarted.serving(), what="serving")
        again = Bench(restarted, client, hub)
        status = await again.job("status")
        assert status["state"] == "in-process" and status["person"] == "op-7"
        assert status["job"]["steps"] == ["pre-clean"]
        assert (await again.job("step", at=at(45), **PENETRANT_STEPS[1]))["allowed"]
    finally:
        await client.close()
        await restarted.stop()


@asynccontextmanager
async def bare_station(
    floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> AsyncIterator[Bench]:
    """pt-1 with no contract ever deployed: its job machine answers, no module runs."""
    runtime = StationRuntime(agent_for(floor, "pt-1", keys, tmp_path))
    await runtime.start()
    client = await nats.connect(floor.floor.leaves["pt-1"].url)
    try:
        await eventually(runtime.ready.is_set, what="the job machine answering")
        yield Bench(runtime, client, hub)
    finally:
        await client.close()
        await runtime.stop()


async def test_a_station_without_a_valid_contract_refuses_every_job_verb_saying_so(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bare_station(nats_floor, hub, keys, tmp_path) as pt:
        for verb, body in (
            ("badge", {"person": "op-7"}),
            ("scan", {"job": "J-1", "po": "PO-4411", "line": "1"}),
            ("release", {"signer": "op-7"}),
        ):
            refused = await pt.job(verb, at=at(0), **body)
            assert not refused["allowed"] and refused["state"] == "idle"
            (reason,) = refused["reasons"]
            assert reason["rule"] == "station.no-valid-contract"
            assert reason["message"].startswith("no valid contract: station pt-1")
        recorded = pt.entries("job.transition")
        assert [e.data["verb"] for e in recorded] == ["badge", "scan", "release"]
        assert not any(e.data["allowed"] for e in recorded)
