"""StandardsCentral, QACentral and InventoryHub pages and API: signed in by role, over HTTP and in Chromium.

One hub (real PostgreSQL, the hub's nats-server, SMART-ID with the demo shop's
people and their signed credentials) and one browser session: a Level 3
approves a procedure revision with the credential SMART-ID holds for her;
a login with the Level 3 role whose person is only a Level 2 cannot, nor can
a badge whose tokens are forged; a lot with an expiry before receipt or an
unknown unit is refused naming the field; the quality manager dispositions an
NCR pt-1 opened, and the decision is what pt-1's record says.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import httpx
import nats
import psycopg
import pytest
from nats.js import JetStreamContext

from smart import ledger
from smart.access.roles import Role
from smart.bus import hub_roles
from smart.hub import handoff_central, means, reorders
from smart.hub.published import feed
from smart.hub.qa.models import DispositionIn
from smart.hub.streams import ensure_hub_streams
from smart.hub.vault.logins import Logins
from smart.hub.vault.service import SharedNodeLog
from smart.hub.vault.smartid import SmartId
from smart.hub.web import auth
from smart.hub.web.app import create_app
from smart.keys import KeyStore
from smart.modules.qa import ncr as station_ncr
from smart.node import records
from smart.runtime import demo_shop, ports
from smart.runtime.floor import FloorStatus
from smart.runtime.up import serve_web
from smart.testing.browser import DESKTOP, async_page, screenshot_path
from smart.testing.plugin import FloorFactory
from tests.hub.conftest import PASSWORD, HubDatabase
from tests.node.test_job_walkthrough import AT


async def _no_floor() -> FloorStatus:
    return FloorStatus(healthy=True, services=[], checked_at=time.time())


async def _signed_in(url: str, username: str) -> httpx.AsyncClient:
    session = httpx.AsyncClient(base_url=url, follow_redirects=False, timeout=60)
    answer = await session.post("/login", data={"username": username, "password": PASSWORD})
    assert answer.status_code == 303
    return session


async def _value(js: JetStreamContext, key: str) -> dict[str, object]:
    entry = await (await js.key_value(records.RECORDS_BUCKET)).get(key)
    assert entry.value is not None
    loaded: dict[str, object] = json.loads(entry.value)
    return loaded


async def test_the_means_pages_sign_with_verified_credentials_and_refuse_bad_input_by_field(
    floor_factory: FloorFactory, hub_db: HubDatabase, tmp_path: Path
) -> None:
    floor = floor_factory(stations=1)
    assert floor.floor.hub is not None
    handoff_central.migrate(hub_db.owner_url)
    reorders.migrate(hub_db.owner_url)
    means.migrate(hub_db.owner_url)
    keys = KeyStore(tmp_path / "keys")
    smartid = SmartId(
        hub_db.owner_url, key=keys.signing_key("smart-id"), ledger=SharedNodeLog(tmp_path / "ledger", keys)
    )
    demo_shop.enrol(smartid, AT)
    logins = Logins(hub_db.owner_url)
    for username, role, employee in (
        ("l3-lee", Role.LEVEL3, "D-301"),
        ("l3-pretend", Role.LEVEL3, "D-007"),  # the role of a Level 3, the certification of a Level 2
        ("qm-anna", Role.QUALITY_MANAGER, "D-901"),
        ("op-7", Role.OPERATOR, "D-007"),
    ):
        logins.add(username, PASSWORD, role=role, employee_id=employee)
    connection = await nats.connect(floor.floor.hub.url, **floor.settings.hub_nats_signin())
    js = connection.jetstream()
    await records.ensure_records_bucket(js)
    services = means.MeansServices(
        hub_db.app_url, keys=keys, ledger_dir=tmp_path / "ledger", stations=["pt-1"], js=js, smartid=smartid
    )
    app = create_app(_no_floor, routers=[auth.router(logins), *services.routers(auth.Guard(logins))])
    port = ports.free_port()
    server, task = await serve_web(app, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    qm, l3, pretend, op = [await _signed_in(url, u) for u in ("qm-anna", "l3-lee", "l3-pretend", "op-7")]
    try:
        spec = {
            "spec": "ASTM E1417",
            "revision": "21",
            "title": "Liquid penetrant testing",
            "effective_on": "2021-06-01",
        }
        assert (await qm.post("/api/v1/standards/specs", json=spec)).status_code == 201
        backdated = await qm.post(
            "/api/v1/standards/specs",
            json={**spec, "revision": "22", "supersedes": "21", "effective_on": "2020-01-01"},
        )
        assert backdated.status_code == 422 and backdated.json()["detail"][0]["field"] == "effective_on"
        procedure = {"id": "PT-PROC-12", "method": "PT", "title": "FPI Type I", "stations": ["pt-1"]}
        assert (await op.post("/api/v1/standards/procedures", json=procedure)).status_code == 403
        assert (await qm.post("/api/v1/standards/procedures", json=procedure)).status_code == 201
        today = AT.date().isoformat()
        drafted = await qm.post(
            "/api/v1/standards/procedures/PT-PROC-12/revisions",
            json={"revision": "D", "effective_on": today, "validated": True},
        )
        assert drafted.status_code == 201, drafted.text
        early = await qm.post(
            "/api/v1/standards/procedures/PT-PROC-12/revisions",
            json={"revision": "E", "effective_on": "2020-01-01", "supersedes": "D", "validated": True},
        )
        assert early.status_code == 422 and early.json()["detail"][0]["field"] == "effective_on"
        approval = "/api/v1/standards/procedures/PT-PROC-12/revisions/D/approval"
        refused = await pretend.post(approval, json={})
        assert refused.status_code == 422 and refused.json()["detail"][0]["field"] == "approver"
        assert "approve procedure" in refused.text and "certified" in refused.text
        tokens = [c.token for c in smartid.credentials("D-301") if c.status == "active"]
        not_hers = await pretend.post(approval, json={"badge": "l3-1", "tokens": tokens})  # replayed tokens
        assert not_hers.status_code == 422 and "own person's badge" in not_hers.text
        forged = await l3.post(
            approval, json={"badge": "l3-1", "tokens": [t[:-6] + "AAAAAA" for t in tokens]}
        )
        assert forged.status_code == 422 and "bad_signature" in forged.text
        assert (await qm.get("/api/v1/standards/procedures/PT-PROC-12/revisions")).json()[0][
            "approved_by"
        ] is None

        lot = {
            "id": "PEN-2291",
            "material": "penetrant",
            "supplier": "Magnaflux",
            "certificate": "C-1",
            "received_on": today,
            "expires_on": (AT.date() + timedelta(days=200)).isoformat(),
            "quantity": 40,
            "unit": "L",
            "stations": ["pt-1"],
        }
        material = {
            "id": "penetrant",
            "form": "aerosol",
            "unit": "can",
            "in_use_checks": ["fluorescence"],
            "supplier": "Magnaflux",
            "min_stock": 12,
            "lead_time_days": 7,
            "pack_size": 20,
            "stations": ["pt-1"],
        }
        aerosol = await qm.post("/api/v1/materials", json=material)
        assert aerosol.status_code == 422 and "in_use_checks" in aerosol.text
        material.update(form="bulk", unit="L")
        assert (await qm.post("/api/v1/materials", json=material)).status_code == 201
        backwards = await qm.post("/api/v1/lots", json={**lot, "expires_on": "2020-01-01"})
        assert backwards.status_code == 422 and "expires_on" in backwards.text
        unknown_unit = await qm.post("/api/v1/lots", json={**lot, "unit": "bucket"})
        assert unknown_unit.status_code == 422 and "unknown unit" in unknown_unit.text
        assert (await qm.get("/api/v1/lots")).json() == []
        assert (await qm.post("/api/v1/lots", json=lot)).status_code == 201
        assert (await _value(js, "pt-1.lot.PEN-2291"))["material"] == "penetrant"
        later = (AT.date() + timedelta(days=400)).isoformat()
        sheet = "\n".join(
            [
                "id,material,supplier,certificate,received_on,expires_on,quantity,unit,stations",
                f"PEN-2400,penetrant,Magnaflux,C-2,{today},{later},20,L,pt-1",
                f"PEN-2401,penetrant,Magnaflux,C-3,{today},{later},20,bucket,pt-1",
                f"PEN-2402,penetrant,Magnaflux,C-4,{later},{today},20,L,pt-1",
                f"DEV-1,developer,Magnaflux,C-5,{today},{later},5,L,pt-1",
            ]
        ).encode()
        checked = await qm.post("/api/v1/import/lots", params={"apply": "true"}, content=sheet)
        assert checked.status_code == 200 and checked.json()["written"] is False
        problems = [(p["row"], p["column"]) for p in checked.json()["problems"]]
        assert problems == [(3, "unit"), (4, "expires_on"), (5, "material")], checked.json()
        assert [x["id"] for x in (await qm.get("/api/v1/lots")).json()] == ["PEN-2291"]  # nothing written
        good = b"\n".join(sheet.split(b"\n")[:2])
        assert (await qm.post("/api/v1/import/lots", content=good)).json()["written"] is False  # a dry run
        imported = await qm.post("/api/v1/import/lots", params={"apply": "true"}, content=good)
        assert imported.json()["written"] is True
        assert (await _value(js, "pt-1.lot.PEN-2400"))["on_hand"] == 20

        # an NCR pt-1 signed on its own ledger, as the hub log brings it
        opened = station_ncr.Nonconformance(
            id="NCR-pt-1-1",
            station="pt-1",
            characteristic="inspection",
            opened_at=AT,
            opened_by="op-7",
            rule="qa.inspection-reject",
            message="rejected at inspection: 1 linear indication",
            job="J-1",
            part="BRK-220",
            serial="SN-002",
        )
        with ledger.NodeLog.open(tmp_path / "pt-1", node="pt-1", keys=keys) as station_log:
            entry = station_log.append(
                kind="qa.ncr.opened", subject="J-1", data=opened.to_json(), actor="op-7"
            )
            # and pt-1's reorder signal for penetrant (its inventory module's entry)
            signal = station_log.append(
                kind="inventory.reorder",
                subject="penetrant",
                actor="pt-1",
                data={"material": "penetrant", "quantity": 25, "unit": "L", "projected": 8, "minStock": 20},
            )
        assert services.ncr_index.take(0, entry) == 1
        photo = {"note": "photo of the indication at the bore", "sha256": "ab" * 32}
        assert (await op.post("/api/v1/ncrs/NCR-pt-1-1/evidence", json=photo)).status_code == 403
        assert (await qm.post("/api/v1/ncrs/NCR-pt-1-1/evidence", json=photo)).status_code == 201
        board = reorders.ReorderBoard.connect(hub_db.app_url)
        try:
            assert board.take(1, signal) == 1
        finally:
            board.close()
        (request,) = services.inventory.raise_requests()
        assert (request.station, request.supplier, request.quantity, request.unit) == (
            "pt-1",
            "Magnaflux",
            40,
            "L",
        )
        assert services.inventory.raise_requests() == []  # one request per signal
        # the buyers' copy goes one way to the Business hub's feed, once (its place on the feed noted)
        await ensure_hub_streams(js)
        assert await services.inventory_publisher.publish_requests() == 1
        assert await services.inventory_publisher.publish_requests() == 0
        subject = f"published.purchase-request.PR-{request.id}"
        published = feed.Published.model_validate_json(
            (await js.get_last_msg(hub_roles.PUBLISHED_STREAM, subject)).data or b""
        )
        assert published.kind == "purchase-request" and published.key == f"PR-{request.id}"
        assert published.body == {
            "id": request.id,
            "station": "pt-1",
            "material": "penetrant",
            "supplier": "Magnaflux",
            "quantity": 40.0,
            "unit": "L",
            "raised_at": request.raised_at.isoformat().replace("+00:00", "Z"),
            "pack_size": 20.0,  # the material's pack: 40 L is two whole packs
            "packs": 2,
        }
        (noted,) = services.inventory.purchase_requests()
        assert noted.published_seq is not None
        assert services.inventory.purchase_requests(unpublished=True) == []
        with (
            psycopg.connect(hub_db.app_url, autocommit=True) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege, match="only its place on the Business feed"),
        ):  # the app role's UPDATE notes the feed's place, never a quantity
            conn.execute("UPDATE inventory.purchase_requests SET quantity = 4000")

        matrix = "employee_id,name,badge,roles,station,record,on,scheme,method,level"
        bad_matrix, good_matrix = tmp_path / "matrix-bad.csv", tmp_path / "matrix.csv"
        bad_matrix.write_text(
            f"{matrix}\nE-500,Eve Tester,b-500,operator,pt-9,performance,{today},,PT,\n"
            f"E-500,Eve Tester,b-500,operator,,certification,{today},NAS410,PT,7\n"
        )
        good_matrix.write_text(
            f"{matrix}\nE-500,Eve Tester,b-500,operator,pt-1,certification,{today},NAS410,PT,2\n"
        )
        assert (await op.get("/people/import")).status_code == 403  # people.write only
        async with async_page(DESKTOP) as page:
            await page.goto(f"{url}/login?next=/standards")
            await page.fill("input[name=username]", "l3-lee")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button")
            row = "table[data-procedure='PT-PROC-12'] tr[data-revision='D']"
            assert (await page.text_content(f"{row} .state") or "").strip() == "draft"
            assert "yes" in (await page.text_content("tr[data-spec='ASTM E1417'][data-revision='21']") or "")
            await page.screenshot(path=screenshot_path("standards-draft"))
            await page.click(f"{row} button")
            await page.wait_for_selector(f"{row} td.state:has-text('in force')")
            assert "l3-1" in (await page.text_content(row) or "")
            await page.screenshot(path=screenshot_path("standards-approved"))
            held = await _value(js, "pt-1.procedure.PT-PROC-12")
            assert (held["revision"], held["approved_by"]) == ("D", "l3-1")

            await page.goto(f"{url}/inventory")
            assert "C-1" in (await page.text_content("tr[data-lot='PEN-2291']") or "")
            assert "Magnaflux" in (await page.text_content("#requests") or "")
            await page.screenshot(path=screenshot_path("inventory"))

            await page.click("form.inline button")  # sign out; the quality manager decides the NCR
            await page.goto(f"{url}/login?next=/ncrs")
            await page.fill("input[name=username]", "qm-anna")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button")
            assert (await page.text_content("tr[data-ncr='NCR-pt-1-1'] .state") or "").strip() == "open"
            await page.screenshot(path=screenshot_path("ncrs"))
            await page.click("a[href='/ncrs/NCR-pt-1-1']")
            await page.select_option("#disposition select[name=disposition]", "use-as-is")
            await page.click("#disposition button")
            await page.wait_for_selector(".refused")
            assert "design authority" in (await page.text_content(".refused") or "")
            await page.select_option("#disposition select[name=disposition]", "scrap")
            await page.fill("#disposition input[name=marking]", "red tag RT-77, quarantine cage 2")
            await page.click("#disposition button")
            await page.wait_for_selector("#decisions td:has-text('scrap')")
            await page.screenshot(path=screenshot_path("ncr-dispositioned"))

            # the training matrix: a bad file lists its rows and columns and writes nothing
            people_before = smartid.people()
            await page.goto(f"{url}/people/import")
            await page.set_input_files("input[name=file]", str(bad_matrix))
            await page.check("input[name=apply]")
            await page.click("#matrix-form button")
            await page.wait_for_selector("#matrix-problems:not([hidden]) tbody tr")
            cells = await page.locator("#matrix-problems tbody tr").all_inner_texts()
            assert [c.split("\t")[:2] for c in cells] == [["2", "station"], ["3", "level"]], cells
            assert "nothing written" in (await page.text_content("#matrix-outcome") or "")
            await page.screenshot(path=screenshot_path("training-matrix-refused"), full_page=True)
            assert smartid.people() == people_before
            # a good file: the dry run shows who and what would change, and writes nothing
            await page.uncheck("input[name=apply]")
            await page.set_input_files("input[name=file]", str(good_matrix))
            await page.click("#matrix-form button")
            await page.wait_for_selector("#matrix-changes:not([hidden]) tr[data-employee='E-500']")
            change = await page.text_content("#matrix-changes tr[data-employee='E-500']") or ""
            assert "new" in change and "pt-1" in change and "certification PT level 2" in change
            assert "dry run" in (await page.text_content("#matrix-outcome") or "")
            await page.screenshot(path=screenshot_path("training-matrix-dry-run"), full_page=True)
            assert smartid.people() == people_before
            await page.check("input[name=apply]")
            await page.click("#matrix-form button")
            await page.wait_for_selector("#matrix-outcome:has-text('Imported')")
            assert "E-500" in {p.employee_id for p in smartid.people()}
        sent = await _value(js, "pt-1.ncr-decision.NCR-pt-1-1")
        assert (sent["disposition"], sent["decided_by"], sent["close"]) == ("scrap", "qm-1", False)
        assert await services.decisions.resend() == []  # every decision reached pt-1's records
        closing = DispositionIn(
            disposition="scrap", marking="red tag RT-77", close=True, evidence="crushed, binned"
        )
        signed = services.signer.sign_with_role("D-901", "quality_manager", action="disposition_ncr")
        services.qa.decide("NCR-pt-1-1", closing, signed, actor="qm-anna")  # recorded; its put never made
        assert await services.decisions.resend() == ["NCR-pt-1-1"]
        assert (await _value(js, "pt-1.ncr-decision.NCR-pt-1-1"))["close"] is True
        detail = (await qm.get("/api/v1/ncrs/NCR-pt-1-1")).json()
        assert detail["decisions"][0]["marking"].startswith("red tag")
        assert detail["evidence"][0]["note"] == photo["note"] and detail["open"] is True  # until pt-1 says so
    finally:
        for session in (qm, l3, pretend, op):
            await session.aclose()
        server.should_exit = True
        await task
        await services.stop()
        await connection.close()
