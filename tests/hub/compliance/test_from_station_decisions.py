"""ComplianceCentral and PolicyCentral from a real station: its refusals and activations, via the hub log.

One ut-1 station runs under the reference ultrasonic contract, refuses a flaw detector past its
calibration (a genuine deny), then takes a new revision. Its node agent ships its ledger to the
hub (real PostgreSQL, the real intake); the hub's indexes read that log. The station's own answer
to "what was in force at T" (policy-node-storage) and the hub's agree.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from smart import ledger
from smart.access.roles import Role
from smart.contracts import approval, history, manifests
from smart.contracts import facts as f
from smart.contracts.models import SmartContract
from smart.hub.compliance import index
from smart.hub.compliance import service as compliance_service
from smart.hub.gathering import HubNodeGathering
from smart.hub.safety import incidents as safety
from smart.hub.safety import service as safety_service
from smart.hub.vault.logins import Logins
from smart.hub.web import auth
from smart.hub.web.app import create_app
from smart.keys import KeyStore
from smart.ledger.hub_store import HubLog
from smart.runtime import ports
from smart.runtime.background import BackgroundFloor
from smart.runtime.floor import FloorStatus
from smart.runtime.up import serve_web
from smart.testing.browser import DESKTOP, async_page, screenshot_path
from smart.testing.plugin import FreshDatabase
from tests.hub.conftest import PASSWORD
from tests.node.conftest import Hub, eventually
from tests.node.test_job_other_stations import UT_SHOP, UT_START
from tests.node.test_job_walkthrough import AT, PENETRANT_SHOP, Bench, at, bench, deploy, entries
from tests.node.test_station_infrastructure_modules import _event

SEEDED = approval.Bootstrap(by="smart up (first start)", user="shop", source="contracts/")
ROOT = Path(__file__).resolve().parents[3]


def _standards() -> dict[str, str]:
    loaded = [i.manifest for i in manifests.load([ROOT / "contracts"])]
    specs = [
        m.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        for m in loaded
        if isinstance(m, SmartContract)
    ]
    return index.rule_standards(specs)


async def test_refusals_and_revisions_in_force_reach_the_hub_and_agree_with_the_station(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, database: FreshDatabase, tmp_path: Path
) -> None:
    index.migrate(database.url)
    safety.migrate(database.url)
    conn = psycopg.connect(database.url, autocommit=True)
    decisions = index.DecisionIndex(conn, standards=_standards())
    activations = index.ActivationIndex(conn)
    # The driver's own log (as ``smart apply`` keeps it), gathered into the hub log as the hub does.
    driver_log = ledger.NodeLog.open(tmp_path / "driver-ledger", node="smart-embedded", keys=keys)
    hub_log = HubLog.connect(
        database.url, key=keys.signing_key("hub"), admin=keys.signing_key("ledger-admin")
    )
    gathering = HubNodeGathering(tmp_path / "driver-ledger", hub_log, keys)
    async with bench(nats_floor, hub, keys, tmp_path, "ut-1", "ultrasonic", UT_SHOP, log_=driver_log) as ut:
        first = ut.runtime.agent.enforcer.revisions["ultrasonic"]
        # A genuine refusal: the gate turns down a flaw detector past its calibration.
        assert (await ut.job("badge", person="op-7", at=at(0)))["allowed"]
        scanned = await ut.job(
            "scan", job="J-2", po="PO-4411", line="1", part="BRK-220", serial="SN-001", at=at(1)
        )
        assert scanned["allowed"], scanned["reasons"]
        gate = await ut.job("start", at=at(2), **{**UT_START, "equipment": ["FLAW-2", "BLOCK-IIW-1"]})
        assert not gate["allowed"]
        # A new revision reaches the station.
        await deploy(hub, "ultrasonic", enforcement="audit", log_=driver_log)
        driver_log.close()  # its head signed: the hub may now gather both contract.deployed entries
        assert [g.entries for g in gathering.gather_once()] == [2]
        hub_log.close()
        await eventually(
            lambda: ut.runtime.agent.enforcer.revisions["ultrasonic"] != first, what="second revision"
        )
        second = ut.runtime.agent.enforcer.revisions["ultrasonic"]
        activated = [
            e for e in entries(ut.runtime, "contract.activated") if e.data["contract"] == "ultrasonic"
        ]
        assert [e.data["revision"] for e in activated] == [first, second]
        between = (
            history.parse_time(activated[0].ts)
            + (history.parse_time(activated[1].ts) - history.parse_time(activated[0].ts)) / 2
        )
        now = datetime.now(UTC)

        async def hub_has_both() -> bool:
            await asyncio.to_thread(activations.index_once)
            await asyncio.to_thread(decisions.index_once)
            rows = conn.execute("SELECT count(*) FROM contract_activations WHERE station = 'ut-1'").fetchone()
            return bool(rows and rows[0] >= 2)

        for _ in range(3000):
            if await hub_has_both():
                break
            await asyncio.sleep(0.1)
        assert await hub_has_both(), "the station's activations never reached the hub log"

        ut_rules = tuple(r.id for r in _contract("ultrasonic").spec.rules)
        for moment, expected in ((between, first), (now, second)):
            station_says, hub_says = await _both_answers(ut, conn, moment)
            assert station_says == hub_says == [("ultrasonic", expected, ut_rules)]
        assert "ut-flaw-detector-calibrated" in ut_rules
        # The agreement is rule by rule: a station whose store holds the right revision number with
        # another rule set (a tampered or corrupted store) disagrees with the hub, and this shows it.
        _drop_rule_in_store(ut, "ultrasonic", second, "ut-flaw-detector-calibrated")
        station_says, hub_says = await _both_answers(ut, conn, now)
        assert [x[:2] for x in station_says] == [x[:2] for x in hub_says] == [("ultrasonic", second)]
        assert station_says != hub_says
        assert "ut-flaw-detector-calibrated" in set(hub_says[0][2]) - set(station_says[0][2])
        refused = await ut.module("policy-node-storage", "at", _event(), {"time": "30 Nov, 10:00"})
        assert refused["outcome"] == "deny" and "body.time" in refused["reasons"][0]["message"]

    # SafetyCentral: pt-1's e-stop pressed and a PPE refusal, as its Safety module decides them.
    async with bench(nats_floor, hub, keys, tmp_path / "pt", "pt-1", "penetrant", PENETRANT_SHOP) as pt:
        event = f.Event(action="operate", at=AT, station="pt-1", person="op-7", job="J-1")
        pressed = await pt.module("safety", "estop", event, {"pressed": True})
        assert pressed["outcome"] == "deny"
        gloved = f.Event(
            action="operate", at=AT, station="pt-1", person="op-7", ppe=frozenset({"nitrile-gloves"})
        )
        assert (await pt.module("safety", "estop", gloved, {"pressed": False}))["outcome"] == "allow"
        tinted = f.Event(
            action="operate", at=AT, station="pt-1", person="op-9", job="J-1", ppe=frozenset({"sunglasses"})
        )
        assert (await pt.module("safety", "ppe", tinted))["outcome"] == "deny"
        incidents_index = safety.IncidentIndex(conn)

        async def both_incidents() -> bool:
            await asyncio.to_thread(incidents_index.index_once)
            return len(safety.incidents(conn, station="pt-1")) >= 2

        for _ in range(3000):
            if await both_incidents():
                break
            await asyncio.sleep(0.1)
    found_incidents = safety.incidents(conn, station="pt-1")
    assert sorted((i.kind, i.person, i.job) for i in found_incidents) == [
        ("estop", "op-7", "J-1"),
        ("ppe", "op-9", "J-1"),
    ]
    estop = next(i for i in found_incidents if i.kind == "estop")
    with ledger.NodeLog.open(tmp_path / "hub-ledger", node="safety-central", keys=keys) as hub_ledger:
        with pytest.raises(safety.ReportError, match="cause: say what caused"):
            safety.report(
                conn, hub_ledger, incident=estop.ledger_idx, cause=" ", action="x", by="safety-lead"
            )
        with pytest.raises(safety.ReportError, match="incident: no safety incident 999999"):
            safety.report(conn, hub_ledger, incident=999999, cause="c", action="a", by="safety-lead")
        done = safety.report(
            conn,
            hub_ledger,
            incident=estop.ledger_idx,
            cause="operator reached into the booth",
            action="guard rail fitted; briefing",
            by="safety-lead",
        )
        reported = [e for e in hub_ledger.entries(0) if e.kind == "safety.incident_reported"]
    assert done.cause == "operator reached into the booth" and done.reported_by == "safety-lead"
    assert [e.data["incident"] for e in reported] == [estop.ledger_idx]
    assert {(t["station"], t["kind"], t["count"]) for t in safety.trends(conn)} >= {
        ("pt-1", "estop", 1),
        ("pt-1", "ppe", 1),
    }

    # ComplianceCentral: the refusal, found by each of its facets, counted, evidenced on its job, exported.
    rule = "ut-flaw-detector-calibrated"
    facets: list[dict[str, str]] = [
        {"station": "ut-1"},
        {"rule": rule},
        {"standard": "as9100"},
        {"person": "op-7"},
        {"equipment": "FLAW-2"},
        {"job": "J-2"},
    ]
    for facet in facets:
        found = index.search(conn, index.query(conn, **facet))  # type: ignore[arg-type]
        assert rule in {r.rule for r in found}, facet
    (hit,) = [r for r in index.search(conn, index.query(conn, rule=rule)) if r.job == "J-2"][:1]
    assert (
        hit.station == "ut-1"
        and hit.person == "op-7"
        and "FLAW-2" in hit.equipment
        and hit.standard == "as9100"
    )
    assert rule in [r.rule for r in index.blocks_on_job(conn, "J-2")]
    counted = index.counts(conn, index.query(conn, station="ut-1"))
    assert any(c["rule"] == rule and c["station"] == "ut-1" and c["count"] >= 1 for c in counted)
    shop_csv = index.to_csv(index.search(conn, index.query(conn, job="J-2")), personal=False)
    assert shop_csv.splitlines()[0].split(",")[:5] == ["at", "station", "outcome", "severity", "rule"]
    assert "person" not in shop_csv.splitlines()[0] and "op-7" not in shop_csv
    assert "op-7" in index.to_csv([hit], personal=True)
    assert index.search(conn, index.query(conn, since=now.isoformat())) == []
    # Indexed once: the whole log read again from its start (a rebuild, a replay) adds nothing.
    decisions.index_once()
    before = index.search(conn, index.query(conn, limit=10_000))
    again = index.DecisionIndex(conn, standards=_standards())
    again._next = 0  # from the first entry of the log, as a rebuild reads it
    assert again.index_once() == 0
    assert index.search(conn, index.query(conn, limit=10_000)) == before
    # Bad questions: a clear error naming the field, nothing read.
    with pytest.raises(
        index.SearchError, match="rule: no station has recorded a refusal by rule 'no-such-rule'"
    ):
        index.query(conn, rule="no-such-rule")
    with pytest.raises(index.SearchError, match="since: 'yesterday' is not a time"):
        index.query(conn, since="yesterday")
    with pytest.raises(index.SearchError, match=r"until: .* has no UTC offset"):
        index.query(conn, until="2026-11-30T10:00:00")
    conn.close()

    # The pages, signed in, in Chromium: the search, the two-person flag on every page, history, in force at.
    await _pages(database, hub, between, keys, tmp_path)


InForceRow = tuple[str, str, tuple[str, ...]]


async def _both_answers(
    ut: Bench, conn: psycopg.Connection[Any], moment: datetime
) -> tuple[list[InForceRow], list[InForceRow]]:
    """(contract, revision, rule ids) in force at ut-1 at ``moment``: the station's and the hub's answer."""
    asked = await ut.module("policy-node-storage", "at", _event(), {"time": moment.isoformat()})
    station_says = [(x["contract"], x["revision"], tuple(x["rules"])) for x in asked["effects"]["inForce"]]
    hub_says = [
        (x.contract, x.revision, x.rules or ())
        for x in compliance_service.in_force_with_rules(conn, "ut-1", moment)
    ]
    return station_says, hub_says


def _drop_rule_in_store(ut: Bench, contract: str, revision: str, rule: str) -> None:
    """Rewrite the station's stored envelope of ``revision`` without ``rule``, its revision number kept."""
    store = ut.runtime.agent.store
    assert store is not None
    envelope = json.loads(store.envelope(contract, revision) or b"{}")
    envelope["bundle"]["rules"] = [r for r in envelope["bundle"]["rules"] if r["id"] != rule]
    with store._lock:
        store._db.execute(
            "UPDATE contract_revisions SET envelope = ? WHERE contract = ? AND revision = ?",
            (json.dumps(envelope).encode(), contract, revision),
        )


def _contract(name: str) -> SmartContract:
    return next(
        m
        for m in (i.manifest for i in manifests.load([ROOT / "contracts" / f"{name}.yaml"]))
        if isinstance(m, SmartContract) and m.metadata.name == name
    )


def _emergency_record() -> approval.Record:
    """ultrasonic's record as the core writes it: its first revision, then a Level 3's emergency change."""
    contract = next(
        m
        for m in (i.manifest for i in manifests.load([ROOT / "contracts" / "ultrasonic.yaml"]))
        if isinstance(m, SmartContract)
    )
    now = datetime.now(UTC)
    first = approval.gate(contract, None, held={}, planned={}, author=None, now=now, bootstrap=SEEDED).record
    body = contract.model_dump(mode="json", by_alias=True, exclude_none=True)
    body["spec"]["approval"] = {"emergency": True}
    body["spec"]["rules"][0]["message"] = "flaw detector calibration lapsed: use FLAW-1"
    changed = SmartContract.model_validate(body)
    revision = approval.spec_revision(changed)

    def signed(badge: str, act: approval.Act) -> approval.Signature:
        return approval.Signature(
            badge, act, "ultrasonic", revision, approval.LEVEL_3, ("UT",), f"c-{badge}", now
        )

    held = approval.gate(
        changed,
        first,
        held={"ut-1": "x"},
        planned={"ut-1": "y"},
        author=signed("B-L3", "authorship"),
        now=now,
    )
    assert not held.allowed
    approved = approval.approve(held.record, changed, signed("B-L3", "approval"))
    return approval.gate(
        changed, approved, held={"ut-1": "x"}, planned={"ut-1": "y"}, author=None, now=now
    ).record


async def _pages(
    database: FreshDatabase, hub: Hub, between: datetime, keys: KeyStore, tmp_path: Path
) -> None:
    store = approval.KvApprovalStore(await approval.bucket(hub.connection.jetstream()))
    await store.put(_emergency_record())
    central = compliance_service.ComplianceCentral(database.url, database.url, hub.connection)
    await central.start()
    safety_central = safety_service.SafetyCentral(
        database.url, database.url, ledger_dir=tmp_path / "hub", keys=keys
    )
    await safety_central.start()
    logins = Logins(database.url)
    logins.add("l3-lee", PASSWORD, role=Role.LEVEL3)
    logins.add("nadcap-auditor", PASSWORD, role=Role.AUDITOR)
    logins.add("op-7", PASSWORD, role=Role.OPERATOR)
    guard = auth.Guard(logins)
    app = create_app(
        _no_floor,
        routers=[
            auth.router(logins),
            central.router(guard),
            # PolicyCentral's pages (the Vault's) over the same bucket and ledger tables.
            compliance_service.policy_router(database.url, guard, central.approvals),
            safety_central.router(guard),
        ],
    )
    port = ports.free_port()
    server, task = await serve_web(app, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as anonymous:
            assert (await anonymous.get("/api/v1/compliance/search")).status_code == 401
        async with async_page(DESKTOP) as page:
            await page.goto(f"{url}/login?next=/compliance")
            await page.fill("input[name=username]", "op-7")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button")
            assert (await page.goto(f"{url}/compliance")).status == 403  # an operator reads no refusals
            await page.context.clear_cookies()  # signed out
            await page.goto(f"{url}/login?next=/compliance")
            await page.fill("input[name=username]", "nadcap-auditor")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button")
            await page.goto(f"{url}/compliance?station=ut-1&rule=ut-flaw-detector-calibrated")
            await page.wait_for_selector("#refusals tr[data-rule=ut-flaw-detector-calibrated]")
            assert "J-2" in (await page.text_content("#refusals") or "")
            for _ in range(200):  # the flags task reads the bucket every few seconds
                if await page.locator(".banner").count():
                    break
                await asyncio.sleep(0.1)
                await page.reload()
            banner = await page.text_content(".banner") or ""
            assert "emergency revision" in banner and "must countersign" in banner
            await page.screenshot(path=str(screenshot_path("compliance-search")), full_page=True)
            bad = await page.goto(f"{url}/compliance?since=yesterday")
            assert bad.status == 400
            error = await page.text_content(".refused:not(.banner)") or ""
            assert "since: 'yesterday' is not a time" in error
            await page.goto(f"{url}/policy")
            assert "CountersignDue" in (
                await page.text_content("#contracts tr[data-contract=ultrasonic]") or ""
            )
            await page.goto(f"{url}/policy/contracts/ultrasonic")
            assert "flaw detector calibration lapsed" in (await page.text_content(".diff") or "")
            await page.screenshot(path=str(screenshot_path("policy-contract-history")), full_page=True)
            await page.goto(f"{url}/policy/at?station=ut-1&time={between.isoformat().replace('+', '%2B')}")
            await page.wait_for_selector("#in-force")
            assert "ultrasonic" in (await page.text_content("#in-force") or "")
            await page.screenshot(path=str(screenshot_path("policy-in-force-at")))
            await page.goto(f"{url}/safety")
            assert await page.locator("#incidents form").count() == 1  # the PPE refusal, not yet reported
            await page.fill("#incidents tr[data-kind=ppe] input[name=cause]", "sunglasses worn in the booth")
            await page.fill("#incidents tr[data-kind=ppe] input[name=action]", "UV-safe lenses issued")
            async with page.expect_response(lambda r: r.url.endswith("/report")) as answer:
                await page.click("#incidents tr[data-kind=ppe] button")
            assert (await answer.value).status == 403  # an auditor reads; a safety lead completes
            await page.context.clear_cookies()
            await page.goto(f"{url}/login?next=/safety")
            await page.fill("input[name=username]", "l3-lee")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button")
            await page.goto(f"{url}/safety")
            await page.fill("#incidents tr[data-kind=ppe] input[name=cause]", "sunglasses worn in the booth")
            await page.fill("#incidents tr[data-kind=ppe] input[name=action]", "UV-safe lenses issued")
            await page.click("#incidents tr[data-kind=ppe] button")
            await page.wait_for_selector("#incidents tr[data-kind=ppe] .report")
            assert "l3-lee" in (await page.text_content("#incidents tr[data-kind=ppe] .report") or "")
            await page.screenshot(path=str(screenshot_path("safety-incidents")), full_page=True)
        async with httpx.AsyncClient(base_url=url) as session:
            await session.post("/login", data={"username": "nadcap-auditor", "password": PASSWORD})
            exported = await session.get("/api/v1/compliance/export.csv", params={"job": "J-2"})
            assert exported.status_code == 200 and exported.text.startswith(
                "at,station,outcome,severity,rule"
            )
            unknown = await session.get("/api/v1/compliance/search", params={"rule": "no-such-rule"})
            assert unknown.status_code == 400 and "no-such-rule" in unknown.json()["detail"]
            blocks = await session.get("/api/v1/compliance/jobs/J-2/blocks")
            assert "ut-flaw-detector-calibrated" in [b["rule"] for b in blocks.json()["blocks"]]
    finally:
        server.should_exit = True
        await task
        await central.stop()
        await safety_central.stop()


async def _no_floor() -> FloorStatus:
    return FloorStatus(healthy=True, services=[], checked_at=time.time())
