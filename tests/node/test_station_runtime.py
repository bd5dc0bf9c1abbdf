"""The station runtime: its modules answer on the station's subjects and every decision is on its ledger."""

from __future__ import annotations

import json
from pathlib import Path

from smart.contracts import facts as f
from smart.keys import KeyStore
from smart.modules import rulebound
from smart.node import records
from smart.node.deciding import module_class
from smart.node.station import StationRuntime, modules_of
from smart.runtime.background import BackgroundFloor
from tests.node.conftest import Hub, eventually, signed_envelope
from tests.node.test_job_walkthrough import AT, PENETRANT_SHOP, bench, entries


def _badge(person: str = "op-7") -> f.Event:
    return f.Event(action="operate", at=AT, station="pt-1", person=person)


def test_each_module_folder_gives_its_class_and_a_bundle_names_the_modules_its_rules_need() -> None:
    gatekeeper = module_class("gatekeeper")
    assert gatekeeper is not None and gatekeeper.name == "gatekeeper"
    assert module_class("no-such-module") is None
    bundle = {"modules": ["gatekeeper"], "rules": [{"kind": "ppe"}, {"kind": "lot"}]}
    assert modules_of(bundle) == {"gatekeeper", "safety", "inventory"}


async def test_module_reply_comes_after_the_decision_is_on_the_ledger_and_names_its_entry(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt:
        reply = await pt.module("gatekeeper", "badge", _badge("op-9"))
        assert reply["module"] == "gatekeeper" and reply["outcome"] == "deny"
        assert [r["rule"] for r in reply["reasons"]] == ["pt-near-vision"]
        assert reply["revisions"] == pt.runtime.agent.enforcer.revisions
        assert pt.runtime.agent.ledger is not None
        entry = pt.runtime.agent.ledger.entries(reply["entry"], reply["entry"] + 1)[0]
        assert entry.kind == "module.decision" and entry.data["verb"] == "badge"
        assert entry.data["event"]["person"] == "op-9" and entry.actor == "op-9"
        assert entry.contract == f"penetrant@{reply['revisions']['penetrant']}"


async def test_a_request_that_cannot_be_read_gets_an_error_and_nothing_is_decided(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt:
        before = len(entries(pt.runtime, "module.decision"))
        subject = "station.pt-1.gatekeeper.badge"
        for bad in (b"not json", b"{}", json.dumps({"event": {"action": "dance"}}).encode()):
            answer = json.loads((await pt.client.request(subject, bad, timeout=5)).data)
            assert answer["error"].startswith("gatekeeper.badge:")
        elsewhere = await pt.client.request(
            subject,
            json.dumps({"event": records.plain(f.Event(action="operate", at=AT, station="mt-1"))}).encode(),
            timeout=5,
        )
        assert "for station mt-1" in json.loads(elsewhere.data)["error"]
        assert len(entries(pt.runtime, "module.decision")) == before


async def test_a_module_that_raises_is_a_recorded_deny_naming_the_module(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt:
        # QA reads body.cites as a mapping; a list of numbers breaks it.
        reply = await pt.module("qa", "measure", _badge(), {"cites": [1, 2]})
        assert reply["outcome"] == "deny"
        (reason,) = reply["reasons"]
        assert reason["rule"] == "qa.failed" and "module qa failed on measure" in reason["message"]
        recorded = entries(pt.runtime, "module.decision")[-1]
        assert recorded.data["module"] == "qa" and recorded.data["outcome"] == "deny"


async def test_a_verb_the_module_does_not_answer_is_refused_and_recorded(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt:
        reply = await pt.module("guardian", "open-the-door", _badge())
        assert reply["outcome"] == "deny" and reply["reasons"][0]["rule"] == "guardian.verb"


async def test_modules_follow_the_contracts_in_force(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt:
        runtime: StationRuntime = pt.runtime
        assert {"gatekeeper", "guardian", "qa", "maintenance", "safety", "inventory"} <= set(runtime.modules)
        assert "logistics" not in runtime.modules
        assert isinstance(runtime.modules["standards"], rulebound.RuleBoundModule)
        await hub.retire_contract("pt-1", "penetrant")
        await eventually(lambda: runtime.modules == {} and runtime.serving(), what="modules stopped")
        refused = await pt.job("badge", person="op-7", at=AT.isoformat())
        assert not refused["allowed"]
        assert refused["reasons"][0]["rule"] == "station.no-valid-contract"  # said before asking anyone
        await hub.put_contract("pt-1", "penetrant", signed_envelope("penetrant", "pt-1", keys))
        await eventually(lambda: "gatekeeper" in runtime.modules and runtime.serving(), what="back")
        assert (await pt.job("badge", person="op-7", at=AT.isoformat()))["allowed"]


async def test_status_says_which_modules_run_and_where_the_job_stands(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt:
        assert (await pt.job("badge", person="op-7", at=AT.isoformat()))["allowed"]
        status = pt.runtime.status()
        assert status["station"] == "pt-1" and status["serving"] and status["interlock"] is None
        assert (
            "gatekeeper" in status["modules"] and status["revisions"] == pt.runtime.agent.enforcer.revisions
        )
        assert status["job"]["state"] == "badged-in" and status["job"]["person"] == "op-7"
