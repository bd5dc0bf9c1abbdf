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

import functools
import re
from datetime import UTC, datetime, timedelta
from html import unescape

import httpx
import nats

from smart.contracts import approval
from smart.embedded import approver, driver
from smart.hub.compliance import index
from smart.hub.compliance import policy as policy_central
from smart.hub.compliance import service as compliance_service
from smart.hub.web import auth, people
from smart.hub.web.app import create_app
from smart.ledger import hub_store
from smart.runtime import ports
from smart.runtime.up import serve_web
from smart.testing.plugin import FreshDatabase
from tests.hub.compliance.conftest import (
    LEVEL_3,
    DemoPeople,
    Seeded,
    held_revisions,
    hold_change,
    no_floor,
    signed_in,
)

PAGES = (
    "/policy",
    "/policy/contracts/penetrant",
    "/policy/contracts/penetrant/approve",
    "/policy/at",
    "/compliance",
    "/people",
    "/admin/status",
)


def _banners(html: str) -> list[str]:
    found = re.findall(r'class="refused banner"[^>]*>(.*?)</p>', html)
    return [re.sub(r"\s+", " ", unescape(b)).strip() for b in found]


async def test_an_emergency_is_flagged_on_every_page_past_24_h_until_a_second_person_countersigns(
    seeded: Seeded, demo_people: DemoPeople, database: FreshDatabase
) -> None:
    nats_floor, settings = seeded.floor, seeded.settings
    smartid, logins = demo_people.smartid, demo_people.logins
    before = await held_revisions(nats_floor.hub_url)
    hub_store.migrate(database.url)
    index.migrate(database.url)

    # The Level 3 writes the emergency change (signed by SMART-ID as its author): held until approved.
    revision = await hold_change(seeded, smartid, author=LEVEL_3, actor="lee", emergency=True)

    connection = await nats.connect(nats_floor.hub_url)
    late = datetime.now(UTC) + timedelta(hours=25)  # the clock past the countersignature's 24 h
    central = policy_central.PolicyCentral(
        database.url,
        connection,
        smartid,
        approve=functools.partial(approver.on_embedded_floor, settings=settings),
        clock=lambda: late,
    )
    guard = auth.Guard(logins)
    app = create_app(
        no_floor,
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
    lee = await signed_in(base, "lee")
    qm = await signed_in(base, "qm")
    try:
        # The emergency route: its author, a Level 3 in PT, approves alone; it goes out at once.
        alone = await lee.post("/policy/contracts/penetrant/approve", data={"revision": revision})
        assert alone.status_code == 200, alone.text
        assert f"approved revision {revision[:12]}" in alone.text
        after = await held_revisions(nats_floor.hub_url)
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
    (record,) = [r for r in await driver.approval_records(settings) if r.contract == "penetrant"]
    entry = record.find(revision)
    assert entry is not None and [a.badge for a in entry.approvals] == ["l3-1", "qm-1"]
    assert entry.state(late) == approval.APPROVED
