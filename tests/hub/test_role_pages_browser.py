"""The Education, PeopleOps, Growth and Feedback pages in Chromium, signed in, on a real PostgreSQL.

One module-scoped shop: SMART-ID with the demo people and a new hire for pt-1, Education and
PeopleOps on the Vault's login role, Growth and Feedback on the Business login role over one PO
status as the feed keeps it. One browser session walks the four pages from the nav bar: the
hire's checklist says the UV safety course is missing, a completion typed on the Education page
grants the credential, and the checklist then shows the training done; Growth counts the PO's
job; a complaint typed on the Feedback page gets its reference and a CAPA request, and one on a
PO this hub never heard of is refused naming the PO.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from smart.access.roles import Role
from smart.bus.hub_roles import HubRole
from smart.hub import database_roles
from smart.hub.education import service as education
from smart.hub.education import web as education_web
from smart.hub.feedback import service as feedback
from smart.hub.feedback import web as feedback_web
from smart.hub.growth import web as growth_web
from smart.hub.peopleops import onboarding
from smart.hub.peopleops import web as peopleops_web
from smart.hub.published import feed
from smart.hub.service_log import ServiceNodeLog
from smart.hub.vault import service as vault
from smart.hub.vault.logins import Logins
from smart.hub.vault.smartid import SmartId
from smart.hub.web import auth
from smart.hub.web.app import create_app
from smart.hub.web.status import FloorStatus
from smart.keys import KeyStore
from smart.runtime import demo_shop, ports
from smart.runtime.background import BackgroundFloor
from smart.runtime.up import serve_web
from smart.testing.browser import DESKTOP, async_page, screenshot_path
from smart.testing.patience import STATE_DEADLINE_S
from smart.testing.plugin import fresh_database

PASSWORD = "correct horse battery"
HIRE = "E-7301"


@dataclass
class Shop:
    smartid: SmartId
    school: education.Education
    people: onboarding.PeopleOps
    desk: feedback.Feedback
    node: ServiceNodeLog
    logins: Logins
    business_url: str


async def _no_floor() -> FloorStatus:
    return FloorStatus(healthy=True, services=[], checked_at=time.time())


@pytest.fixture(scope="module")
def shop(postgres_floor: BackgroundFloor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    with fresh_database(postgres_floor) as fresh:
        owner_url = fresh.url
        root = Path(tmp_path_factory.mktemp("role-pages"))
        keys = KeyStore(root / "keys")
        smartid = SmartId(
            owner_url,
            key=keys.signing_key(vault.CREDENTIAL_KEY),
            ledger=vault.SharedNodeLog(root / "ledger", keys),
        )
        demo_shop.enrol(smartid, datetime.now(UTC))
        smartid.add_person(employee_id=HIRE, name="Noor Newhire", badge_id="nh-1", actor="qm-alice")
        vault_url = database_roles.ensure_login_role(owner_url, HubRole.VAULT, root / "secrets")
        business_url = database_roles.ensure_login_role(owner_url, HubRole.BUSINESS, root / "secrets")
        vault_role = database_roles.DATABASE_ROLES[HubRole.VAULT]
        business_role = database_roles.DATABASE_ROLES[HubRole.BUSINESS]
        education.migrate(owner_url, role=vault_role)
        onboarding.migrate(owner_url, role=vault_role)
        feed.migrate(owner_url, role=business_role)
        feedback.migrate(owner_url, role=business_role)
        people = onboarding.PeopleOps(vault_url, smartid)
        people.hire(HIRE, hired_on=date.today(), position="PT operator", stations=["pt-1"], actor="qm-alice")
        released = datetime.now(UTC) - timedelta(hours=6)
        body = {
            "po": "PO-4411",
            "line": "1",
            "client": "Acme Aero",
            "process": "PT",
            "status": "handed-off",
            "station": "pt-1",
            "released_at": released.isoformat(),
            "handed_off_at": (released + timedelta(hours=4)).isoformat(),
            "accepted": True,
        }
        # as the feed keeps what the Floor published
        with psycopg.connect(owner_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO published.records (kind, key, body, published_at, feed_seq)"
                " VALUES (%s, %s, %s, %s, 1)",
                ("po-status", "PO-4411-1", Jsonb(body), datetime.now(UTC)),
            )
        node = ServiceNodeLog(root / "ledger", keys, node=feedback.NODE)
        logins = Logins(owner_url)
        logins.add("qm-alice", PASSWORD, role=Role.QUALITY_MANAGER)
        yield Shop(
            smartid,
            education.Education(vault_url, smartid),
            people,
            feedback.Feedback(business_url, node),
            node,
            logins,
            business_url,
        )


@dataclass
class Seen:
    nav: list[str]
    training_before: str
    granted: str
    training_after: str
    growth_row: list[str]
    complaint: str
    refused: str
    anonymous_url: str


async def _walk(shop: Shop) -> Seen:
    guard = auth.Guard(shop.logins)
    app = create_app(
        _no_floor,
        routers=[
            auth.router(shop.logins),
            education_web.router(shop.school, guard),
            peopleops_web.router(shop.people, guard),
            growth_web.router(shop.business_url, guard),
            feedback_web.router(shop.desk, guard),
        ],
    )
    port = ports.free_port()
    server, task = await serve_web(app, "127.0.0.1", port)
    base = f"http://127.0.0.1:{port}"
    try:
        async with async_page(DESKTOP) as page:
            await page.goto(f"{base}/education")
            anonymous_url = page.url  # not signed in: sent to sign in first
            await page.goto(f"{base}/login?next=/peopleops")
            await page.fill("input[name=username]", "qm-alice")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button")
            await page.wait_for_selector("#hires")
            nav = [await a.inner_text() for a in await page.query_selector_all("nav a")]
            await page.click(f"tr[data-employee='{HIRE}'] a")
            await page.wait_for_selector("#onboarding")
            before = await page.inner_text("table[data-station='pt-1'] tr[data-item='training']")
            await page.screenshot(path=str(screenshot_path("hub-peopleops")), full_page=True)

            await page.click("nav a[href='/education']")
            await page.wait_for_selector("#complete")
            await page.fill("#complete input[name=employee_id]", HIRE)
            await page.select_option("#complete select[name=course]", "uv-safety")
            await page.fill("#complete input[name=on]", date.today().isoformat())
            await page.click("#complete button")
            await page.wait_for_selector("#done")
            granted = await page.inner_text("#done")
            await page.screenshot(path=str(screenshot_path("hub-education")), full_page=True)

            await page.goto(f"{base}/peopleops?employee={HIRE}")
            after = await page.inner_text("table[data-station='pt-1'] tr[data-item='training']")

            await page.click("nav a[href='/growth']")
            await page.wait_for_selector("#growth")
            row = [
                await c.inner_text() for c in await page.query_selector_all("tr[data-client='Acme Aero'] td")
            ]
            await page.screenshot(path=str(screenshot_path("hub-growth")), full_page=True)

            await page.click("nav a[href='/feedback']")
            await page.wait_for_selector("#say")
            await page.fill("#say input[name=po]", "PO-9999")
            await page.select_option("#say select[name=kind]", "complaint")
            await page.fill("#say input[name=text]", "late")
            await page.click("#say button")
            await page.wait_for_selector(".refused")
            refused = await page.inner_text(".refused")
            await page.fill("#say input[name=po]", "PO-4411")
            await page.fill("#say input[name=line]", "1")
            await page.select_option("#say select[name=kind]", "complaint")
            await page.fill("#say input[name=text]", "dye residue on the bore")
            await page.click("#say button")
            await page.wait_for_selector("#done")
            complaint = await page.inner_text("#done")
            await page.wait_for_selector("tr[data-reference='FB-00001']")
            await page.screenshot(path=str(screenshot_path("hub-feedback")), full_page=True)
            return Seen(nav, before, granted, after, row, complaint, refused, anonymous_url)
    finally:
        server.should_exit = True
        await task


def test_the_four_pages_signed_in_from_the_nav_bar_in_chromium(shop: Shop) -> None:
    seen = asyncio.run(asyncio.wait_for(_walk(shop), STATE_DEADLINE_S))
    assert "/login" in seen.anonymous_url
    assert {"Education", "PeopleOps", "Growth", "Feedback"} <= set(seen.nav)
    assert "missing" in seen.training_before and "uv-safety not completed" in seen.training_before
    assert seen.granted.startswith(f"{HIRE} completed uv-safety: granted ")
    assert "done" in seen.training_after and "missing" not in seen.training_after
    issued = [c for c in shop.smartid.credentials(HIRE) if c.credential.scope.get("course") == "uv-safety"]
    assert [c.credential.credential_id for c in issued] == [seen.granted.rsplit(" ", 1)[1]]
    assert seen.growth_row[:3] == ["Acme Aero", "PT", "1"] and seen.growth_row[3] == "4.0"
    assert seen.growth_row[5] == "100 %"
    assert "po: 'PO-9999' is not a PO published to this hub" in seen.refused
    assert seen.complaint == "received as FB-00001 (a CAPA is requested)"
    assert [e.reference for e in shop.desk.entries()] == ["FB-00001"]  # the refused one kept nothing
    capa = [e for e in shop.node.entries() if e.kind == feedback.CAPA_REQUESTED]
    assert [(e.subject, e.data["reference"]) for e in capa] == [("po:PO-4411", "FB-00001")]
