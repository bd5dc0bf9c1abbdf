"""The dashboard with a floor's real history, in Chromium: every panel filled, every link landing.

pt-1 runs under the reference penetrant contract on a real leaf: twelve UV-A
checks with their readings (the last two a dying lamp), a TAM-panel check the
day before, that day and the next morning, a PPE refusal by its Safety module,
and job J-1 walked to the gate and through its steps until the drying
temperature over its limit opens an NCR. Its node agent ships the ledger to
the hub (real PostgreSQL, the real intake) and cosigns the hub's checkpoint as
its witness; the hub's indexes read it. The hub's own records are entered
through their services, on the floor's clock: SMART-ID's people with their
credentials (the demo shop's, an eye exam falling due among them),
MaintenanceHub's equipment, a lot received by InventoryHub, a CAPA on the NCR
by QACentral, due that day. The clock then moves to the next morning, when the
quality manager opens ``/`` in one browser session: the CAPA is overdue, the
UV-A check not done yet. The test screenshots the page and follows every link
on it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import psycopg
from psycopg.conninfo import make_conninfo

from smart.access.roles import Role
from smart.access.verify import Verifier
from smart.bus import witnessing
from smart.contracts import facts as f
from smart.hub import handoff_central, means, reorders
from smart.hub.compliance import index as compliance
from smart.hub.dashboard import index as dashboard_index
from smart.hub.dashboard.web import Dashboard
from smart.hub.inventory.models import LotIn, MaterialIn
from smart.hub.maintenance import schedule
from smart.hub.maintenance import store as maintenance
from smart.hub.maintenance import web as maintenance_web
from smart.hub.maintenance.models import CalibrationIn, EquipmentIn
from smart.hub.qa.models import CapaIn
from smart.hub.service_log import ServiceNodeLog
from smart.hub.vault.logins import Logins
from smart.hub.vault.service import SharedNodeLog
from smart.hub.vault.smartid import SmartId
from smart.hub.web import auth
from smart.hub.web.app import create_app
from smart.keys import KeyStore
from smart.ledger import hub_store
from smart.runtime import demo_shop, ports
from smart.runtime.background import BackgroundFloor
from smart.runtime.floor import FloorStatus
from smart.runtime.up import serve_web
from smart.testing.browser import DESKTOP, async_page, screenshot_path
from smart.testing.patience import STATE_DEADLINE_S
from smart.testing.plugin import FreshDatabase
from tests.hub.conftest import PASSWORD
from tests.node.conftest import Hub, eventually
from tests.node.test_job_walkthrough import (
    AT,
    PENETRANT_SHOP,
    PENETRANT_STEPS,
    at,
    bench,
    reading,
    walk_penetrant_to_the_gate,
)

#: UV-A readings in µW/cm², oldest first: steady, then a lamp dying (Western Electric rule 1).
UVA = (1180, 1176, 1183, 1179, 1181, 1177, 1182, 1178, 1180, 1179, 1060, 1050)
PANELS = ("jobs", "checks", "due", "people", "ncrs", "refusals", "yield", "spc", "ledger")
#: When the quality manager opens the dashboard: the morning after the walk-through.
NEXT_MORNING = AT + timedelta(hours=21)


@dataclasses.dataclass
class FloorClock:
    """The hub services' clock and the dashboard's, as the stations': the walk-through's afternoon,
    then moved on to the next morning by the test."""

    now: datetime = AT + timedelta(hours=2)

    def __call__(self) -> datetime:
        return self.now


async def _no_floor() -> FloorStatus:
    return FloorStatus(healthy=True, services=[], checked_at=time.time())


async def _station_history(pt: Any, owner_url: str) -> None:
    for n, value in enumerate(UVA):
        when = AT - timedelta(minutes=5 * (len(UVA) - n))
        readings = {"uv-a-intensity": reading(value, "µW/cm²"), "ambient-white-light": reading(1.5, "fc")}
        assert (await pt.check("uv-a-intensity", readings, when=when))["outcome"] in ("allow", "warn")
    await pt.check("tam-panel", when=AT - timedelta(days=1))
    tinted = f.Event(
        action="operate", at=AT, station="pt-1", person="op-9", job="J-1", ppe=frozenset({"sunglasses"})
    )
    assert (await pt.module("safety", "ppe", tinted))["outcome"] == "deny"
    await pt.check("tam-panel", when=AT - timedelta(minutes=1))
    assert (await walk_penetrant_to_the_gate(pt))["allowed"]
    for minutes, step in enumerate(PENETRANT_STEPS, start=3):
        if step["step"] == "dry":
            hot = {"part-temperature": reading(150, "°F"), "time-at-max-temperature": reading(4, "min")}
            refused = await pt.job("step", at=at(minutes * 15), step="dry", readings=hot)
            assert not refused["allowed"]
            break
        assert (await pt.job("step", at=at(minutes * 15), **step))["allowed"]
    await pt.check("tam-panel", when=NEXT_MORNING - timedelta(hours=1))  # the UV-A check not yet
    last = pt.runtime.agent.ledger.size() - 1
    await eventually(
        lambda: pt.runtime.agent.store is not None and pt.runtime.agent.store.shipped_seq("pt-1") >= last,
        what="pt-1's ledger shipped to the hub",
    )

    def cosigned() -> bool:
        """pt-1, as the hub's witness, cosigned a checkpoint holding all its entries (the intake asks)."""
        with psycopg.connect(owner_url) as conn:
            row = conn.execute(
                "SELECT max(c.size) >= (SELECT max(idx) + 1 FROM ledger_entries WHERE node = 'pt-1')"
                " FROM ledger_cosignatures c WHERE c.witness = %s",
                (witnessing.witness_name("pt-1"),),
            ).fetchone()
        return bool(row and row[0])

    deadline = time.monotonic() + STATE_DEADLINE_S
    while not await asyncio.to_thread(cosigned):
        assert time.monotonic() < deadline, "pt-1 never cosigned the hub's checkpoint"
        await asyncio.sleep(0.2)


async def _row(page: Any, panel: str, first: str) -> list[str]:
    """The cells of the panel's row whose first cell reads ``first``."""
    rows: list[list[str]] = await page.eval_on_selector_all(
        f"#panel-{panel} tbody tr",
        "trs => trs.map(tr => Array.from(tr.cells, td => td.textContent.trim()))",
    )
    found = [row for row in rows if row and row[0] == first]
    assert len(found) == 1, (panel, first, rows)
    return found[0]


async def test_the_dashboard_shows_a_floors_history_and_every_number_opens_its_records(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, database: FreshDatabase, tmp_path: Path
) -> None:
    owner_url = database.url
    async with bench(nats_floor, hub, keys, tmp_path, "pt-1", "penetrant", PENETRANT_SHOP) as pt:
        await _station_history(pt, owner_url)
    password = database.app_password
    await asyncio.to_thread(hub_store.migrate, owner_url, app_password=password)
    app_url = make_conninfo(owner_url, user=hub_store.APP_ROLE, password=password)
    for migrate in (
        compliance.migrate,
        handoff_central.migrate,
        reorders.migrate,
        means.migrate,
        maintenance.migrate,
    ):
        await asyncio.to_thread(migrate, owner_url)
    await asyncio.to_thread(dashboard_index.migrate, owner_url)

    # The hub's own records, each through its service, on the floor's clock.
    clock = FloorClock()
    smartid = SmartId(
        owner_url,
        key=keys.signing_key("smart-id"),
        ledger=SharedNodeLog(tmp_path / "ledger", keys),
        clock=clock,
    )
    demo_shop.enrol(smartid, AT - timedelta(days=330))  # a year's credentials: due within 60 days
    logins = Logins(owner_url)
    logins.add("qm-anna", PASSWORD, role=Role.QUALITY_MANAGER, employee_id="D-901")
    connection_js = hub.connection.jetstream()
    services = means.MeansServices(
        app_url,
        keys=keys,
        ledger_dir=tmp_path / "ledger",
        stations=["pt-1"],
        js=connection_js,
        smartid=smartid,
        clock=clock,
    )
    services.start()

    async def nobody() -> Verifier:
        return Verifier(keys={}, revocations={})

    equipment = maintenance.MaintenanceHub(
        app_url,
        ledger=ServiceNodeLog(tmp_path / "ledger", keys, node=maintenance.NODE),
        schedule=schedule.Schedule(),
        stations=(),
        js=None,
        verifiers=nobody,
        clock=clock,
    )
    today = AT.date()
    for asset, due in (("UV-METER-7", today - timedelta(days=3)), ("TAM-9", today + timedelta(days=12))):
        equipment.register(
            EquipmentIn(asset_id=asset, kind="light-meter", station="pt-1", serial=asset), actor="qm-anna"
        )
        equipment.record_calibration(
            asset,
            CalibrationIn(
                calibrated_at=AT - timedelta(days=360),
                lab="Cal Lab",
                certificate_number=f"C-{asset}",
                traceability="NIST",
                in_tolerance=True,
                next_due=due,
            ),
            actor="qm-anna",
        )
    services.inventory.add_material(
        MaterialIn(
            id="penetrant-zl60",
            form="bulk",
            unit="L",
            supplier="Magnaflux",
            min_stock=1,
            lead_time_days=5,
            stations=("pt-1",),
        ),
        actor="qm-anna",
    )
    services.inventory.receive(
        LotIn(
            id="LOT-77",
            material="penetrant-zl60",
            supplier="Magnaflux",
            certificate="CERT-77",
            received_on=today - timedelta(days=30),
            expires_on=today + timedelta(days=20),  # due within 30 days
            quantity=20,
            unit="L",
            stations=("pt-1",),
        ),
        actor="qm-anna",
    )

    with psycopg.connect(owner_url, autocommit=True) as conn:
        standards: dict[str, str] = {}
        decisions = compliance.DecisionIndex(conn, standards=standards)
        handoffs = handoff_central.HandoffCentral(psycopg.connect(app_url, autocommit=True))

        def indexed() -> bool:
            decisions.index_once()
            handoffs.index_once()
            dashboard_index.index_all(conn)
            return len(services.qa.ncrs()) >= 1

        deadline = time.monotonic() + STATE_DEADLINE_S
        while not await asyncio.to_thread(indexed) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        handoffs.close()
    (ncr,) = services.qa.ncrs()
    services.qa.open_capa(
        CapaIn(
            id="CAPA-3",
            ncrs=(ncr.id,),
            root_cause="dryer thermostat drift",
            action="replace thermostat",
            owner="qm-anna",
            due_on=today,  # due that day: overdue by the next morning
        ),
        actor="qm-anna",
    )
    clock.now = NEXT_MORNING

    board = Dashboard(app_url, vault_url=owner_url, zone=ZoneInfo("UTC"), clock=clock)
    guard = auth.Guard(logins)
    from smart.hub.compliance import service as compliance_service

    central = compliance_service.ComplianceCentral(owner_url, app_url, hub.connection)
    await central.start()
    app = create_app(
        _no_floor,
        routers=[
            auth.router(logins),
            *board.routers(guard),
            handoff_central.router(app_url, guard),
            central.router(guard),
            *services.routers(guard),
            maintenance_web.page_router(equipment, guard),
        ],
        logins=logins,
    )
    port = ports.free_port()
    server, task = await serve_web(app, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    try:
        async with async_page(DESKTOP) as page:
            await page.goto(url + "/")
            assert urlparse(page.url).path == "/login"  # not signed in: to the sign-in page, then home
            await page.fill("input[name=username]", "qm-anna")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("form[action='/login'] button")
            await page.wait_for_selector("#panel-ledger")
            assert urlparse(page.url).path == "/"
            for key in PANELS:
                panel = page.locator(f"#panel-{key}")
                assert await panel.locator(".empty, .unavailable").count() == 0, (
                    key,
                    await panel.inner_text(),
                )
                assert await panel.locator("td").count() > 0, key
            jobs = await page.locator("#panel-jobs").inner_text()
            assert "pt-1" in jobs and "in-process" in jobs
            assert await _row(page, "checks", "pt-1") == ["pt-1", "1", "0", "1"]  # TAM done, UV-A overdue
            assert "UV-METER-7" in await page.locator("#panel-due").inner_text()
            assert await _row(page, "due", "Lots") == ["Lots", "0", "1"]
            assert ncr.id in await page.locator("#panel-ncrs").inner_text()
            assert await _row(page, "ncrs", "Open CAPAs") == ["Open CAPAs", "1", "1"]  # CAPA-3, overdue
            assert await _row(page, "ncrs", "CAPA CAPA-3") == ["CAPA CAPA-3", "open", f"due {today}"]
            witness = witnessing.witness_name("pt-1")
            cosigned = await _row(page, "ledger", "Latest cosigned checkpoint")
            assert cosigned[1].endswith(f"by {witness}"), cosigned
            witnesses = str(len(nats_floor.floor.leaves))  # each station of the floor, registered
            assert await _row(page, "ledger", "Witnesses registered") == ["Witnesses registered", witnesses]
            assert "station pt-1" in await page.locator("#panel-refusals").inner_text()
            spc = await page.locator("#panel-spc").inner_text()
            assert "uv-a-intensity at pt-1" in spc and "WE rule 1" in spc  # the dying lamp, signalled
            await page.wait_for_selector("#spc-pt-1-uv-a-intensity[data-drawn=yes] canvas")
            await page.wait_for_selector("#refusals-chart[data-drawn=yes] canvas")
            assert "Dashboard" in await page.locator("nav.bar").inner_text()
            await page.screenshot(path=str(screenshot_path("dashboard-home")), full_page=True)

            # Each link with the number it shows: a count above zero opens a list of that many records.
            pairs = await page.eval_on_selector_all(
                "main a[href]", "els => els.map(e => [e.getAttribute('href'), e.textContent.trim()])"
            )
            counted = {href: text for href, text in pairs}
            hrefs = sorted(counted)
            assert len(hrefs) >= 20 and any(h.startswith("/dashboard/people") for h in hrefs)

            async def follow(tab: Any, some: list[str]) -> None:
                for href in some:
                    answer = await tab.goto(url + href)
                    assert answer is not None and answer.status == 200, href
                    text = await tab.locator("main").inner_text()
                    if counted[href].isdigit() and int(counted[href]) > 0:
                        assert "No records." not in text, href
                        if href.startswith("/dashboard/"):  # the dashboard's own lists: a row per record
                            rows = await tab.locator("table.records tbody tr").count()
                            assert rows == int(counted[href]), (href, rows, counted[href])
                    assert await tab.locator("nav.bar a.home").count() == 1, href  # the way back

            # Three tabs of the same signed-in session, each following a third of the links.
            tabs = [page, await page.context.new_page(), await page.context.new_page()]
            await asyncio.gather(*(follow(tab, hrefs[n :: len(tabs)]) for n, tab in enumerate(tabs)))
            await page.goto(url + "/dashboard/readings?station=pt-1&characteristic=uv-a-intensity")
            assert "1050" in await page.locator("main").inner_text()
            await page.screenshot(path=str(screenshot_path("dashboard-readings")), full_page=True)
            await page.goto(url + "/dashboard/jobs?station=pt-1")
            assert "J-1" in await page.locator("main").inner_text()
            await page.goto(url + "/ncrs")  # QACentral's own list, on the same clock: overdue there too
            assert "overdue" in await page.locator("tr", has_text="CAPA-3").inner_text()
            await page.goto(url + "/dashboard/ledger")
            assert witness in await page.locator("table.records").inner_text()  # the cosignature line
    finally:
        server.should_exit = True
        await task
        await board.stop()
        await central.stop()
        await services.stop()
        equipment.close()
