"""An emergency on the embedded floor: one Level 3 puts it out, every page flags it, a countersign clears it.

Real parts: the floor's NATS (the driver's contracts and approvals buckets), PostgreSQL (SMART-ID
with the demo shop's people, the logins, the ledger and index tables), SMART-ID's own signatures
and the embedded driver as the page's approver (the settings' default). The pages are the hub's
own, served over HTTP: PolicyCentral (``/policy``, the history, "in force at", the approval page),
ComplianceCentral's search, SMART-ID's people, the status page and the sign-in page. The Level 3
in PT who wrote the emergency change approves it alone on the page and it is distributed at
once; with the flags judged at a clock 25 h later every page carries the OVERDUE banner; the
quality manager countersigns on the same page, and every page is clear again.
"""

from __future__ import annotations

import copy
import functools
import re
import time
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import httpx

from smart.access.roles import Role
from smart.contracts import approval, distribution
from smart.contracts.models import SmartContract
from smart.embedded import approver, driver
from smart.hub.compliance import index
from smart.hub.compliance import policy as policy_central
from smart.hub.compliance import service as compliance_service
from smart.hub.vault import contract_signatures
from smart.hub.vault import service as vault
from smart.hub.vault.logins import Logins
from smart.hub.vault.smartid import SmartId
from smart.hub.web import auth, people
from smart.hub.web.app import create_app
from smart.hub.web.status import FloorStatus
from smart.keys import KeyStore
from smart.ledger import hub_store
from smart.runtime import demo_shop, ports
from smart.runtime.background import BackgroundFloor
from smart.runtime.up import serve_web
from smart.testing.plugin import FreshDatabase, make_settings

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "correct horse battery"
PAGES = (
    "/policy",
    "/policy/contracts/penetrant",
    "/policy/contracts/penetrant/approve",
    "/policy/at",
    "/compliance",
    "/people",
    "/admin/status",
)


async def _no_floor() -> FloorStatus:
    return FloorStatus(healthy=True, services=[], checked_at=time.time())


def _emergency(contract: SmartContract) -> SmartContract:
    body = copy.deepcopy(contract.model_dump(mode="json", by_alias=True, exclude_none=True))
    body["spec"]["approval"] = {"emergency": True}
    for rule in body["spec"]["rules"]:
        if rule.get("limits") == {"min": 1000}:
            rule["limits"] = {"min": 1200}
    return SmartContract.model_validate(body)


def _banners(html: str) -> list[str]:
    found = re.findall(r'class="refused banner"[^>]*>(.*?)</p>', html)
    return [re.sub(r"\s+", " ", unescape(b)).strip() for b in found]


async def _signed_in(base: str, username: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base, timeout=120)
    answer = await client.post("/login", data={"username": username, "password": PASSWORD, "next": "/"})
    assert answer.status_code == 303, answer.text
    return client


async def _held(url: str) -> dict[str, str]:
    import nats

    connection = await nats.connect(url)
    try:
        kv = await distribution.bucket(connection.jetstream())
        return await distribution.KvBundleStore(kv).revisions("penetrant")
    finally:
        await connection.close()


async def test_an_emergency_is_flagged_on_every_page_past_24_h_until_a_second_person_countersigns(
    nats_floor: BackgroundFloor, database: FreshDatabase, tmp_path: Path
) -> None:
    keys = KeyStore(tmp_path / "keys")
    keys.signing_key("hub")
    settings = make_settings(tmp_path / "state", nats_url=nats_floor.hub_url, keys_dir=tmp_path / "keys")
    seed = tmp_path / "contracts"
    seed.mkdir()
    for name in ("penetrant.yaml", "stations.yaml"):
        (seed / name).write_text((ROOT / "contracts" / name).read_text())
    await driver.load_contracts(settings, seed)  # the floor's first start: the bootstrap
    contract = next(
        SmartContract.model_validate(r["manifest"])
        for r in await driver.get("contract", settings)
        if r["manifest"]["metadata"]["name"] == "penetrant"
    )
    before = await _held(nats_floor.hub_url)
    smartid = SmartId(
        database.url,
        key=keys.signing_key(approval.SMART_ID_KEY),
        ledger=vault.SharedNodeLog(tmp_path / "ledger", keys),
    )
    demo_shop.enrol(smartid, datetime.now(UTC))  # l3-1 (D-301) a Level 3 in PT, qm-1 (D-901) the QM
    hub_store.migrate(database.url)
    index.migrate(database.url)
    logins = Logins(database.url)
    logins.add("lee", PASSWORD, role=Role.LEVEL3, employee_id="D-301")
    logins.add("qm", PASSWORD, role=Role.QUALITY_MANAGER, employee_id="D-901")

    # The Level 3 writes the emergency change (signed by SMART-ID as its author): held until approved.
    edited = _emergency(contract)
    revision = approval.spec_revision(edited)
    authored = contract_signatures.sign(
        smartid, "D-301", act="authorship", contract="penetrant", revision=revision, actor="lee"
    )
    held = await driver.apply([edited], settings, author=authored.token)
    assert next(a.outcome for a in held if a.name == "penetrant").startswith("pending approval")

    import nats

    connection = await nats.connect(nats_floor.hub_url)
    late = datetime.now(UTC) + timedelta(hours=25)  # the clock past the countersignature's 24 h
    central = policy_central.PolicyCentral(
        database.url,
        database.url,
        connection,
        smartid,
        approve=functools.partial(approver.on_embedded_floor, settings=settings),
        clock=lambda: late,
    )
    guard = auth.Guard(logins)
    app = create_app(
        _no_floor,
        routers=[
            auth.router(logins),
            *central.routers(guard),
            compliance_service.router(database.url, guard),
            people.router(smartid, guard),
        ],
        logins=logins,
    )
    port = ports.free_port()
    server, task = await serve_web(app, "127.0.0.1", port)
    base = f"http://127.0.0.1:{port}"
    lee = await _signed_in(base, "lee")
    qm = await _signed_in(base, "qm")
    try:
        # The emergency route: its author, a Level 3 in PT, approves alone; it goes out at once.
        alone = await lee.post("/policy/contracts/penetrant/approve", data={"revision": revision})
        assert alone.status_code == 200, alone.text
        assert f"approved revision {revision[:12]}" in alone.text
        after = await _held(nats_floor.hub_url)
        assert after["pt-1"] != before["pt-1"]  # pt-1's bundle is the emergency revision's

        # Within the 24 h (the wall clock): due, not yet overdue.
        due = await compliance_service.ContractFlags(central.approvals).refresh()
        assert len(due) == 1 and "OVERDUE" not in due[0] and "must countersign by" in due[0]
        # Past them: overdue, on every page, signed in or not.
        (overdue,) = await central.flags.refresh()
        assert overdue.startswith(f"OVERDUE: emergency revision {revision[:12]} of penetrant")
        assert "l3-1's approval alone" in overdue
        for path in PAGES:
            page = await qm.get(path)
            assert page.status_code == 200, (path, page.status_code)
            assert _banners(page.text) == [overdue], path
        async with httpx.AsyncClient(base_url=base) as anonymous:
            assert _banners((await anonymous.get("/login")).text) == [overdue]
        listed = (await qm.get("/policy")).text
        assert "CountersignOverdue" in listed and 'class="countersign"' in listed
        approve_page = (await qm.get("/policy/contracts/penetrant/approve")).text
        assert f'data-revision="{revision}" data-state="CountersignOverdue"' in approve_page
        assert "Countersign revision" in approve_page

        # The author cannot countersign their own emergency; the quality manager does.
        again = await lee.post("/policy/contracts/penetrant/approve", data={"revision": revision})
        assert again.status_code == 409 and f"badge l3-1 wrote revision {revision[:12]}" in again.text
        signed = await qm.post("/policy/contracts/penetrant/approve", data={"revision": revision})
        assert signed.status_code == 200, signed.text
        assert await central.flags.refresh() == []
        for path in PAGES:
            assert _banners((await qm.get(path)).text) == [], path
        assert "CountersignOverdue" not in (await qm.get("/policy")).text
    finally:
        await lee.aclose()
        await qm.aclose()
        server.should_exit = True
        await task
        await central.stop()
        await connection.close()
        logins.close()
    (record,) = [r for r in await driver.approval_records(settings) if r.contract == "penetrant"]
    entry = record.find(revision)
    assert entry is not None and [a.badge for a in entry.approvals] == ["l3-1", "qm-1"]
    assert entry.state(late) == approval.APPROVED
