"""MaintenanceHub's pages as people use them, in Chromium, and its API by role (one browser session).

Screenshots go to ``test-artifacts/``: the register, an asset refused a
calibration without a certificate number, the same asset blocked after an
out-of-tolerance one, the recall reviews dispositioned with a credential, the
due calendar, the TUS/SAT schedule and an import refused by row and column.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import nats
import yaml

from smart import intervals
from smart.access.credential import Kind
from smart.access.roles import Role
from smart.hub.maintenance import web
from smart.hub.maintenance.models import EquipmentIn, SurveyIn
from smart.hub.vault.logins import Logins
from smart.hub.web import auth
from smart.hub.web.app import create_app
from smart.node import records
from smart.runtime import demo_shop, ports
from smart.runtime.floor import FloorStatus
from smart.runtime.up import serve_web
from smart.testing.browser import DESKTOP, async_page, screenshot_path
from smart.testing.cli import invoke
from smart.testing.plugin import FloorFactory
from tests.hub.conftest import PASSWORD, HubDatabase
from tests.hub.maintenance.shop import certificate, furnace, make, served


async def _no_floor() -> FloorStatus:
    return FloorStatus(healthy=True, services=[], checked_at=time.time())


async def _sign_in(page: object, url: str, username: str, target: str) -> None:
    await page.goto(f"{url}/login?next={target}")  # type: ignore[attr-defined]
    await page.fill("input[name=username]", username)  # type: ignore[attr-defined]
    await page.fill("input[name=password]", PASSWORD)  # type: ignore[attr-defined]
    await page.click("button")  # type: ignore[attr-defined]


async def test_the_maintenance_pages_register_calendar_recall_schedule_and_import(
    hub_db: HubDatabase, floor_factory: FloorFactory, tmp_path: Path
) -> None:
    floor = floor_factory(stations=1)
    assert floor.floor.hub is not None
    connection = await nats.connect(floor.floor.hub.url, **floor.settings.hub_nats_signin())
    shop = make(hub_db, tmp_path, js=connection.jetstream())
    hub = shop.hub
    now = datetime.now(UTC)
    # the demo shop's meter and TAM panel come through MaintenanceHub, which alone publishes them
    await records.ensure_records_bucket(connection.jetstream())
    direct = await demo_shop.seed_people_and_equipment(
        connection.jetstream(), now, people=False, equipment=False
    )
    assert direct == 2  # the lots only
    assert await demo_shop.load_equipment(hub, now) == 2
    assert await demo_shop.load_equipment(hub, now) == 0  # a restarted demo floor adds nothing
    bucket = await connection.jetstream().key_value(records.RECORDS_BUCKET)
    held = records.parse(
        "equipment", json.loads((await bucket.get("pt-1.equipment.UV-METER-1")).value or b"")
    )
    panel = records.parse(
        "equipment", json.loads((await bucket.get("pt-1.equipment.TAM-146040")).value or b"")
    )
    calibration = held.calibration
    assert held.kind == "light-meter" and calibration is not None and calibration.in_tolerance
    six_months = intervals.add_months((now - timedelta(days=60)).date(), 6)  # penetrant's light meters
    assert calibration.at == now - timedelta(days=60) and calibration.due == intervals.end_of_day(
        six_months, UTC
    )
    assert panel.attributes["finish"] == "grit-blasted"
    hub.register(furnace(), actor="qm-anna")
    hub.record_survey(
        "FURNACE-2", SurveyIn(survey="TUS", surveyed_at=now - timedelta(days=40), passed=True), actor="qm"
    )
    lamp = EquipmentIn.model_validate(
        {
            "asset_id": "UVA-LAMP-1",
            "kind": "uv-a-lamp",
            "station": "pt-1",
            "serial": "L-1",
            "usage_limits": [{"task": "lamp-bulb", "unit": "hours", "every": 1500}],
        }
    )
    hub.register(lamp, actor="qm-anna")
    served(shop, hub_db, tmp_path / "stations", [("J-7", ["UV-METER-1"], now - timedelta(days=10), "allow")])
    await hub.publish_pending()

    logins = Logins(hub_db.owner_url)
    for username, role in (("qm-anna", Role.QUALITY_MANAGER), ("op-7", Role.OPERATOR)):
        logins.add(username, PASSWORD, role=role)
    guard = auth.Guard(logins)
    app = create_app(
        _no_floor, routers=[auth.router(logins), web.router(hub, guard), web.page_router(hub, guard)]
    )
    port = ports.free_port()
    server, task = await serve_web(app, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    certificate_file = tmp_path / "CAL-9931.pdf"
    certificate_file.write_bytes(b"%PDF-1.4 made-up certificate of calibration\n")
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text(
        "asset_id,kind,station,serial,range_min,range_max,range_unit\nF-9,furnace,ht-1,F9,400,900,bar\n"
    )
    header = "asset_id,calibrated_at,lab,certificate_number,traceability,in_tolerance,next_due"
    day = date.today().isoformat()
    due = (date.today() + timedelta(days=365)).isoformat()
    bad_calibrations = tmp_path / "cal-log.csv"
    bad_calibrations.write_text(
        f"{header}\nUVA-LAMP-1,{day},Lab,C-1,NIST 1,yes,{due}\nUVA-LAMP-1,{day},Lab,C-2,,yes,{due}\n"
        f"NOPE,{day},Lab,C-3,NIST 3,yes,{due}\n"
    )
    good_calibrations = tmp_path / "cal-good.csv"
    good_calibrations.write_text(f"{header}\nUVA-LAMP-1,{day},Lab,C-1,NIST 1,yes,{due}\n")
    # a register saved as CSV and renamed .xlsx (openpyxl: BadZipFile): refused naming the file, whole
    corrupt = tmp_path / "register-june.xlsx"
    corrupt.write_text("asset_id,kind,station,serial\nSCALE-9,scale,sr-1,S-9\n")
    not_a_zip = "register-june.xlsx is not an XLSX workbook: it is not a zip archive"
    try:
        # an operator reads, and may not write (the API refuses as the page hides)
        async with httpx.AsyncClient(base_url=url) as op:
            assert (
                await op.post("/login", data={"username": "op-7", "password": PASSWORD})
            ).status_code == 303
            assert (await op.get("/api/v1/equipment")).status_code == 200
            body = certificate(now).model_dump(mode="json")
            assert (await op.post("/api/v1/equipment/UV-METER-1/calibrations", json=body)).status_code == 403
        async with async_page(DESKTOP) as page:
            await _sign_in(page, url, "op-7", "/maintenance")
            await page.wait_for_selector("#register tr[data-asset='UV-METER-1']")
            assert "at station" in (await page.text_content("#register tr[data-asset='UV-METER-1']") or "")
            await page.screenshot(path=str(screenshot_path("maintenance-register")), full_page=True)
            await page.goto(f"{url}/maintenance/equipment/UV-METER-1")
            assert await page.locator("#calibration-form").count() == 0
            await page.click("text=Sign out")

            await _sign_in(page, url, "qm-anna", "/maintenance/equipment/UV-METER-1")
            form = page.locator("#calibration-form")
            await form.locator("input[name=calibrated_at]").fill(date.today().isoformat())
            await form.locator("input[name=lab]").fill("Metrology Lab")
            await form.locator("input[name=traceability]").fill("NIST report 685/1")
            await form.locator("select[name=in_tolerance]").select_option("false")
            await form.locator("button").click()
            await page.wait_for_selector("#calibration-form .outcome.refused")
            assert "certificate_number" in (await page.text_content("#calibration-form .outcome") or "")
            await page.screenshot(
                path=str(screenshot_path("maintenance-calibration-refused")), full_page=True
            )
            assert len(hub.calibrations("UV-METER-1")) == 1  # nothing written

            await form.locator("input[name=certificate_number]").fill("CAL-9931")
            await form.locator("input[name=as_found]").fill("+9 % at 1000 µW/cm²")
            await form.locator("input[name=file]").set_input_files(str(certificate_file))
            await form.locator("button").click()
            await page.wait_for_selector("#asset-state.refused")
            assert "Blocked at pt-1" in (await page.text_content("#asset-state") or "")
            assert await page.locator("a:has-text('CAL-9931')").count() == 1
            await page.screenshot(path=str(screenshot_path("maintenance-asset-blocked")), full_page=True)
            (found,) = [c for c in hub.calibrations("UV-METER-1") if not c.in_tolerance]
            held = hub.certificate(found.id)
            assert held is not None and held.data == certificate_file.read_bytes()

            await page.goto(f"{url}/maintenance/recall")
            row = page.locator("#reviews tr[data-job='J-7']")
            await row.locator("input[name=credential]").fill(
                shop.credential("op-7", Kind.CERTIFIED, method="PT", level="2")
            )
            await row.locator("button").click()
            await page.wait_for_selector("#reviews tr[data-job='J-7'] .outcome.refused")
            assert "does not give this right" in (await row.locator(".outcome").text_content() or "")
            await row.locator("select[name=disposition]").select_option("re-inspect")
            await row.locator("input[name=notes]").fill("re-inspect SN-002 with a good meter")
            await row.locator("input[name=credential]").fill(
                shop.credential("l3-1", Kind.CERTIFIED, method="PT", level="3")
            )
            await row.locator("button").click()
            await page.wait_for_selector("#reviews tr[data-job='J-7']:has-text('re-inspect by l3-1')")
            await page.screenshot(
                path=str(screenshot_path("maintenance-recall-dispositioned")), full_page=True
            )

            await page.goto(f"{url}/maintenance/equipment/UVA-LAMP-1")
            await page.locator("#order-form button").click()
            await page.wait_for_selector("#orders form.done")
            await page.fill(
                "#orders form.done input[name=credential]",
                shop.credential("tech-5", Kind.UTILITY, work="maintenance"),
            )
            await page.click("#orders form.done button")
            await page.wait_for_selector("#orders td:has-text('by tech-5')")
            await page.screenshot(path=str(screenshot_path("maintenance-order-done")), full_page=True)

            await page.goto(f"{url}/maintenance/calendar?days=30")
            overdue = page.locator("#calendar tr[data-asset='FURNACE-2'][data-what='TUS']")
            assert "overdue" in (await overdue.text_content() or "")  # class 2 type B: monthly
            blocked = page.locator("#calendar tr[data-asset='UV-METER-1'][data-what='calibration']")
            assert date.today().isoformat() in (
                await blocked.text_content() or ""
            )  # out of tolerance: due now
            await page.screenshot(path=str(screenshot_path("maintenance-calendar-30")), full_page=True)

            await page.goto(f"{url}/maintenance/schedule?station=ht-1")
            grid = await page.locator("#schedule-TUS tbody tr").all_inner_texts()
            assert grid[1].split("\t")[:3] == ["2", "3 months", "1 month"]  # class 2: type A, type B
            await page.screenshot(path=str(screenshot_path("maintenance-schedule")), full_page=True)

            await page.goto(f"{url}/maintenance/import")
            await page.set_input_files("input[name=file]", str(bad_csv))
            await page.check("input[name=write]")
            await page.click("#import-form button")
            await page.wait_for_selector("#import-problems:not([hidden]) tbody tr")
            cells = await page.locator("#import-problems tbody tr").all_inner_texts()
            assert cells == [
                "2\trange_unit\tunknown unit 'bar' for a temperature range (°C or °F)",
                "2\t\tF-9: a furnace needs furnace_class and instrumentation",
            ]
            await page.screenshot(path=str(screenshot_path("maintenance-import-refused")), full_page=True)
            assert hub.equipment("F-9") is None
            await page.set_input_files("input[name=file]", str(corrupt))
            await page.click("#import-form button")
            await page.wait_for_selector(f"#import-problems tbody tr:has-text('{not_a_zip}')")
            assert "1 problems" in (await page.text_content("#import-outcome") or "")
            await page.screenshot(path=str(screenshot_path("maintenance-import-not-xlsx")), full_page=True)
            assert hub.equipment("SCALE-9") is None

            # calibrations: a bad log names the file, row and column and changes nothing
            held_calibrations = len(hub.calibrations("UVA-LAMP-1"))
            await page.select_option("select[name=what]", "calibrations")
            await page.set_input_files("input[name=file]", str(bad_calibrations))
            await page.click("#import-form button")
            await page.wait_for_selector("#import-problems:not([hidden]) tbody tr:has-text('cal-log.csv')")
            cells = await page.locator("#import-problems tbody tr").all_inner_texts()
            assert [c.split("\t")[:2] for c in cells] == [["3", "traceability"], ["4", "asset_id"]], cells
            assert "cal-log.csv row 3: traceability" in cells[0]
            await page.screenshot(
                path=str(screenshot_path("maintenance-calibration-import-refused")), full_page=True
            )
            assert len(hub.calibrations("UVA-LAMP-1")) == held_calibrations
            await page.uncheck("input[name=write]")
            await page.set_input_files("input[name=file]", str(good_calibrations))
            await page.click("#import-form button")
            await page.wait_for_selector("#import-changes:not([hidden])")
            assert "UVA-LAMP-1" in (await page.text_content("#import-changes") or "")
            assert "dry run" in (await page.text_content("#import-outcome") or "")
            await page.screenshot(
                path=str(screenshot_path("maintenance-calibration-import-dry-run")), full_page=True
            )
            assert len(hub.calibrations("UVA-LAMP-1")) == held_calibrations
        async with httpx.AsyncClient(base_url=url) as qm:  # the API the page calls, for both imports
            await qm.post("/login", data={"username": "qm-anna", "password": PASSWORD})
            for what in ("equipment", "calibrations"):
                answer = await qm.post(
                    f"/api/v1/import/{what}",
                    params={"format": "xlsx", "dry_run": "false", "file": corrupt.name},
                    content=corrupt.read_bytes(),
                )
                assert answer.status_code == 200, answer.text
                result = answer.json()
                assert not result["ok"] and not result["written"]
                assert [p["field"] for p in result["problems"]] == ["file"]
                assert result["problems"][0]["message"].startswith(not_a_zip)
            assert hub.equipment("SCALE-9") is None
        async with httpx.AsyncClient(base_url=url) as auditor_like:  # an operator reads the certificate
            assert (
                await auditor_like.post("/login", data={"username": "op-7", "password": PASSWORD})
            ).status_code == 303
            got = await auditor_like.get(f"/api/v1/calibrations/{found.id}/certificate")
            assert got.status_code == 200 and got.content == certificate_file.read_bytes()
            assert got.headers["content-disposition"] == 'attachment; filename="CAL-9931.pdf"'
            assert got.headers["x-content-type-options"] == "nosniff"
        await asyncio.to_thread(
            _the_command_line, hub_db, floor.hub_url, tmp_path, bad_csv, bad_calibrations, corrupt
        )
    finally:
        server.should_exit = True
        await task
        hub.close()
        await connection.close()


def _the_command_line(
    hub_db: HubDatabase, hub_url: str, tmp_path: Path, bad_csv: Path, bad_calibrations: Path, corrupt: Path
) -> None:
    """``smart maintenance`` on the same hub: register and calibrate from files, import, refusals."""
    env = {
        "SMART_DATABASE_URL": hub_db.owner_url,
        "SMART_STATE_DIR": str(tmp_path / "cli-state"),
        "SMART_SETTINGS_FILE": str(tmp_path / "no-settings.toml"),
        "SMART_STATIONS": "6",
        "SMART_NATS_URL": hub_url,
    }
    scale = tmp_path / "scale.yaml"
    scale.write_text(
        yaml.safe_dump({"asset_id": "SCALE-1", "kind": "scale", "station": "sr-1", "serial": "S-1"})
    )
    assert invoke("maintenance", "register", str(scale), env=env).exit_code == 0
    cal = tmp_path / "cal.yaml"
    values = certificate(datetime.now(UTC)).model_dump(mode="json")
    cal.write_text(yaml.safe_dump({**values, "traceability": ""}))
    refused = invoke("maintenance", "calibrate", "SCALE-1", str(cal), env=env)
    assert refused.exit_code == 1 and "traceability" in refused.stderr
    cal.write_text(yaml.safe_dump(values))
    no_due = invoke("maintenance", "calibrate", "SCALE-1", str(cal), env=env)  # no contract calibrates scales
    assert no_due.exit_code == 1 and "next_due" in no_due.stderr
    due = (date.today() + timedelta(days=180)).isoformat()
    cal.write_text(yaml.safe_dump({**values, "next_due": due}))
    pdf = tmp_path / "scale-cert.pdf"
    pdf.write_bytes(b"%PDF-1.4 scale")
    done = invoke("maintenance", "calibrate", "SCALE-1", str(cal), "--certificate", str(pdf), env=env)
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["calibration"]["certificate_name"] == "scale-cert.pdf"
    imported = invoke("maintenance", "import", str(bad_csv), "--apply", env=env)
    assert imported.exit_code == 1 and json.loads(imported.stdout)["problems"][0]["column"] == "range_unit"
    for command in ("import", "import-calibrations"):  # not an XLSX: the file named, nothing written
        unreadable = invoke("maintenance", command, str(corrupt), "--apply", env=env)
        (problem,) = json.loads(unreadable.stdout)["problems"]
        assert unreadable.exit_code == 1 and problem["field"] == "file"
        assert problem["message"].startswith("register-june.xlsx is not an XLSX workbook")
    calibrations = invoke("maintenance", "import-calibrations", str(bad_calibrations), "--apply", env=env)
    assert calibrations.exit_code == 1
    assert [(p["row"], p["column"]) for p in json.loads(calibrations.stdout)["problems"]] == [
        (3, "traceability"),
        (4, "asset_id"),
    ]
    opened = invoke("maintenance", "order", "SCALE-1", "repair", env=env)
    token = tmp_path / "typed.txt"
    token.write_text("tech-5 says it is done, honestly")
    order_id = str(json.loads(opened.stdout)["id"])
    unsigned = invoke("maintenance", "done", order_id, "--credential", str(token), env=env)
    assert unsigned.exit_code == 1 and "does not verify" in unsigned.stderr  # no issuer key: fail closed
    listed = json.loads(invoke("maintenance", "list", "--station", "sr-1", env=env).stdout)
    assert [(e["asset_id"], e["calibration_due"]) for e in listed] == [("SCALE-1", due)]
