"""The kiosk in headless Chromium, in front of a real station (hub, leaf, agent, modules, ledger).

An operator at pt-1 on its 7" screen badges in, is refused at the gate with
the reasons and the standard each comes from, does the station checks that
were missing, is let through, enters the steps' readings (one out of limits
first), releases and hands the job off. A lapsed eye exam is refused at the
badge on a desktop screen and let in once the hub's record is renewed; with
the hub gone, the banner says so and the station goes on deciding. Each
step's screenshot is saved in ``test-artifacts/``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import nats

from smart.contracts import facts as f
from smart.contracts.rules import Level
from smart.hub.streams import ensure_hub_streams
from smart.keys import KeyStore
from smart.modules.vision.module import SCANS_FOLDER
from smart.node import records
from smart.node.kiosk.app import SCREEN_TOKEN_FILE, Kiosk, screen_token
from smart.node.station import StationRuntime
from smart.node.web import create_station_app
from smart.runtime import demo_shop
from smart.runtime.background import BackgroundFloor
from smart.runtime.ports import free_port
from smart.runtime.up import serve_web
from smart.testing.browser import DESKTOP, TOUCH_7_INCH, async_page, screenshot_path
from smart.testing.patience import STATE_DEADLINE_S
from smart.testing.plugin import FloorFactory
from tests.node.conftest import Hub, agent_for, eventually
from tests.node.test_job_no_dead_ends import SHOP as NCR_SHOP
from tests.node.test_job_other_stations import SR_SHOP
from tests.node.test_job_walkthrough import (
    AT,
    PENETRANT_SHOP,
    PENETRANT_STEPS,
    Bench,
    at,
    bare_station,
    bench,
    checks_done,
    deploy,
    entries,
    person,
    walk_penetrant_to_the_gate,
)
from tests.node.test_station_infrastructure_modules import drop


@dataclasses.dataclass
class ShopClock:
    """The time the kiosk stamps on what it sends: the walk-through's day, moved on by the test."""

    now: datetime = AT

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)


@asynccontextmanager
async def kiosk_at(
    pt: Bench, clock: ShopClock, *, probe_every_s: float = 0.2, screen_token: str | None = None
) -> AsyncIterator[str]:
    kiosk = Kiosk(pt.runtime, clock=clock, screen_token=screen_token)
    kiosk.probe.every_s = probe_every_s
    kiosk.probe.start()
    port = free_port("127.0.0.1")
    server, task = await serve_web(create_station_app(pt.runtime.agent, kiosk), "127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        await kiosk.probe.stop()


async def shot(page: Any, name: str) -> None:
    await page.screenshot(path=str(screenshot_path(f"kiosk-{name}")), full_page=True)


async def outcome(page: Any) -> str:
    return str(await page.get_attribute("#outcome", "data-outcome"))


async def reason_rules(page: Any) -> list[str]:
    return [
        str(r)
        for r in await page.eval_on_selector_all(".reason[data-rule]", "els => els.map(e => e.dataset.rule)")
    ]


async def test_operator_is_refused_at_the_gate_fixes_the_checks_and_releases_the_job_on_a_7_inch_screen(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    clock = ShopClock()
    async with (
        bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt,
        kiosk_at(pt, clock) as url,
        async_page(TOUCH_7_INCH) as page,
    ):
        await page.goto(f"{url}/kiosk")
        await page.wait_for_selector("#uplink.online")  # the hub is there
        await shot(page, "01-badge-in")
        await page.fill("#badge", "op-7")
        await page.click("#badge-in")
        assert await outcome(page) == "allow"
        assert await page.text_content("#who") == "op-7"

        await page.fill("#scan-form input[name=job]", "J-1")
        await page.fill("#scan-form input[name=po]", "PO-4411")
        await page.fill("#scan-form input[name=line]", "1")
        await page.fill("#scan-form input[name=part]", "BRK-220")
        await page.fill("#scan-form input[name=serial]", "SN-002")
        await page.click("#scan")
        assert await outcome(page) == "allow", await page.text_content("#outcome")
        assert await page.get_attribute("#state", "data-state") == "traveler-scanned"

        async def start_the_job() -> None:
            for box in ("UV-METER-1", "TAM-146040", "PEN-2291", "nitrile-gloves"):
                await page.check(f"#start-form input[value='{box}']")
            await page.select_option("#start-form select[name=procedure]", "PT-PROC-12@D")
            await page.select_option("#start-form select[name='attr:part-finish']", "grit-blasted")
            clock.advance(1)
            await page.click("#start")

        # No UV-A check and no TAM panel today: the gate says no, with the rule and the standard.
        await start_the_job()
        assert await outcome(page) == "deny"
        refused = await reason_rules(page)
        assert {"pt-uva-checked-today", "pt-tam-panel-today"} <= set(refused), refused
        text = await page.text_content("#outcome") or ""
        assert (
            "ASTM E1417/E1417M (liquid penetrant testing) rev. 21" in text
            and "checked by maintenance" in text
        )
        assert await page.get_attribute("#state", "data-state") == "traveler-scanned"
        assert pt.runtime.interlock is None or not pt.runtime.interlock.energised
        await shot(page, "02-gate-refused-with-reasons")

        # The operator does the missing checks at the kiosk, from the refusal itself.
        await page.click("#do-checks")
        uva = page.locator("#check-uv-a-intensity")
        await uva.locator("select[name=equipment]").select_option("UV-METER-1")
        await uva.locator("input[data-quantity=uv-a-intensity]").fill("1180")
        await uva.locator("input[data-quantity=ambient-white-light]").fill("1.5")
        await uva.locator("button[value=yes]").click()
        assert await outcome(page) == "allow", await page.text_content("#outcome")
        tam = page.locator("#check-tam-panel")
        await tam.locator("select[name=equipment]").select_option("TAM-146040")
        await tam.locator("button[value=yes]").click()
        assert await outcome(page) == "allow", await page.text_content("#outcome")
        assert "passed" in (await page.text_content("#check-tam-panel") or "")
        await shot(page, "03-checks-recorded")
        await page.click("#back")

        # The refused form kept what was chosen: the operator only asks the gate again.
        for box in ("UV-METER-1", "TAM-146040", "PEN-2291", "nitrile-gloves"):
            assert await page.is_checked(f"#start-form input[value='{box}']"), box
        assert "EXPIRED" in (await page.text_content("#start-form") or "")  # PEN-1990, shown as such
        clock.advance(1)
        await page.click("#start")
        assert await outcome(page) == "allow", await page.text_content("#outcome")
        assert await page.get_attribute("#state", "data-state") == "gated"
        await shot(page, "04-gate-allowed")

        # The steps with their readings, limits shown; one tried out of order first.
        readings = {
            "penetrant-dwell": {"part-temperature": "72", "dwell-time": "12"},
            "dry": {"part-temperature": "120", "time-at-max-temperature": "4"},
        }
        steps = ["pre-clean", "penetrant-apply", "penetrant-dwell", "wash", "dry", "developer", "inspect"]
        for step in steps:
            if step == "penetrant-dwell":  # wash before the dwell: the sequence rule refuses it
                await page.locator("#step-wash summary").click()
                await page.click("#do-wash")
                assert await outcome(page) == "deny"
                assert "pt-step-order" in await reason_rules(page)
                await shot(page, "05-step-out-of-order-refused")
            panel = page.locator(f"#step-{step}")
            for quantity, value in readings.get(step, {}).items():
                await panel.locator(f"input[data-quantity={quantity}]").fill(value)
            if step == "dry":
                assert "limit ≤ 140 °F" in (await panel.text_content() or "")
            clock.advance(15)
            await page.click(f"#do-{step}")
            assert await outcome(page) == "allow", (step, await page.text_content("#outcome"))
        await shot(page, "06-steps-done")
        record = await page.text_content("#record") or ""
        assert "penetrant-dwell: part-temperature 72 °F, dwell-time 12 min" in record
        assert "dry: part-temperature 120 °F, time-at-max-temperature 4 min" in record

        clock.advance(10)
        await page.click("#release")
        assert await outcome(page) == "allow", await page.text_content("#outcome")
        assert await page.get_attribute("#state", "data-state") == "released"
        await shot(page, "07-released")
        await page.click("#handoff")
        assert await page.get_attribute("#state", "data-state") == "handed-off"
        await shot(page, "08-handed-off")

        job = pt.runtime.facts().jobs["J-1"]
        assert job.signed_by == "op-7" and job.steps == tuple(steps)
        assert job.measurements["part-temperature"] == f.Reading(120, "°F")
        assert job.step_measurements["penetrant-dwell"]["part-temperature"] == f.Reading(72, "°F")
        transitions = [(e.data["verb"], e.data["allowed"]) for e in pt.entries("job.transition")]
        assert ("start", False) in transitions and transitions[-1] == ("handoff", True)
        assert transitions.count(("step", False)) == 1
        assert {c.check for c in pt.runtime.facts().checks.values()} >= {"uv-a-intensity", "tam-panel"}


async def test_a_lapsed_eye_exam_is_refused_at_the_badge_until_the_hub_renews_it_and_offline_is_shown(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    clock = ShopClock()
    async with (
        bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt,
        kiosk_at(pt, clock) as url,
        async_page(DESKTOP) as page,
    ):
        await page.goto(f"{url}/kiosk")
        await page.fill("#badge", "op-9")
        await page.click("#badge-in")
        assert await outcome(page) == "deny"
        assert "pt-near-vision" in await reason_rules(page)
        text = await page.text_content("#outcome") or ""
        assert "NAS410 / EN4179 (certification of NDT personnel) rev. 5" in text
        assert await page.query_selector("#who") is None  # refused: no session, still the badge page
        await shot(page, "10-badge-refused-eye-exam")

        # Nothing the refused browser can do: the job pages send it back to the badge.
        await page.goto(f"{url}/kiosk/checks")
        assert await page.query_selector("#badge") is not None

        # The quality manager records the renewed exam at the hub; the station mirrors it.
        received = len(entries(pt.runtime, "record.received"))
        renewed = person("op-9", "PT", Level.LEVEL_2, vision_days=2)
        await records.publish_record(
            hub.connection.jetstream(), "pt-1", "person", records.fact_key("person", renewed), renewed
        )
        await eventually(
            lambda: len(entries(pt.runtime, "record.received")) > received, what="renewal mirrored"
        )
        await page.fill("#badge", "op-9")
        await page.click("#badge-in")
        assert await outcome(page) == "allow", await page.text_content("#outcome")
        assert await page.text_content("#who") == "op-9"
        await shot(page, "11-badge-allowed-after-renewal")

        # Another browser, without the badge's session, cannot act for op-9.
        before = len(entries(pt.runtime, "job.transition"))
        async with httpx.AsyncClient(base_url=url) as stranger:
            sent = await stranger.post("/kiosk/scan", data={"job": "J-9", "po": "PO-4411", "line": "1"})
        assert sent.status_code == 303 and sent.headers["location"] == "/kiosk"
        assert len(entries(pt.runtime, "job.transition")) == before
        cookie = next(c for c in await page.context.cookies() if c["name"] == "smart_kiosk")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

        # A critical alert shows on the kiosk; the operator acknowledges it, by name, on the ledger.
        raised = await pt.module(
            "alert-broadcast",
            "raise",
            f.Event(action="operate", at=AT, station="pt-1"),
            {"severity": "critical", "source": "qa", "message": "penetrant tank level low", "key": "tank"},
        )
        assert raised["outcome"] == "allow", raised
        await page.goto(f"{url}/kiosk")
        assert "penetrant tank level low" in (await page.text_content("#alerts") or "")
        await page.click("#alerts button")
        assert await outcome(page) == "allow"
        assert "acknowledged by op-9" in (await page.text_content("#alerts") or "")
        acknowledged = entries(pt.runtime, "alert.acknowledged")
        assert [e.actor for e in acknowledged] == ["op-9"]

        # The hub goes away: the banner says so, and the station still decides from its own store.
        nats_floor.run(nats_floor.floor.supervisor.stop_child("hub"))
        await page.wait_for_selector("#uplink.offline", timeout=STATE_DEADLINE_S * 1000)
        await page.fill("#ask-form input[name=text]", "what is the contract revision")
        await page.click("#ask")
        assert await outcome(page) == "allow"
        assert await page.query_selector("#uplink.offline") is not None
        assert "penetrant" in (await page.text_content("#answer") or "")
        await shot(page, "12-offline-still-answering")
        await page.click("#badge-out")
        await page.fill("#badge", "op-9")
        await page.click("#badge-in")
        assert await outcome(page) == "allow"  # decided at the station with the hub down


async def test_shipping_clerk_receives_and_is_refused_shipping_until_the_c_of_c_is_signed(
    floor_factory: FloorFactory, keys: KeyStore, tmp_path: Path
) -> None:
    floor = floor_factory(stations=6)
    assert floor.floor.hub is not None
    connection = await nats.connect(floor.floor.hub.url, **floor.settings.hub_nats_signin())
    await ensure_hub_streams(connection.jetstream())
    hub = Hub(connection, keys)
    clock = ShopClock()
    try:
        async with (
            bench(floor, hub, keys, tmp_path, "sr-1", "shipping-receiving", SR_SHOP) as sr,
            kiosk_at(sr, clock) as url,
            async_page(TOUCH_7_INCH) as page,
        ):
            await page.goto(f"{url}/kiosk")
            await page.fill("#badge", "ship-1")
            await page.click("#badge-in")
            assert await outcome(page) == "allow"
            assert await page.query_selector("#scan-form") is None  # a shipping station receives
            for name, value in {"job": "J-3", "po": "PO-4411", "line": "1", "part": "BRK-220"}.items():
                await page.fill(f"#receive-form input[name={name}]", value)
            await page.fill("#receive-form input[name=serial]", "SN-001")
            await page.fill("#receive-form input[name=received]", "2")
            clock.advance(1)
            await page.click("#receive")
            assert await outcome(page) == "allow", await page.text_content("#outcome")
            assert await page.get_attribute("#state", "data-state") == "received"
            assert "received 2" in (await page.text_content("#quantities") or "")
            await shot(page, "20-received")

            await page.fill("#ship-form input[name=accepted]", "2")
            clock.advance(30)
            await page.click("#ship")
            assert await outcome(page) == "deny"
            assert await reason_rules(page) == ["sr-coc-signed"]
            await shot(page, "21-ship-refused-no-coc")
            assert await page.input_value("#ship-form input[name=accepted]") == "2"  # kept for the retry

            # ship-1 signs with their own badge: told they lack the authority, in those words
            await page.check("#ship-form input[name=signCoc]")
            await page.click("#ship")
            assert await outcome(page) == "deny"
            assert "ship-1 does not have the authority to sign the C of C" in (
                await page.text_content("#outcome") or ""
            )
            # the quality manager badges in and signs with their own badge; the received job stays
            await page.click("#badge-out")
            await page.fill("#badge", "qm-1")
            await page.click("#badge-in")
            assert await page.get_attribute("#state", "data-state") == "received"
            await page.fill("#ship-form input[name=accepted]", "2")
            await page.check("#ship-form input[name=signCoc]")
            await page.click("#ship")
            assert await outcome(page) == "allow", await page.text_content("#outcome")
            assert await page.get_attribute("#state", "data-state") == "shipped"
            await page.click("#handoff")
            assert await page.get_attribute("#state", "data-state") == "handed-off"
            await shot(page, "22-shipped-and-handed-off")
            job = sr.runtime.facts().jobs["J-3"]
            assert job.coc_signed_by == "qm-1" and job.quantities == {"received": 2, "accepted": 2}
    finally:
        await connection.close()


async def test_the_station_screen_follows_a_badge_shown_to_the_camera_and_other_browsers_do_not(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    clock = ShopClock()
    token = screen_token(tmp_path / "screen")
    assert screen_token(tmp_path / "screen") == token  # made once, then read
    assert (tmp_path / "screen" / SCREEN_TOKEN_FILE).stat().st_mode & 0o777 == 0o600
    async with (
        bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt,
        kiosk_at(pt, clock, screen_token=token) as url,
        async_page(TOUCH_7_INCH) as screen,
        async_page(DESKTOP) as desk,
    ):
        refused = await screen.goto(f"{url}/kiosk/screen?token=not-{token}")
        assert refused is not None and refused.status == 403
        await screen.goto(f"{url}/kiosk/screen?token={token}")
        assert await screen.query_selector("#badge") is not None  # nobody badged in yet

        # op-7 shows the badge to the camera (an image in the scans folder, dated on the shop's day)
        drop(pt.runtime.data_dir / SCANS_FOLDER, "badge.png", "SMART:BADGE:op-7", at=AT)
        await screen.wait_for_selector(
            "#who", timeout=STATE_DEADLINE_S * 1000
        )  # the screen reloads when the job moves
        assert await screen.text_content("#who") == "op-7"
        await shot(screen, "30-screen-follows-camera-badge")

        # the screen's cookie comes from the secret: a restarted station still knows its screen
        cookie = next(c for c in await screen.context.cookies() if c["name"] == "smart_kiosk_screen")
        restarted = Kiosk(pt.runtime, clock=clock, screen_token=token).screen_session(cookie["value"])
        assert restarted is not None and restarted.person == "op-7"

        await desk.goto(f"{url}/kiosk")
        assert await desk.query_selector("#who") is None  # another browser is not the station's screen
        forged = await desk.context.request.get(
            f"{url}/kiosk", headers={"Cookie": "smart_kiosk_screen=" + "0" * 64}
        )
        assert "#who" not in await forged.text() and 'id="who"' not in await forged.text()

        await screen.click("#badge-out")
        assert await screen.query_selector("#badge") is not None
        assert pt.runtime.jobs.state.value == "idle"


async def test_a_station_without_a_contract_says_so_and_refuses_the_badge_with_that_reason(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with (
        bare_station(nats_floor, hub, keys, tmp_path) as pt,
        kiosk_at(pt, ShopClock()) as url,
        async_page(TOUCH_7_INCH) as page,
    ):
        await page.goto(f"{url}/kiosk")
        assert await page.query_selector("#no-contract") is not None
        await page.fill("#badge", "op-7")
        await page.click("#badge-in")
        assert await outcome(page) == "deny"
        assert await reason_rules(page) == ["station.no-valid-contract"]
        assert "from the station itself (fail closed)" in (await page.text_content("#outcome") or "")
        await shot(page, "40-no-valid-contract")


async def badge_in(page: Any, url: str, badge: str) -> None:
    await page.goto(f"{url}/kiosk")
    if await page.query_selector("#badge-out") is not None:
        await page.click("#badge-out")
    await page.fill("#badge", badge)
    await page.click("#badge-in")


async def test_an_ncr_is_shown_at_once_refused_to_the_operator_and_dispositioned_by_the_level_3s_badge(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    clock = ShopClock(AT + timedelta(minutes=90))
    async with (
        bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", NCR_SHOP) as pt,
        kiosk_at(pt, clock) as url,
        async_page(TOUCH_7_INCH) as page,
    ):
        await checks_done(pt)
        assert (await walk_penetrant_to_the_gate(pt))["allowed"]
        for minutes, step in enumerate(PENETRANT_STEPS[:4], start=1):
            assert (await pt.job("step", at=at(minutes * 15), **step))["allowed"]
        await badge_in(page, url, "op-7")  # the job in hand stays: op-7 resumes it at the kiosk
        assert await page.get_attribute("#state", "data-state") == "in-process"
        assert "Job J-1 — in process" in (await page.text_content("#state h1") or "")

        # Drying too hot: refused, an NCR opened and shown at once with what, the reading and the limit.
        dry = page.locator("#step-dry")
        await dry.locator("input[data-quantity=part-temperature]").fill("150")
        await dry.locator("input[data-quantity=time-at-max-temperature]").fill("4")
        clock.advance(1)
        await page.click("#do-dry")
        assert await outcome(page) == "deny"
        (ncr_id,) = [str(e.data["id"]) for e in pt.entries("qa.ncr.opened")]
        panel = page.locator(f"[data-ncr='{ncr_id}']")
        text = await panel.text_content() or ""
        assert "part-temperature read 150 °F, limit ≤ 140 °F" in text, text
        assert (
            "Who may disposition it: a Level 3 in PT or a quality manager (l3-1, qm-1 at this station)"
            in text
        )
        assert ncr_id in (await page.text_content("#alerts") or "")  # on the alert board too
        await shot(page, "40-ncr-opened")

        # A reload keeps the reasons and what was typed.
        await page.reload()
        assert await outcome(page) == "deny" and "pt-dry-part-temperature" in await reason_rules(page)
        assert await dry.locator("input[data-quantity=part-temperature]").input_value() == "150"

        # The operator has no authority to disposition it.
        await panel.locator("select[name=disposition]").select_option("rework")
        clock.advance(1)
        await panel.locator("button").click()
        assert await outcome(page) == "deny"
        assert "station.authority" in await reason_rules(page)
        assert "op-7 does not have the authority" in (await page.text_content("#outcome") or "")
        await shot(page, "41-ncr-disposition-refused-operator")

        # The Level 3 badges in at the same screen and decides; the job stays op-7's.
        await badge_in(page, url, "l3-1")
        assert (
            await outcome(page) == "allow"
            and await page.get_attribute("#state", "data-state") == "in-process"
        )
        assert "Job J-1 is op-7's" in (await page.text_content("#not-mine") or "")
        panel = page.locator(f"[data-ncr='{ncr_id}']")
        await panel.locator("select[name=disposition]").select_option("use-as-is")
        clock.advance(1)
        await panel.locator("button").click()
        assert await outcome(page) == "deny" and "ncr.design-authority" in await reason_rules(page)
        await panel.locator("select[name=disposition]").select_option("rework")
        clock.advance(1)
        await panel.locator("button").click()
        assert await outcome(page) == "allow", await page.text_content("#outcome")
        await panel.locator("input[name=evidence]").fill("re-dried at 120 °F and re-inspected: accept")
        clock.advance(1)
        await panel.locator("button").click()
        assert await outcome(page) == "allow", await page.text_content("#outcome")
        assert await page.query_selector(f"[data-ncr='{ncr_id}']") is None
        assert ncr_id not in (await page.text_content("#alerts") or "")
        await shot(page, "42-ncr-closed-by-level-3")
        (closed,) = pt.entries("qa.ncr.closed")
        assert closed.actor == "l3-1" and closed.data["disposition"] == "rework"

        # op-7 badges in again and the job goes on to release.
        await badge_in(page, url, "op-7")
        dry = page.locator("#step-dry")
        await dry.locator("input[data-quantity=part-temperature]").fill("120")
        await dry.locator("input[data-quantity=time-at-max-temperature]").fill("4")
        clock.advance(5)
        await page.click("#do-dry")
        assert await outcome(page) == "allow", await page.text_content("#outcome")
        for name in ("developer", "inspect"):
            if name == "inspect":
                await page.locator("#step-inspect input[name=indications]").fill("none")
            clock.advance(15)
            await page.click(f"#do-{name}")
            assert await outcome(page) == "allow", (name, await page.text_content("#outcome"))
        (inspection,) = pt.entries("qa.inspection")
        assert inspection.data["result"] == "accept" and inspection.data["indications"] == "none"
        clock.advance(5)
        await page.click("#release")
        assert await outcome(page) == "allow", await page.text_content("#outcome")
        await shot(page, "43-released-after-ncr")


async def test_after_a_restart_the_job_is_taken_over_by_a_level_3_with_a_reason_at_the_kiosk(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", NCR_SHOP) as pt:
        await checks_done(pt)
        assert (await walk_penetrant_to_the_gate(pt))["allowed"]
        assert (await pt.job("step", at=at(15), **PENETRANT_STEPS[0]))["allowed"]
    restarted = StationRuntime(agent_for(nats_floor, "pt-1", keys, tmp_path))
    await restarted.start()
    client = await nats.connect(nats_floor.floor.leaves["pt-1"].url)
    clock = ShopClock(AT + timedelta(minutes=30))
    try:
        await eventually(lambda: "gatekeeper" in restarted.modules and restarted.serving(), what="serving")
        again = Bench(restarted, client, hub)
        async with kiosk_at(again, clock) as url, async_page(TOUCH_7_INCH) as page:
            await badge_in(page, url, "l3-1")
            assert await outcome(page) == "allow"
            assert await page.get_attribute("#state", "data-state") == "in-process"
            assert "Job J-1 is op-7's" in (await page.text_content("#not-mine") or "")
            assert await page.query_selector("#release") is None  # not theirs to work until taken over
            await shot(page, "44-restarted-job-held-by-op-7")
            await page.click("#take-over")  # no reason given: refused, saying so
            assert await outcome(page) == "deny" and "job.take-over" in await reason_rules(page)
            await page.fill("#hold-form input[name=reason]", "op-7 sent home; l3-1 finishes J-1")
            clock.advance(1)
            await page.click("#take-over")
            assert await outcome(page) == "allow", await page.text_content("#outcome")
            assert await page.query_selector("#not-mine") is None
            clock.advance(1)
            await page.click("#do-penetrant-apply")
            assert await outcome(page) == "allow", await page.text_content("#outcome")
            await shot(page, "45-taken-over-after-restart")
        (taken,) = [
            e for e in again.entries("job.transition") if e.data["verb"] == "take-over" and e.data["allowed"]
        ]
        assert taken.actor == "l3-1" and taken.data["reason"] == "op-7 sent home; l3-1 finishes J-1"
    finally:
        await client.close()
        await restarted.stop()


async def test_a_refused_gate_unticks_the_expired_lot_saying_why_and_keeps_the_rest_after_a_reload(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    clock = ShopClock()
    async with (
        bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt,
        kiosk_at(pt, clock) as url,
        async_page(TOUCH_7_INCH) as page,
    ):
        await checks_done(pt)
        await badge_in(page, url, "op-7")
        for name, value in {"job": "J-1", "po": "PO-4411", "line": "1", "part": "BRK-220"}.items():
            await page.fill(f"#scan-form input[name={name}]", value)
        await page.fill("#scan-form input[name=serial]", "SN-002")
        clock.advance(1)
        await page.click("#scan")
        assert "Job J-1 — traveler scanned" in (await page.text_content("#state h1") or "")
        for box in ("UV-METER-1", "TAM-146040", "PEN-1990", "nitrile-gloves"):
            await page.check(f"#start-form input[value='{box}']")
        await page.select_option("#start-form select[name=procedure]", "PT-PROC-12@D")
        await page.select_option("#start-form select[name='attr:part-finish']", "grit-blasted")
        clock.advance(1)
        await page.click("#start")
        assert await outcome(page) == "deny" and "pt-penetrant-lot" in await reason_rules(page)
        await page.reload()  # the reasons stay, the expired lot is unticked and says why, the rest kept
        assert await outcome(page) == "deny" and "pt-penetrant-lot" in await reason_rules(page)
        assert not await page.is_checked("#start-form input[value='PEN-1990']")
        assert "PEN-1990 unticked: it has expired" in (await page.text_content("#start-form") or "")
        for box in ("UV-METER-1", "TAM-146040", "nitrile-gloves"):
            assert await page.is_checked(f"#start-form input[value='{box}']"), box
        await shot(page, "46-expired-lot-unticked")
        await page.check("#start-form input[value='PEN-2291']")
        clock.advance(1)
        await page.click("#start")
        assert await outcome(page) == "allow", await page.text_content("#outcome")
        assert "Job J-1 — gate passed" in (await page.text_content("#state h1") or "")


async def test_a_full_walk_at_sr_1_from_the_demo_shop_receives_counts_and_ships_with_the_qms_own_badge(
    floor_factory: FloorFactory, keys: KeyStore, tmp_path: Path
) -> None:
    floor = floor_factory(stations=6)
    assert floor.floor.hub is not None
    connection = await nats.connect(floor.floor.hub.url, **floor.settings.hub_nats_signin())
    await ensure_hub_streams(connection.jetstream())
    hub = Hub(connection, keys)
    await records.ensure_records_bucket(connection.jetstream())
    await deploy(hub, "shipping-receiving")
    seeded = await demo_shop.seed(connection.jetstream(), AT, stations={demo_shop.SHIPPING})
    runtime = StationRuntime(agent_for(floor, demo_shop.SHIPPING, keys, tmp_path))
    await runtime.start()
    client = await nats.connect(floor.floor.leaves[demo_shop.SHIPPING].url)
    clock = ShopClock()
    try:
        await eventually(lambda: runtime.serving() and "logistics" in runtime.modules, what="modules")
        await eventually(lambda: len(entries(runtime, "record.received")) >= seeded, what="records mirrored")
        sr = Bench(runtime, client, hub)
        async with kiosk_at(sr, clock) as url, async_page(TOUCH_7_INCH) as page:
            await badge_in(page, url, "op-7")  # pt-1's operator has no access to sr-1
            assert await outcome(page) == "deny" and "gatekeeper.no-access" in await reason_rules(page)
            await shot(page, "50-sr-1-refuses-a-pt-1-badge")

            await badge_in(page, url, "ship-1")
            assert await outcome(page) == "allow"
            traveler = demo_shop.TRAVELER
            for name in ("job", "po", "line", "part", "serial"):
                await page.fill(f"#receive-form input[name={name}]", traveler[name])
            await page.fill("#receive-form input[name=received]", "1")
            clock.advance(1)
            await page.click("#receive")
            assert await outcome(page) == "allow", await page.text_content("#outcome")
            assert "Job J-1 — received" in (await page.text_content("#state h1") or "")
            await shot(page, "51-sr-1-received-from-the-demo-po")

            # a count that does not reconcile is reported with the counts
            await page.fill("#ship-form input[name=accepted]", "0")
            await page.check("#ship-form input[name=signCoc]")
            clock.advance(1)
            await page.click("#ship")
            assert await outcome(page) == "deny"
            text = await page.text_content("#outcome") or ""
            assert "received 1, accounted for 0" in text, text
            assert "ship-1 does not have the authority to sign the C of C" in text
            assert await page.input_value("#ship-form input[name=accepted]") == "0"  # kept as typed
            assert "C of C signed by" not in (await page.text_content("#record") or "")  # refused: not kept
            await shot(page, "52-sr-1-count-and-authority-refused")

            await badge_in(page, url, "qm-1")  # the quality manager signs with their own badge
            assert await page.get_attribute("#state", "data-state") == "received"
            await page.fill("#ship-form input[name=accepted]", "1")
            await page.check("#ship-form input[name=signCoc]")
            clock.advance(1)
            await page.click("#ship")
            assert await outcome(page) == "allow", await page.text_content("#outcome")
            assert "C of C signed by qm-1" in (await page.text_content("#record") or "")
            await page.click("#handoff")
            assert await page.get_attribute("#state", "data-state") == "handed-off"
            await shot(page, "53-sr-1-shipped-and-handed-off")
        job = runtime.facts().jobs["J-1"]
        assert job.coc_signed_by == "qm-1" and job.quantities == {"received": 1, "accepted": 1}
    finally:
        await client.close()
        await runtime.stop()
        await connection.close()
