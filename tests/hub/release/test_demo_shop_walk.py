"""The demo shop loaded through the hub's work services, and its whole walk: sr-1 receives, pt-1, sr-1 ships.

What ``smart up --demo-shop`` does, with the same services: the client, PO-4411
with its flowdown, the approved procedures and the traveler pt-1 → sr-1 are
entered, the line is contract-reviewed and released, and only pt-1 and sr-1
get its records. Then the job is walked at real stations (node agents on
their leaves, the reference contracts), their ledgers reach the hub, and the
hub's job view and milestones follow the serial from receipt to shipment, and
Pay invoices the line against the C of C signed at sr-1; AuditCentral's printer, running all along,
prints and stores that C of C (PDF with its QR code, and the bundle it names) without being asked, and
the client API serves the client exactly that PDF (404 before it is printed, and to any other client).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import nats
import psycopg
import pypdf
from fastapi import FastAPI
from nats.aio.client import Client as NatsClient

from smart.contracts import facts as f
from smart.hub import handoff_central, projects
from smart.hub.audit import clientproof, index, printing
from smart.hub.audit.service import AuditCentral
from smart.hub.client_api import service as client_api_service
from smart.hub.client_api import web as client_api_web
from smart.hub.clients.models import ClientIn
from smart.hub.gathering import HubNodeGathering
from smart.hub.intake import LedgerIntake, register_stations
from smart.hub.pay import service as pay_service
from smart.hub.pay import store as pay_store
from smart.hub.projects import store as projects_store
from smart.hub.published import client_views, feed
from smart.hub.release import job_view
from smart.hub.release import store as release
from smart.hub.service_log import PAY, ServiceNodeLog
from smart.hub.streams import ensure_hub_streams
from smart.hub.work import WorkServices
from smart.keys import KeyStore
from smart.ledger import hub_store
from smart.ledger.hub_store import HubLog
from smart.node import records
from smart.node.station import StationRuntime
from smart.runtime import demo_shop
from smart.testing.patience import STATE_DEADLINE_S
from smart.testing.plugin import FloorFactory
from tests.hub.audit.test_client_proof import _decoded_qr
from tests.hub.conftest import HubDatabase
from tests.hub.release.test_release import keys as bucket_keys
from tests.hub.shop import flowdown, line, order
from tests.node.conftest import Hub, agent_for, eventually
from tests.node.test_job_walkthrough import (
    AT,
    PENETRANT_STEPS,
    Bench,
    at,
    deploy,
    entries,
    reading,
    walk_penetrant_to_the_gate,
)

#: sr-1's people, from SMART-ID as stations get them (the demo shop's pt-1 people are its own).
SR_PEOPLE = (f.Person("ship-1"), f.Person("qm-1", authorities=("coc-signature",)))


async def _until(check: Callable[[], Awaitable[bool]], *, what: str) -> None:
    """Wait (asking the API) for what the Floor publishes to reach the Business hub's feed."""
    deadline = asyncio.get_running_loop().time() + STATE_DEADLINE_S
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"{what}: not reached"
        await asyncio.sleep(0.1)


async def test_the_demo_shop_po_is_released_through_the_hub_and_walked_from_receiving_to_shipping(
    floor_factory: FloorFactory, hub_db: HubDatabase, tmp_path: Path
) -> None:
    import smart.hub.work as work_module

    work_module.migrate(hub_db.owner_url)
    # The single hub's layout (one login for every role's services): Pay and the publisher of the client
    # views as the Floor runs them, the feed and the client API as the Business hub runs them.
    pay_service.migrate(hub_db.owner_url)
    client_views.migrate(hub_db.owner_url)
    feed.migrate(hub_db.owner_url, role=hub_store.APP_ROLE)
    client_api_service.migrate(hub_db.owner_url)
    floor = floor_factory(stations=6)
    assert floor.floor.hub is not None
    key_store = KeyStore(tmp_path / "keys")
    key_store.signing_key("hub")
    connection = await nats.connect(floor.floor.hub.url, **floor.settings.hub_nats_signin())
    js = connection.jetstream()
    await ensure_hub_streams(js)
    await records.ensure_records_bucket(js)
    hub = Hub(connection, key_store)
    stations = list(floor.floor.leaves)
    work = WorkServices(
        hub_db.app_url, keys=key_store, ledger_dir=tmp_path / "hub-ledger", stations=stations, js=js
    )
    hub_log = HubLog.connect(hub_db.app_url, key=key_store.signing_key("hub"))
    # the gathering's own connection, as the hub gives it: the intake ingests on hub_log in a worker thread,
    # and one connection in two threads nests their transactions out of order (a failure under load)
    gathering_log = HubLog.connect(hub_db.app_url, key=key_store.signing_key("hub"))
    register_stations(hub_log, key_store, stations)
    intake = LedgerIntake(connection, hub_log, stations=stations)
    intake_task = asyncio.create_task(intake.run())
    runtimes: list[StationRuntime] = []
    clients: list[NatsClient] = []
    index.migrate(hub_db.owner_url)
    central = AuditCentral(hub_db.app_url, log_key=key_store.verifying_key("hub"))
    printer = asyncio.create_task(printing.CertificatePrinter(central, shop="Demo NDT").run(every_s=0.5))
    # What was printed is read on a connection of its own: the printer's passes use central's in a
    # worker thread all along (one connection in two threads, as with the gathering's above).
    audit = AuditCentral(hub_db.app_url, log_key=key_store.verifying_key("hub"))
    client_api = client_api_service.ClientApiServices(
        hub_db.app_url, keys=key_store, ledger_dir=tmp_path / "hub-ledger"
    )
    floor_pay = pay_service.PayServices(hub_db.app_url, keys=key_store, ledger_dir=tmp_path / "hub-ledger")
    views = client_views.ClientViews(
        hub_db.app_url, pay=floor_pay.pay, log_key=key_store.verifying_key("hub")
    )
    publishing = [
        asyncio.create_task(views.follow(js, every_s=0.5)),
        asyncio.create_task(feed.BusinessFeed(js, hub_db.app_url).run()),
    ]
    api_app = FastAPI()
    api_app.include_router(client_api_web.router(client_api.api))
    api = httpx.AsyncClient(transport=httpx.ASGITransport(app=api_app), base_url="https://testserver")
    try:
        await deploy(hub, "penetrant")
        await deploy(hub, "shipping-receiving")
        people = await demo_shop.seed_people_and_equipment(js, AT, stations={"pt-1"})
        for person in SR_PEOPLE:
            await records.publish_record(js, "sr-1", "person", person.id, person)
        released = await demo_shop.load_work(work, AT)
        assert released is not None and released.stations == ("pt-1", "sr-1")
        work_keys = {k for k in await bucket_keys(js) if ".po-line." in k or ".procedure." in k}
        assert work_keys == {
            "pt-1.po-line.PO-4411/1",
            "pt-1.procedure.PT-PROC-12",
            "sr-1.po-line.PO-4411/1",
            "sr-1.procedure.SR-PROC-2",
        }  # nothing for mt-1, ut-1, ht-1, cp-1
        assert await demo_shop.load_work(work, AT) is None  # a restarted demo floor releases nothing again

        benches: dict[str, Bench] = {}
        for station, expected in (("pt-1", people + 2), ("sr-1", len(SR_PEOPLE) + 2)):
            runtime = StationRuntime(agent_for(floor, station, key_store, tmp_path / "stations"))
            await runtime.start()
            runtimes.append(runtime)
            client = await nats.connect(floor.floor.leaves[station].url)
            clients.append(client)
            await eventually(
                lambda r=runtime: r.serving() and "gatekeeper" in r.modules, what=f"{station} up"
            )
            await eventually(
                lambda r=runtime, n=expected: len(entries(r, "record.received")) >= n,
                what=f"{station} records mirrored",
                deadline_s=60,
            )
            benches[station] = Bench(runtime, client, hub)
        pt, sr = benches["pt-1"], benches["sr-1"]
        assert pt.runtime.facts().po_lines["PO-4411/1"].operations == ("penetrant",)
        assert sr.runtime.facts().po_lines["PO-4411/1"].operations == ("shipping",)

        # sr-1 receives the parts against the released line
        assert (await sr.job("badge", person="ship-1", at=at(0)))["allowed"]
        received = await sr.job(
            "receive",
            job="R-1",
            po="PO-4411",
            line="1",
            part="BRK-220",
            serial="SN-002",
            received=2,
            at=at(1),
        )
        assert received["allowed"], received["reasons"]

        # pt-1 inspects them
        uva = {"uv-a-intensity": reading(1180, "µW/cm²"), "ambient-white-light": reading(1.5, "fc")}
        assert (await pt.check("uv-a-intensity", uva))["outcome"] == "allow"
        assert (await pt.check("tam-panel"))["outcome"] == "allow"
        gate = await walk_penetrant_to_the_gate(pt)
        assert gate["allowed"], gate["reasons"]
        for minutes, step in enumerate(PENETRANT_STEPS, start=3):
            assert (await pt.job("step", at=at(minutes * 15), **step))["allowed"], step
        assert (await pt.job("release", signer="op-7", at=at(200)))["allowed"]
        assert (await pt.job("handoff", at=at(201)))["state"] == "handed-off"
        assert printing.certificates(audit.conn) == []  # nothing shipped yet, nothing printed
        # the client's integration asks the API for the line's C of C: not printed yet, and it says so
        work.clients.add_client(
            ClientIn(code="OTHER", name="Other Aero", retention="7 years", nadcap_required=False),
            actor="qm-1",
        )
        no_nadcap = flowdown(nadcap_required=False)
        other_po = order("PO-7000", line("1", serials=("OT-1",), quantity=1, flowdowns=(no_nadcap,)))
        work.clients.add_po(other_po.model_copy(update={"client": "OTHER"}), actor="qm-1")

        def published(kind: str) -> set[str]:  # the Business hub knows only what the Floor published
            return {r.key for r in feed.records(hub_db.app_url, kind)}

        await eventually(lambda: published("client") >= {"AEROSPAR", "OTHER"}, what="the clients published")
        await eventually(lambda: published("client-po") >= {"PO-4411", "PO-7000"}, what="the POs published")
        _, aerospar_key = client_api.credentials.create_key("AEROSPAR", actor="qm-1", label="ERP")
        _, other_key = client_api.credentials.create_key("OTHER", actor="qm-1")
        coc_path = "/api/v1/client/pos/PO-4411/lines/1/coc"
        mine, theirs = {"Authorization": f"Bearer {aerospar_key}"}, {"Authorization": f"Bearer {other_key}"}
        early = await api.get(coc_path, headers=mine)
        assert early.status_code == 404 and early.json()["detail"].startswith(
            "line: no C of C printed yet for PO PO-4411 line 1"
        ), early.text

        # sr-1 ships them with a C of C the quality manager signs with her own badge
        assert (await sr.job("badge", person="qm-1", at=at(259)))["allowed"]
        shipped = await sr.job("ship", quantities={"accepted": 2}, signCoc=True, at=at(260))
        assert shipped["allowed"], shipped["reasons"]

        # the C of C is printed and stored once the shipment reaches the hub: nobody asked for it
        gathering = HubNodeGathering(tmp_path / "hub-ledger", gathering_log, key_store)

        def printed_at_hub() -> bool:
            gathering.gather_once()  # the hub gathers its services' logs (ClientManager's PO) all along
            return printing.certificates(audit.conn, po="PO-4411", line="1") != []

        await eventually(printed_at_hub, what="the C of C printed at the hub", deadline_s=180)
        (printed,) = printing.certificates(audit.conn, po="PO-4411", line="1")
        assert (printed.station, printed.job, printed.client) == ("sr-1", "R-1", "AEROSPAR")
        held = printing.stored(audit.conn, printed.ledger_idx)
        assert held is not None
        _, pdf, proof_bundle = held
        assert pdf.startswith(b"%PDF") and printed.proof_size > printed.ledger_idx
        code = _decoded_qr(pdf)
        assert code == printed.qr_text
        proved = clientproof.check(proof_bundle, code, audit.trust())
        assert proved.index == printed.ledger_idx
        text = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
        assert "PO-4411 line 1" in text and "qm-1" in text and "Demo NDT" in text
        await asyncio.sleep(1.5)  # passes of the printer after it: still one certificate
        assert len(printing.certificates(audit.conn)) == 1

        # the client API (Business) serves the client that same PDF, as the Floor published it: its QR code
        # names the bundle packed with the parts
        async def served_coc() -> bool:
            return (await api.get(coc_path, headers=mine)).status_code == 200

        await _until(served_coc, what="the C of C published to Business")
        served = await api.get(coc_path, headers=mine)
        assert served.status_code == 200 and served.headers["content-type"] == "application/pdf"
        assert served.content == pdf and served.headers["etag"] == f'"{printed.pdf_sha256}"'
        assert _decoded_qr(served.content) == printed.qr_text
        assert clientproof.check(proof_bundle, _decoded_qr(served.content), audit.trust()).index == (
            printed.ledger_idx
        )
        refused = await api.get(coc_path, headers=theirs)  # never another client's
        assert refused.status_code == 404 and refused.json()["detail"] == "po: no PO PO-4411 of yours"

        handoffs = handoff_central.HandoffCentral.connect(hub_db.app_url)
        floor_events = release.FloorEvents.connect(hub_db.app_url)
        certificates = pay_store.CertificateIndex.connect(hub_db.app_url)
        invoices = projects_store.InvoiceIndex.connect(hub_db.app_url)

        def traced() -> dict[str, str]:
            handoffs.index_once()
            floor_events.index_once()
            with psycopg.connect(hub_db.app_url, autocommit=True) as conn:
                view = job_view.job_view(
                    conn,
                    po="PO-4411",
                    line="1",
                    serials=("SN-001", "SN-002"),
                    traveler=work.travelers.latest("PO-4411", "1"),
                )
            trace = next(s for s in view.serials if s.serial == "SN-002")
            return {op.station: op.state for op in trace.operations}

        try:
            await eventually(
                lambda: traced() == {"pt-1": "done", "sr-1": "shipped"},
                what="the hub's job view of SN-002",
                state=traced,
                deadline_s=120,
            )
            with psycopg.connect(hub_db.app_url, autocommit=True) as conn:
                (arrival,) = release.arrivals(conn, po="PO-4411", line="1")
                assert (arrival.station, arrival.quantity, arrival.serials) == ("sr-1", 2, ("SN-002",))
                progress = projects.progress(conn, "PO-4411", today=AT.date())
                assert progress is not None
                reached = {m.name for m in progress.milestones if m.reached_at is not None}
                assert reached == {"received", "in process", "inspected", "shipped"}

            # the line's proofs (from the floor's index) include the shipment entry the C of C's code names
            async def line_proofs() -> set[tuple[str, int]]:
                found = (await api.get("/api/v1/client/pos/PO-4411/lines/1/proof", headers=mine)).json()
                return {(p["what"], p["index"]) for p in found["proofs"]}

            async def ship_proved() -> bool:
                return ("ship", printed.ledger_idx) in await line_proofs()

            await _until(ship_proved, what="the shipment's proof published to Business")

            # Pay invoices the line against the C of C qm-1 signed at sr-1, and Projects sees it invoiced
            certificates.index_once()
            pay = pay_store.Pay(
                hub_db.app_url, ledger=ServiceNodeLog(tmp_path / "hub-ledger", key_store, node=PAY)
            )
            try:
                invoice = pay.invoice("PO-4411", ["1"], actor="qm-1")
            finally:
                pay.close()
            with psycopg.connect(hub_db.app_url, autocommit=True) as conn:
                (certificate,) = pay_store.certificates(conn, "PO-4411", "1")
            assert (certificate.station, certificate.signed_by) == ("sr-1", "qm-1")
            assert invoice.lines[0].certificate == certificate.ledger_idx and invoice.lines[0].quantity == 2
            HubNodeGathering(tmp_path / "hub-ledger", gathering_log, key_store).gather_once()
            assert invoices.index_once() == 1
            with psycopg.connect(hub_db.app_url, autocommit=True) as conn:
                progress = projects.progress(conn, "PO-4411", today=AT.date())
                assert progress is not None and all(m.reached_at for m in progress.milestones)
        finally:
            handoffs.close()
            floor_events.close()
            certificates.close()
            invoices.close()
    finally:
        printer.cancel()
        await asyncio.gather(printer, return_exceptions=True)
        central.close()
        audit.close()
        await api.aclose()
        for task in publishing:
            task.cancel()
        await asyncio.gather(*publishing, return_exceptions=True)
        await client_api.stop()
        await floor_pay.stop()
        for client in clients:
            await client.close()
        for runtime in runtimes:
            await runtime.stop()
        intake_task.cancel()
        await asyncio.gather(intake_task, return_exceptions=True)
        intake.close()
        hub_log.close()
        gathering_log.close()
        await work.stop()
        await connection.close()
