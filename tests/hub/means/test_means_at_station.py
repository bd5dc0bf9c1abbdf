"""The hub's means reaching a real station: procedures, lots and an NCR dispositioned at the hub.

One pt-1 (node agent on its leaf, the penetrant contract), the hub's NATS and
PostgreSQL, SMART-ID with the demo shop's people and their signed
credentials. StandardsCentral gives pt-1 only the revision a Level 3 signed
and that is in force; InventoryHub's lots reach it and an expired one is
withdrawn on its day; an NCR pt-1 opens comes to QACentral through the
ledger, is dispositioned there by a signer whose credential verifies, and
pt-1's job is then released.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path

import nats
import pytest
from pydantic import ValidationError

from smart.bus.hub_roles import HubRole
from smart.hub import handoff_central, means, reorders
from smart.hub.clients import store as clients_store
from smart.hub.clients.store import Refused
from smart.hub.intake import LedgerIntake, register_stations
from smart.hub.inventory.models import LotIn, MaterialIn
from smart.hub.qa.models import CapaIn, DispositionIn, VerificationIn
from smart.hub.service_log import ServiceNodeLog
from smart.hub.services import HubServices, services_of
from smart.hub.standards.models import ProcedureIn, RevisionIn
from smart.hub.streams import ensure_hub_streams
from smart.hub.vault.service import SharedNodeLog
from smart.hub.vault.smartid import SmartId
from smart.keys import KeyStore
from smart.ledger.hub_store import HubLog
from smart.node import records
from smart.node.station import StationRuntime
from smart.runtime import demo_shop
from smart.testing.plugin import FloorFactory
from tests.hub.conftest import HubDatabase
from tests.node.conftest import Hub, agent_for, eventually
from tests.node.test_job_walkthrough import (
    AT,
    PENETRANT_STEPS,
    Bench,
    at,
    checks_done,
    deploy,
    walk_penetrant_to_the_gate,
)

L3, OP = "D-301", "D-007"  # the demo's Level 3 and a Level 2, as SMART-ID holds them
#: The hub role StandardsCentral, QACentral and InventoryHub run on (the Vault; see the README).
MEANS_ROLE = next(role for role in HubRole if "means" in services_of(role.value))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _handed(handoffs: handoff_central.HandoffCentral) -> bool:
    row = handoffs.conn.execute("SELECT count(*) FROM handoff_jobs WHERE job = 'J-1'").fetchone()
    return row is not None and int(row[0]) > 0


async def bucket_value(js: nats.js.JetStreamContext, key: str) -> dict[str, object] | None:
    bucket = await js.key_value(records.RECORDS_BUCKET)
    try:
        entry = await bucket.get(key)
    except nats.js.errors.KeyNotFoundError:
        return None
    return None if entry.value is None else json.loads(entry.value)


async def test_procedures_lots_and_ncrs_reach_pt1_only_as_the_hub_approved_them(
    floor_factory: FloorFactory, hub_db: HubDatabase, tmp_path: Path
) -> None:
    floor = floor_factory(stations=1)
    assert floor.floor.hub is not None
    handoff_central.migrate(hub_db.owner_url)
    reorders.migrate(hub_db.owner_url)
    means.migrate(hub_db.owner_url)
    keys = KeyStore(tmp_path / "keys")
    keys.signing_key("hub")
    clock = Clock(AT)
    smartid = SmartId(
        hub_db.owner_url,
        key=keys.signing_key("smart-id"),
        ledger=SharedNodeLog(tmp_path / "ledger", keys),
        clock=clock,
    )
    demo_shop.enrol(smartid, AT)
    connection = await nats.connect(floor.floor.hub.url, **floor.settings.hub_nats_signin())
    js = connection.jetstream()
    await ensure_hub_streams(js)
    await records.ensure_records_bucket(js)
    hub = Hub(connection, keys)
    # The means publish as the hub role they run on (the Vault's NATS user, its allow-list of record
    # kinds), not the driver: what reaches pt-1 below went through that role's rights alone.
    vault = await HubServices(floor.settings, role=MEANS_ROLE.value).connect_nats("test-means")
    services = means.MeansServices(
        hub_db.app_url,
        keys=keys,
        ledger_dir=tmp_path / "ledger",
        stations=["pt-1"],
        js=vault.jetstream(),
        smartid=smartid,
        clock=clock,
    )
    hub_log = HubLog.connect(hub_db.app_url, key=keys.signing_key("hub"))
    register_stations(hub_log, keys, ["pt-1"])
    intake = LedgerIntake(connection, hub_log, stations=["pt-1"])
    intake_task = asyncio.create_task(intake.run())
    runtime: StationRuntime | None = None
    client = None
    try:
        # -- StandardsCentral: only a Level 3's verified signature, only once in force ---------------
        std = services.standards
        std.add_procedure(
            ProcedureIn(id="PT-PROC-12", method="PT", title="FPI Type I Method A", stations=("pt-1",)),
            actor="qm",
        )
        today = AT.date()
        std.draft(
            "PT-PROC-12",
            RevisionIn(revision="D", effective_on=today, validated=True, spec="ASTM E1417"),
            actor="qm",
        )
        std.draft(
            "PT-PROC-12",
            RevisionIn(revision="E", effective_on=today, supersedes="D", validated=True),
            actor="qm",
        )
        std.draft(
            "PT-PROC-12",
            RevisionIn(revision="F", effective_on=today + timedelta(days=30), supersedes="D", validated=True),
            actor="qm",
        )
        with pytest.raises(Refused) as not_level_3:
            services.signer.sign_as(OP, "approve_procedure", method="PT")
        assert not_level_3.value.field == "approver" and "approve_procedure" in not_level_3.value.message
        l3_tokens = [c.token for c in smartid.credentials(L3) if c.status == "active"]
        forged = [
            t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB") for t in l3_tokens
        ]  # signatures broken
        with pytest.raises(Refused) as bad_credential:
            services.signer.sign("approve_procedure", badge="l3-1", tokens=forged, method="PT")
        assert bad_credential.value.field == "approver"
        with pytest.raises(Refused):  # a Level 3 in PT is not one in UT
            services.signer.sign("approve_procedure", badge="l3-1", tokens=l3_tokens, method="UT")
        assert [r.approved_by for r in std.revisions("PT-PROC-12")] == [None, None, None]  # nothing written
        signature = services.signer.sign_as(L3, "approve_procedure", method="PT")
        approved = std.approve("PT-PROC-12", "D", signature, actor="l3-login")
        assert approved.approved_by == "l3-1" and approved.signature is not None
        std.approve(
            "PT-PROC-12", "F", services.signer.sign_as(L3, "approve_procedure", method="PT"), actor="l3-login"
        )
        published = await services.standards_publisher.sweep()
        assert published == [("PT-PROC-12", "D", ("pt-1",))]  # E is a draft; F takes effect in 30 days
        assert await services.standards_publisher.sweep() == []
        held = await bucket_value(js, "pt-1.procedure.PT-PROC-12")
        assert held == {
            "id": "PT-PROC-12",
            "revision": "D",
            "method": "PT",
            "approved_by": "l3-1",
            "validated": True,
        }
        kinds = [e.kind for e in services.standards.ledger.entries()]  # type: ignore[attr-defined]
        assert kinds.count("procedure.revision.approved") == 2 and "procedure.revision.published" in kinds

        # -- InventoryHub: lots with certificates; bad input names its field ------------------------
        inv = services.inventory_publisher
        await inv.add_material(
            MaterialIn(
                id="penetrant",
                form="bulk",
                unit="L",
                shelf_life="6 months",
                in_use_checks=("fluorescence",),
                supplier="Magnaflux",
                min_stock=20,
                lead_time_days=10,
                pack_size=20,
                stations=("pt-1",),
            ),
            actor="stores",
        )
        lot = {
            "material": "penetrant",
            "supplier": "Magnaflux",
            "certificate": "C-88213",
            "received_on": today,
            "quantity": 40,
            "unit": "L",
            "stations": ("pt-1",),
        }
        with pytest.raises(ValidationError, match="expires_on"):
            LotIn(id="PEN-BAD", expires_on=today - timedelta(days=1), **lot)
        with pytest.raises(ValidationError, match="unknown unit"):
            LotIn(id="PEN-BAD", expires_on=today + timedelta(days=9), **{**lot, "unit": "bucket"})
        await inv.receive(LotIn(id="PEN-2291", expires_on=today + timedelta(days=200), **lot), actor="stores")
        await inv.receive(LotIn(id="PEN-3000", expires_on=today + timedelta(days=5), **lot), actor="stores")
        assert [x.id for x in services.inventory.lots()] == ["PEN-3000", "PEN-2291"]

        # -- the station ---------------------------------------------------------------------------
        await deploy(hub, "penetrant")
        await demo_shop.seed_people_and_equipment(js, AT, stations={"pt-1"}, lots=False)
        for record in demo_shop.work_records(AT):
            if record.station == "pt-1" and record.kind == "po-line":
                await records.publish_record(js, "pt-1", record.kind, record.record_id, record.value)
        runtime = StationRuntime(agent_for(floor, "pt-1", keys, tmp_path / "stations"))
        await runtime.start()
        client = await nats.connect(floor.floor.leaves["pt-1"].url)
        await eventually(lambda: runtime.serving() and "qa" in runtime.modules, what="pt-1 up")
        await eventually(
            lambda: (
                {"PEN-2291", "PEN-3000"} <= set(runtime.facts().lots)
                and "PT-PROC-12" in runtime.facts().procedures
            ),
            what="lots and procedure mirrored",
            deadline_s=60,
        )
        assert runtime.facts().procedures["PT-PROC-12"].revision == "D"
        assert runtime.facts().lots["PEN-3000"].form == "bulk"

        # the expired lot is withdrawn from the station's records on its day
        clock.now = AT + timedelta(days=5)
        assert await inv.sweep() == ["PEN-3000"]
        await eventually(lambda: "PEN-3000" not in runtime.facts().lots, what="PEN-3000 withdrawn at pt-1")
        withdrawn = services.inventory.lot("PEN-3000")
        assert withdrawn is not None and withdrawn.withdrawn_on == clock.now.date()
        assert "PEN-2291" in runtime.facts().lots
        clock.now = AT
        await records.withdraw_record(js, "pt-1", "lot", "PEN-2291")  # a put that never arrived
        await eventually(lambda: "PEN-2291" not in runtime.facts().lots, what="PEN-2291 gone from pt-1")
        assert await inv.sweep() == []
        await eventually(lambda: "PEN-2291" in runtime.facts().lots, what="PEN-2291 given to pt-1 again")

        # -- the job: gate allowed on the approved procedure, a reject opens an NCR ----------------
        pt = Bench(runtime, client, hub)
        await checks_done(pt)
        gate = await walk_penetrant_to_the_gate(pt)
        assert gate["allowed"], gate["reasons"]
        for minutes, step in enumerate(PENETRANT_STEPS[:-1], start=3):
            assert (await pt.job("step", at=at(minutes * 15), **step))["allowed"], step
        found = "1 linear indication, 3 mm, at the bore"
        rejected = await pt.job(
            "step", step="inspect", inspection={"result": "reject", "indications": found}, at=at(151)
        )
        assert rejected["allowed"], rejected["reasons"]
        assert not (await pt.job("release", signer="op-7", at=at(160)))["allowed"]

        # -- QACentral: the NCR arrives through the ledger; dispositioned at the hub ---------------
        def indexed() -> bool:
            services.ncr_index.index_once()
            return bool(services.qa.ncrs(open_only=True))

        await eventually(indexed, what="pt-1's NCR at the hub", deadline_s=120)
        (ncr,) = services.qa.ncrs(open_only=True)
        assert (ncr.station, ncr.job, ncr.part) == ("pt-1", "J-1", "BRK-220")
        with pytest.raises(ValidationError, match="design_authority_approval"):
            DispositionIn(disposition="use-as-is")
        with pytest.raises(ValidationError, match="marking"):
            DispositionIn(disposition="scrap", close=True, evidence="crushed")
        with pytest.raises(Refused):
            services.signer.sign_as(OP, "approve_procedure", method="PT", field="signer")
        signature = services.signer.sign_as(L3, "approve_procedure", method="PT")
        await services.decisions.decide(
            ncr.id, DispositionIn(disposition="rework"), signature, actor="l3-login"
        )
        await eventually(
            lambda: runtime.facts().jobs["J-1"].ncrs[0].disposition == "rework", what="rework applied at pt-1"
        )
        assert runtime.facts().jobs["J-1"].ncrs[0].open  # rework closes on its re-inspection
        # the re-inspection's closure is decided while pt-1 is down: applied when it is back
        await runtime.stop()
        body = DispositionIn(
            disposition="rework", close=True, evidence="re-inspected after rework: no relevant indications"
        )
        await services.decisions.decide(ncr.id, body, signature, actor="l3-login")
        runtime = StationRuntime(agent_for(floor, "pt-1", keys, tmp_path / "stations"))
        await runtime.start()
        await eventually(
            lambda: not runtime.facts().jobs["J-1"].ncrs[0].open, what="the hub's closure applied at pt-1"
        )
        pt = Bench(runtime, client, hub)
        await eventually(lambda: runtime.serving() and "guardian" in runtime.modules, what="pt-1 back")
        assert (await pt.job("badge", person="op-7", at=at(165)))["allowed"]  # resumes the job in hand
        released = await pt.job("release", signer="op-7", at=at(170))
        assert released["allowed"], released["reasons"]
        assert (await pt.job("handoff", at=at(171)))["state"] == "handed-off"

        def closed() -> bool:
            services.ncr_index.index_once()
            held_ncr = services.qa.ncr(ncr.id)
            return held_ncr is not None and not held_ncr.open

        await eventually(closed, what="the station's closing entry back at the hub", deadline_s=120)
        view = services.qa.ncr(ncr.id)
        assert (
            view is not None
            and view.record["closedBy"] == "l3-1"
            and view.decisions[0]["signed_by"] == "l3-1"
        )
        capa = services.qa.open_capa(
            CapaIn(
                id="CAPA-1",
                ncrs=(ncr.id,),
                root_cause="wash pressure drifted",
                action="pressure regulator",
                owner="l3-1",
                due_on=today + timedelta(days=30),
            ),
            actor="qm",
        )
        assert capa.status == "open"
        assert (
            services.qa.verify_capa(
                "CAPA-1", VerificationIn(effective=True, verification="30 jobs, none rejected"), actor="qm"
            ).status
            == "verified"
        )
        yields = {(y.by, y.key): (y.jobs, y.first_pass) for y in services.qa.first_pass_yield()}
        assert yields[("station", "pt-1")] == (1, 0)
        # by customer: J-1 is PO-4411's (its hand-off says so), AEROSPAR's in ClientManager's register
        clients_store.migrate(hub_db.owner_url)
        register = clients_store.ClientManager(
            hub_db.app_url, ledger=ServiceNodeLog(tmp_path / "clients-ledger", keys, node="client-manager")
        )
        try:
            register.add_client(demo_shop.CLIENT, actor="qm")
            register.add_po(demo_shop.order(AT), actor="qm")
        finally:
            register.close()
        handoffs = handoff_central.HandoffCentral.connect(hub_db.app_url)
        try:
            await eventually(lambda: handoffs.index_once() >= 0 and _handed(handoffs), what="J-1 indexed")
        finally:
            handoffs.close()
        yields = {(y.by, y.key): (y.jobs, y.first_pass) for y in services.qa.first_pass_yield()}
        assert yields[("customer", "AEROSPAR")] == (1, 0)  # one job, with an NCR: not first pass
        assert yields[("part", "BRK-220")] == (1, 0) and ("customer", "unknown") not in yields
    finally:
        if client is not None:
            await client.close()
        if runtime is not None:
            await runtime.stop()
        intake_task.cancel()
        await asyncio.gather(intake_task, return_exceptions=True)
        intake.close()
        hub_log.close()
        await services.stop()
        await vault.close()
        await connection.close()
