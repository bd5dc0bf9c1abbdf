"""The second person approves on the hub page, signed by SMART-ID; pt-1 then enforces the revision.

Real parts: the floor's NATS with a pt-1 leaf and its node agent, PostgreSQL (SMART-ID, logins), the
embedded driver's approver (what ``smart contract approve`` runs) and Chromium. The page is refused
for the revision's author, for a Level 2 whose records give no approving authority, and for a stale
page naming a revision no longer pending; each says why and changes nothing. Then the quality
manager who did not write it approves, and pt-1's enforced revision changes.
"""

from __future__ import annotations

import functools

import httpx
import nats

from smart.access.roles import Role
from smart.contracts import approval
from smart.embedded import driver
from smart.hub.compliance import approve_page
from smart.hub.vault.logins import Logins
from smart.hub.vault.smartid import SmartId
from smart.hub.web import auth
from smart.hub.web.app import create_app
from smart.node.agent import NodeAgent
from smart.runtime import ports
from smart.runtime.up import approve_contract, serve_web
from smart.testing.browser import DESKTOP, async_page, screenshot_path
from smart.testing.plugin import FreshDatabase
from tests.access.test_smartid import add_inspector
from tests.hub.compliance.conftest import PASSWORD, Seeded, held_revisions, hold_change, no_floor
from tests.node.conftest import eventually


async def test_the_second_person_approves_on_the_page_and_pt1_enforces_it(
    seeded: Seeded, smartid: SmartId, pt1: NodeAgent, database: FreshDatabase
) -> None:
    agent, settings, nats_floor = pt1, seeded.settings, seeded.floor
    first = agent.enforcer.revisions["penetrant"]
    for employee, name, badge in (
        ("E-QM1", "Quinn Quality", "B-QM1"),
        ("E-QM2", "Robin Quality", "B-QM2"),
    ):
        smartid.add_person(
            employee_id=employee, name=name, badge_id=badge, roles=["quality_manager"], actor="admin"
        )
    add_inspector(smartid)  # E-1001, badge B-0042: a Level 2 in PT, no approving authority
    logins = Logins(database.url)
    logins.add("quinn", PASSWORD, role=Role.QUALITY_MANAGER, employee_id="E-QM1")
    logins.add("robin", PASSWORD, role=Role.QUALITY_MANAGER, employee_id="E-QM2")
    logins.add("dana", PASSWORD, role=Role.LEVEL3, employee_id="E-1001")

    # Quinn writes a change (signed by SMART-ID as its author): held, pt-1 keeps what it enforces.
    revision = await hold_change(seeded, smartid, author="E-QM1", actor="quinn")

    connection = await nats.connect(nats_floor.hub_url)

    async def approvals() -> approval.KvApprovalStore:
        return approval.KvApprovalStore(await approval.bucket(connection.jetstream()))

    guard = auth.Guard(logins)
    page_router = approve_page.router(
        guard,
        smartid=smartid,
        approvals=approvals,
        approve=functools.partial(approve_contract, settings=settings),
    )
    app = create_app(no_floor, routers=[auth.router(logins), page_router])
    port = ports.free_port()
    server, task = await serve_web(app, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as anonymous:
            refused = await anonymous.post("/policy/contracts/penetrant/approve", data={"revision": revision})
            assert refused.status_code == 401
        async with async_page(DESKTOP) as page:

            async def sign_in(username: str) -> None:
                await page.context.clear_cookies()
                await page.goto(f"{url}/login?next=/policy/contracts/penetrant/approve")
                await page.fill("input[name=username]", username)
                await page.fill("input[name=password]", PASSWORD)
                await page.click("button")
                await page.goto(f"{url}/policy/contracts/penetrant/approve")

            await sign_in("quinn")
            assert await page.get_attribute("#pending", "data-revision") == revision
            assert (await page.text_content("#pending .author") or "") == "B-QM1"
            diff = await page.text_content("#pending .diff") or ""
            assert "spec.rules.pt-uva-intensity.limits.min: 1000.0 → 1200.0" in diff
            await page.screenshot(path=str(screenshot_path("policy-approve-pending")), full_page=True)
            await page.click("#approve")  # the author
            refusal = await page.text_content("#refusal") or ""
            assert "B-QM1 wrote revision" in refusal and "a second person must approve it" in refusal
            await page.screenshot(path=str(screenshot_path("policy-approve-refused-author")), full_page=True)

            await sign_in("dana")  # a Level 2: SMART-ID's records give no approving authority
            await page.click("#approve")
            assert "needs the quality manager's role or a current Level 3" in (
                await page.text_content("#refusal") or ""
            )

            await sign_in("robin")  # a stale page: the form names a revision no longer pending
            stale = approval.spec_revision(seeded.penetrant)
            await page.eval_on_selector(
                "input[name=revision]", "(input, value) => { input.value = value; }", stale
            )
            await page.click("#approve")
            assert f"revision {stale[:12]} of penetrant is no longer the pending one" in (
                await page.text_content("#refusal") or ""
            )
            assert agent.enforcer.revisions["penetrant"] == first  # nothing changed at pt-1

            await page.goto(f"{url}/policy/contracts/penetrant/approve")
            await page.click("#approve")  # robin, the quality manager who did not write it
            done = await page.text_content("#approved") or ""
            assert f"approved revision {revision[:12]}" in done
            await eventually(
                lambda: agent.enforcer.revisions.get("penetrant") not in (None, first),
                what="pt-1 enforcing the approved revision",
            )
            assert await page.locator("#pending").count() == 0
            await page.screenshot(path=str(screenshot_path("policy-approve-approved")), full_page=True)
    finally:
        server.should_exit = True
        await task
        await connection.close()
    record = await driver.approval_records(settings)
    (penetrant,) = [r for r in record if r.contract == "penetrant"]
    entry = penetrant.find(revision)
    assert entry is not None and [a.badge for a in entry.approvals] == ["B-QM2"]
    assert penetrant.distributed == revision
    store_revisions = await held_revisions(nats_floor.hub_url)
    assert store_revisions["pt-1"] == agent.enforcer.revisions["penetrant"]
