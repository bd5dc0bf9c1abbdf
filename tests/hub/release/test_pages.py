"""The work pages and ``/api/v1`` as people use them: signed in, by role, over real HTTP and in Chromium."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext

from smart.access.roles import Role
from smart.hub.travelers.models import TravelerIn
from smart.hub.vault.logins import Logins
from smart.hub.web import auth
from smart.hub.web.app import create_app
from smart.hub.work import WorkServices
from smart.runtime import ports
from smart.runtime.floor import FloorStatus
from smart.runtime.up import serve_web
from smart.testing.browser import DESKTOP, async_page, screenshot_path
from tests.hub.conftest import PASSWORD
from tests.hub.release.test_release import keys
from tests.hub.shop import PROCEDURES, STATIONS, Work, client, order, route_pt_to_sr


async def _no_floor() -> FloorStatus:
    return FloorStatus(healthy=True, services=[], checked_at=time.time())


@dataclass
class Hub:
    url: str
    services: WorkServices


@pytest.fixture
async def hub(work: Work, js: JetStreamContext) -> AsyncIterator[Hub]:
    logins = Logins(work.db.owner_url)
    for username, role in (("qm-anna", Role.QUALITY_MANAGER), ("op-7", Role.OPERATOR)):
        logins.add(username, PASSWORD, role=role)
    services = WorkServices(
        work.db.app_url, keys=work.keys, ledger_dir=work.ledger_dir, stations=STATIONS, js=js
    )
    guard = auth.Guard(logins)
    app = create_app(_no_floor, routers=[auth.router(logins), *services.routers(guard)])
    port = ports.free_port()
    server, task = await serve_web(app, "127.0.0.1", port)
    try:
        yield Hub(f"http://127.0.0.1:{port}", services)
    finally:
        server.should_exit = True
        await task
        await services.stop()


async def _signed_in(url: str, username: str) -> httpx.AsyncClient:
    session = httpx.AsyncClient(base_url=url, follow_redirects=False)
    answer = await session.post("/login", data={"username": username, "password": PASSWORD, "next": "/pos"})
    assert answer.status_code == 303
    return session


async def _sign_in_page(page: Any, url: str, username: str, target: str) -> None:
    await page.goto(f"{url}/login?next={target}")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button")


def _json(model: Any) -> Any:
    return model.model_dump(mode="json", by_alias=True)


async def test_a_quality_manager_enters_reviews_and_releases_through_the_api_and_an_operator_cannot(
    hub: Hub, js: JetStreamContext
) -> None:
    qm, op = await _signed_in(hub.url, "qm-anna"), await _signed_in(hub.url, "op-7")
    try:
        assert (await qm.post("/api/v1/clients", json=_json(client()))).status_code == 201
        added = await qm.post("/api/v1/pos", json=_json(order()))
        assert added.status_code == 201, added.text
        for procedure in PROCEDURES:
            assert (await qm.post("/api/v1/procedures", json=_json(procedure))).status_code == 201
        routed = await qm.put("/api/v1/pos/PO-4411/lines/1/traveler", json=_json(route_pt_to_sr()))
        assert routed.status_code == 200, routed.text

        early = await qm.post("/api/v1/pos/PO-4411/lines/1/release")
        assert early.status_code == 422 and early.json()["detail"][0]["field"] == "review"
        assert await keys(js) == set()

        assert (
            await op.post("/api/v1/pos/PO-4411/lines/1/review", json={"outcome": "accepted"})
        ).status_code == 403
        reviewed = await qm.post(
            "/api/v1/pos/PO-4411/lines/1/review", json={"outcome": "accepted", "notes": "ok"}
        )
        assert reviewed.status_code == 200 and reviewed.json()["reviewed"] is True
        assert (await op.post("/api/v1/pos/PO-4411/lines/1/release")).status_code == 403
        released = await qm.post("/api/v1/pos/PO-4411/lines/1/release")
        assert released.status_code == 200, released.text
        assert released.json()["stations"] == ["sr-1", "pt-1"]

        bad_line = {**_json(order("PO-9").lines[0]), "flowdowns": []}
        refused = await qm.post("/api/v1/pos/PO-4411/lines", json=bad_line)
        assert refused.status_code == 422 and "flowdowns" in refused.text

        found = await op.get("/api/v1/pos", params={"q": "BRK"})
        assert [(row["po"], row["line"]) for row in found.json()] == [("PO-4411", "1")]
        anonymous = await httpx.AsyncClient(base_url=hub.url).get("/api/v1/pos")
        assert anonymous.status_code == 401

        bad_file = b"code,name,retention,nadcap_required\nACME,Acme,7 years,perhaps\n"
        dry = await qm.post("/api/v1/import/clients", params={"dry_run": "false"}, content=bad_file)
        assert dry.status_code == 200 and dry.json()["written"] is False
        assert [(p["row"], p["column"]) for p in dry.json()["problems"]] == [(2, "nadcap_required")]

        schema = (await qm.get("/openapi.json")).json()
        assert "/api/v1/pos/{po}/lines/{line}/release" in schema["paths"]
        assert "LineView" in schema["components"]["schemas"]
    finally:
        await qm.aclose()
        await op.aclose()


async def test_the_po_page_shows_review_and_release_to_a_quality_manager_and_not_to_an_operator(
    hub: Hub,
) -> None:
    work = hub.services
    work.clients.add_client(client(), actor="qm-anna")
    work.clients.add_po(order(), actor="qm-anna")
    for procedure in PROCEDURES:
        work.travelers.approve_procedure(procedure, actor="l3-1")
    work.travelers.save("PO-4411", "1", route_pt_to_sr(), actor="l3-1")
    async with async_page(DESKTOP) as page:
        await _sign_in_page(page, hub.url, "op-7", "/pos/PO-4411")
        await page.wait_for_selector("#line-1")
        assert await page.locator(".review-form").count() == 0
        assert await page.locator(".release-form").count() == 0
        await page.screenshot(path=str(screenshot_path("work-po-page-operator")))
        await page.click("text=Sign out")

        await _sign_in_page(page, hub.url, "qm-anna", "/pos/PO-4411")
        await page.wait_for_selector("#line-1")
        await page.click(".release-form button")  # before review: refused, named
        assert "not contract-reviewed" in (await page.text_content(".refused") or "")
        await page.screenshot(path=str(screenshot_path("work-po-page-release-refused")))
        await page.fill(".review-form input[name=notes]", "capability and clauses checked")
        await page.click(".review-form button")
        await page.wait_for_selector("#line-1[data-reviewed=yes]")
        await page.click(".release-form button")
        await page.wait_for_selector("#line-1 .released:has-text('released v1')")
        assert "pt-1" in (await page.text_content("#line-1 .job") or "")
        await page.screenshot(path=str(screenshot_path("work-po-page-released")), full_page=True)

        await page.goto(f"{hub.url}/projects")
        await page.wait_for_selector("#projects tr[data-po='PO-4411']")
        await page.screenshot(path=str(screenshot_path("work-projects-page")))
        await page.goto(f"{hub.url}/pos?q=BRK")
        assert await page.locator("#pos tr[data-po='PO-4411']").count() == 1
        await page.goto(f"{hub.url}/clients")
        assert "10 years after final payment" in (
            await page.text_content("#clients tr[data-client=AEROSPAR]") or ""
        )

    # a change after release is a new revision, shown with its reason beside the released one
    only_pt = TravelerIn(
        operations=(route_pt_to_sr().operations[1],), reason="client ships from its own dock"
    )
    work.travelers.save("PO-4411", "1", only_pt, actor="l3-1")
    async with async_page(DESKTOP) as page:
        await _sign_in_page(page, hub.url, "qm-anna", "/pos/PO-4411")
        await page.wait_for_selector("#line-1 .revisions")
        history = await page.locator("#line-1 .revisions li").all_inner_texts()
        assert history[0].startswith("rev 1 released") and history[1].startswith("rev 2 draft")
        assert "client ships from its own dock" in history[1]
        assert "sr-1" in (
            await page.text_content("#line-1 .job") or ""
        )  # the floor follows rev 1 until released
        await page.screenshot(path=str(screenshot_path("work-po-page-traveler-revised")), full_page=True)


async def test_the_import_page_lists_a_bad_files_problems_by_row_and_column_and_writes_a_good_one(
    hub: Hub, tmp_path: Path
) -> None:
    from tests.hub.clients.test_importing import BAD, GOOD

    hub.services.clients.add_client(client(), actor="qm-anna")
    bad, good = tmp_path / "bad.csv", tmp_path / "pos.csv"
    bad.write_text(BAD)
    good.write_text(GOOD)
    async with async_page(DESKTOP) as page:
        await _sign_in_page(page, hub.url, "qm-anna", "/pos/import")
        await page.wait_for_selector("#import-form")
        await page.set_input_files("input[name=file]", str(bad))
        await page.check("input[name=write]")
        await page.click("#import-form button")
        await page.wait_for_selector("#import-problems:not([hidden]) tbody tr")
        cells = await page.locator("#import-problems tbody tr").all_inner_texts()
        assert any(c.startswith("2\tdue_date") for c in cells), cells
        assert any(c.startswith("3\tunit") for c in cells), cells
        assert "nothing written" in (await page.text_content("#import-outcome") or "")
        await page.screenshot(path=str(screenshot_path("work-import-refused")), full_page=True)
        assert hub.services.clients.po("PO-6003") is None

        await page.set_input_files("input[name=file]", str(good))
        await page.click("#import-form button")
        await page.wait_for_selector("#import-outcome:has-text('Imported 3 lines of 2 POs')")
        await page.screenshot(path=str(screenshot_path("work-import-written")))
    assert hub.services.clients.po("PO-5001") is not None
