"""The traveler edit page in Chromium: checked as the API checks it, each problem beside its field."""

from __future__ import annotations

import httpx

from smart.hub.service_log import TRAVELERS
from smart.testing.browser import DESKTOP, async_page, screenshot_path
from tests.hub.conftest import PASSWORD
from tests.hub.release.test_pages import Hub, _sign_in_page
from tests.hub.shop import QM, Work, entered

FORM = "#traveler-form"


async def _error(page: object, field: str) -> str:
    text = await page.text_content(f".field-error[data-field='{field}']")  # type: ignore[attr-defined]
    return text or ""


async def test_a_traveler_is_edited_on_its_page_refused_beside_the_bad_field_and_revised_after_release(
    hub: Hub, work: Work
) -> None:
    services = hub.services
    entered(work)
    written = len(work.node(TRAVELERS).entries())
    async with async_page(DESKTOP) as page:
        await _sign_in_page(page, hub.url, "qm-anna", "/pos/PO-4411")
        await page.click("#line-1 .edit-traveler")
        await page.wait_for_selector(FORM)
        assert await page.input_value("input[name=op-0-station]") == "sr-1"
        assert await page.input_value("input[name=op-1-procedure]") == "PT-PROC-12"

        # an unknown station, refused by the store as the API refuses it
        await page.fill("input[name=op-0-station]", "xx-9")
        await page.click(f"{FORM} button")
        await page.wait_for_selector(".field-error[data-field='operations[0].station']")
        assert "unknown station xx-9" in await _error(page, "operations[0].station")
        assert await page.input_value("input[name=op-0-station]") == "xx-9"  # what was typed stays
        await page.screenshot(path=str(screenshot_path("work-traveler-edit-refused")), full_page=True)

        # a blank field and an unapproved revision in a new row: the model's words, beside the field
        await page.fill("input[name=op-0-station]", "sr-1")
        for name, value in (("station", "pt-1"), ("process", "cleaning"), ("procedure", "PT-PROC-12")):
            await page.fill(f"input[name=op-2-{name}]", value)
        await page.click(f"{FORM} button")
        await page.wait_for_selector(".field-error[data-field='operations[2].procedure_revision']")
        assert "at least 1 character" in await _error(page, "operations[2].procedure_revision")
        await page.fill("input[name=op-2-procedure_revision]", "C")
        for name, value in (("spec", "AMS 2644"), ("class", "Type-I"), ("acceptance_criteria", "clean")):
            await page.fill(f"input[name=op-2-{name}]", value)
        await page.click(f"{FORM} button")
        await page.wait_for_selector(".field-error[data-field='operations[2].procedure_revision']")
        assert "approved revision is D" in await _error(page, "operations[2].procedure_revision")
        assert len(work.node(TRAVELERS).entries()) == written  # nothing of the three tries was written
        assert len(work.travelers.latest("PO-4411", "1").operations) == 2  # type: ignore[union-attr]

        # the draft edited in place
        await page.fill("input[name=op-2-procedure_revision]", "D")
        await page.click(f"{FORM} button")
        await page.wait_for_selector("#line-1 table.traveler")
        draft = work.travelers.latest("PO-4411", "1")
        assert (
            draft is not None
            and draft.revision == 1
            and [op.process for op in draft.operations]
            == [
                "shipping",
                "penetrant",
                "cleaning",
            ]
        )
        assert "cleaning" in (await page.text_content("#line-1 table.traveler") or "")

        # released, a change is a new revision and needs its reason
        await services.release.release("PO-4411", "1", actor=QM)
        await page.goto(f"{hub.url}/pos/PO-4411/lines/1/traveler")
        await page.fill("input[name=op-2-station]", "")
        for name in ("process", "procedure", "procedure_revision", "spec", "class", "acceptance_criteria"):
            await page.fill(f"input[name=op-2-{name}]", "")
        await page.click(f"{FORM} button")
        await page.wait_for_selector(".field-error[data-field='reason']")
        assert "needs its reason" in await _error(page, "reason")
        await page.fill("input[name=reason]", "cleaning is done by the client")
        await page.click(f"{FORM} button")
        await page.wait_for_selector("#line-1 .revisions")
        await page.screenshot(path=str(screenshot_path("work-traveler-edit-revised")), full_page=True)
    revised = work.travelers.latest("PO-4411", "1")
    assert (
        revised is not None and revised.revision == 2 and revised.reason == "cleaning is done by the client"
    )
    assert work.travelers.revisions("PO-4411", "1")[0].status == "released"

    # the API names the same field for the same bad value; an operator may not open the page
    async with httpx.AsyncClient(base_url=hub.url) as qm, httpx.AsyncClient(base_url=hub.url) as op:
        for session, name in ((qm, "qm-anna"), (op, "op-7")):
            await session.post("/login", data={"username": name, "password": PASSWORD})
        held = revised.model_dump(mode="json", by_alias=True)
        bad = [{k: v for k, v in o.items() if k != "seq"} for o in held["operations"]]
        bad[0]["station"] = "xx-9"
        answer = await qm.put("/api/v1/pos/PO-4411/lines/1/traveler", json={"operations": bad, "reason": "x"})
        assert answer.status_code == 422 and answer.json()["detail"][0]["field"] == "operations[0].station"
        assert (await op.get("/pos/PO-4411/lines/1/traveler")).status_code == 403
        assert (await op.post("/pos/PO-4411/lines/1/traveler", data={"reason": "x"})).status_code == 403
