"""The Pay page in Chromium: a refused line named on the page and nothing written, then an invoice issued."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from smart.access.roles import Role
from smart.hub.pay import service as pay_service
from smart.hub.service_log import PAY
from smart.hub.vault.logins import Logins
from smart.hub.web import auth
from smart.hub.web.app import create_app
from smart.runtime import ports
from smart.runtime.floor import FloorStatus
from smart.runtime.up import serve_web
from smart.testing.browser import DESKTOP, async_page, screenshot_path
from tests.hub.conftest import PASSWORD
from tests.hub.pay.test_store import shipped_floor
from tests.hub.shop import Work


async def _no_floor() -> FloorStatus:
    return FloorStatus(healthy=True, services=[], checked_at=time.time())


@pytest.fixture
async def pay_hub(work: Work) -> AsyncIterator[tuple[str, pay_service.PayServices]]:
    pay_service.migrate(work.db.owner_url)
    shipped_floor(work)
    logins = Logins(work.db.owner_url)
    logins.add("qm-anna", PASSWORD, role=Role.QUALITY_MANAGER)
    logins.add("op-7", PASSWORD, role=Role.OPERATOR)
    services = pay_service.PayServices(work.db.app_url, keys=work.keys, ledger_dir=work.ledger_dir)
    app = create_app(_no_floor, routers=[auth.router(logins), *services.routers(auth.Guard(logins))])
    port = ports.free_port()
    server, task = await serve_web(app, "127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}", services
    finally:
        server.should_exit = True
        await task
        await services.stop()


async def test_the_pay_page_refuses_an_uncertified_line_on_the_page_and_issues_a_certified_one(
    pay_hub: tuple[str, pay_service.PayServices], work: Work
) -> None:
    url, services = pay_hub
    async with async_page(DESKTOP) as page:
        await page.goto(f"{url}/login?next=/pay")
        await page.fill("input[name=username]", "op-7")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button")
        await page.wait_for_selector("#documents")
        assert await page.locator("#invoice-form").count() == 0  # an operator may look, not invoice
        await page.click("text=Sign out")

        await page.goto(f"{url}/login?next=/pay")
        await page.fill("input[name=username]", "qm-anna")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button")
        await page.wait_for_selector("#invoice-form")
        await page.fill("input[name=po]", "PO-4411")
        await page.fill("input[name=lines]", "2")
        await page.click("#invoice-form button")
        await page.wait_for_selector(".refused")
        refusal = await page.text_content(".refused") or ""
        assert refusal.startswith("lines[0]:") and "without a signed certificate" in refusal
        await page.screenshot(path=str(screenshot_path("pay-invoice-refused")))
        assert services.pay.documents() == [] and work.node(PAY).entries() == []

        await page.fill("input[name=lines]", "1")
        await page.click("#invoice-form button")
        await page.wait_for_selector("#documents tr[data-document] .total")
        assert (await page.text_content("#documents tr[data-document] .total") or "").strip() == "85.00"
        await page.screenshot(path=str(screenshot_path("pay-invoice-issued")))
    (issued,) = services.pay.documents()
    assert issued.po == "PO-4411" and [ln.line for ln in issued.lines] == ["1"]
