"""A small, made-up penetrant shop for trying the embedded floor: ``smart up --demo-shop``.

A fresh floor's stations know nobody: people, equipment, lots, PO lines and
procedures reach a station from the hub's ``station-records`` bucket, which
a real shop fills from SMART-ID and its ERP. So that a newcomer can walk a
job at the pt-1 kiosk the minute the floor is up, this puts DOMAIN.md's
walk-through shop there, dated from today: two Level 2 operators (one whose
near-vision exam is 13 months old, to see a refusal), a trainee and a Level
3; a calibrated UV-A meter and a TAM panel; a penetrant lot in date and one
expired; PO-4411 line 1 for BRK-220 routed pt-1 (penetrant) → sr-1 (shipping).
The daily checks are left to do at the kiosk. The shipping station sr-1 has a
shipping clerk (who receives and counts but may not sign the C of C) and the
quality manager (who signs it and may disposition NCRs); pt-1's people have no
access to sr-1, so sr-1 refuses them. Nothing here is a real person; badges are
ids only, as everywhere on a station.

``smart up --demo-shop`` registers the people in SMART-ID (:func:`enrol`: each
with personnel records, an access credential for their station and the
credentials their records make current) and publishes them as SMART-ID always
does, so the stations verify the demo's badges like any other. The work comes
in the way a shop's does (:func:`load_work`): a client, the PO line with its
flowdown entered in ClientManager, the approved procedures, a traveler routed
pt-1 → sr-1, a contract review, and a release by HandoffCentral, which alone
puts the PO line and procedure records into pt-1's and sr-1's
``station-records``. The equipment is registered and calibrated in
MaintenanceHub (:func:`load_equipment`: the UV-A meter's certificate, the
TAM panel's finish), which alone publishes it. The penetrant procedure is
signed in StandardsCentral by the demo Level 3's own credential and the good
penetrant lot received in InventoryHub (:func:`load_means`; InventoryHub
refuses the expired one, so under ``smart up`` only benches and station tests
hold PEN-1990); :func:`seed_people_and_equipment` then runs with
``people=False, equipment=False, lots=False``. Benches and station
tests with no hub database use :func:`seed`, which puts the same records
straight into the bucket, the work as the release computes it, and the people
as records.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from nats.js import JetStreamContext

from smart.access.credential import Kind
from smart.access.records import Record, RecordKind
from smart.contracts import facts as f
from smart.contracts.rules import Level
from smart.hub.clients.models import (
    ClientIn,
    FlowdownIn,
    FlowdownView,
    LineIn,
    LineView,
    Outcome,
    PurchaseOrderIn,
    ReviewIn,
    ReviewView,
)
from smart.hub.release import store as release
from smart.hub.travelers.models import (
    OperationIn,
    OperationView,
    ProcedureIn,
    ProcedureView,
    TravelerIn,
    TravelerView,
)
from smart.hub.vault.smartid import SmartId, VaultError
from smart.node import records

if TYPE_CHECKING:
    from smart.hub.maintenance.store import MaintenanceHub
    from smart.hub.means import MeansServices
    from smart.hub.work import WorkServices

DAY = timedelta(days=1)
STATION = "pt-1"
#: The shipping station the demo's PO line also reaches.
SHIPPING = "sr-1"
#: What to tell the person who asked for the demo: each badge and what it will show.
BADGES: Mapping[str, str] = {
    "op-7": "PT Level 2 at pt-1, everything current: allowed (no access to sr-1)",
    "op-9": "PT Level 2 at pt-1, near-vision exam 13 months old: refused at the badge",
    "tr-1": "PT trainee at pt-1: refused alone, allowed with supervisor op-7",
    "l3-1": "PT Level 3 at pt-1: dispositions NCRs, takes over or abandons jobs",
    "ship-1": "shipping clerk at sr-1: receives and counts; may not sign the C of C",
    "qm-1": "quality manager at sr-1: signs the C of C, dispositions NCRs",
}
#: Who is at which station (the badges each station's records hold).
PEOPLE_AT: Mapping[str, tuple[str, ...]] = {
    STATION: ("op-7", "op-9", "tr-1", "l3-1"),
    SHIPPING: ("ship-1", "qm-1"),
}
TRAVELER = {"job": "J-1", "po": "PO-4411", "line": "1", "part": "BRK-220", "serial": "SN-002"}


def _person(person_id: str, level: Level, now: datetime, *, vision_days: int = 120) -> f.Person:
    certification = f.Certification(
        "PT", level, issued=now - 3 * 365 * DAY, expires=now + 2 * 365 * DAY, practical_samples=3
    )
    return f.Person(
        id=person_id,
        certifications=(certification,),
        exams=(
            f.Exam("near-vision", now - vision_days * DAY, "jaeger-1-12in"),
            f.Exam("color-contrast", now - 400 * DAY),
        ),
        last_performed={"PT": now - 7 * DAY},
    )


def shipping_shop(now: datetime) -> dict[str, list[Any]]:
    """sr-1's own records: the shipping clerk and the quality manager (the PO line comes by release)."""
    return {
        "person": [
            f.Person("ship-1"),
            f.Person("qm-1", authorities=("coc-signature", "quality-manager")),
        ],
    }


def penetrant_shop(now: datetime) -> dict[str, list[Any]]:
    """pt-1's records, by kind, dated from ``now``."""
    return {
        "person": [
            _person("op-7", Level.LEVEL_2, now),
            _person("op-9", Level.LEVEL_2, now, vision_days=395),
            _person("tr-1", Level.TRAINEE, now),
            _person("l3-1", Level.LEVEL_3, now),
        ],
        "equipment": [
            f.EquipmentRecord("UV-METER-1", "light-meter", calibration=f.Calibration(now - 60 * DAY)),
            f.EquipmentRecord("TAM-146040", "tam-panel", attributes={"finish": "grit-blasted"}),
        ],
        "lot": [
            f.Lot("PEN-2291", "penetrant", now + 200 * DAY),
            f.Lot("PEN-1990", "penetrant", now - 10 * DAY),
        ],
    }


# -- the work, entered through the hub's services ------------------------------------------------

#: Who the demo's work is entered, reviewed and released by (on the services' ledger nodes).
DEMO_ACTOR = "demo-shop"
PO, LINE = TRAVELER["po"], TRAVELER["line"]
CLIENT = ClientIn(
    code="AEROSPAR",
    name="Aerospar Structures (made up)",
    retention="10 years after final payment",
    nadcap_required=True,
    quality_clauses=("Q-7 Nadcap-accredited special processes", "Q-12 C of C with every shipment"),
)
FLOWDOWN = FlowdownIn.model_validate(
    {
        "spec": "ASTM E1417-21",
        "spec_revision": "21",
        "class": "Type-I-Method-A-Level-3",
        "acceptance_criteria": "no relevant linear indications",
        "nadcap_required": True,
    }
)
PROCEDURES = (
    ProcedureIn(id="PT-PROC-12", revision="D", method="PT", approved_by="l3-1", validated=True),
    ProcedureIn(id="SR-PROC-2", revision="A", method="shipping", approved_by="l3-1", validated=True),
)


def _operation(station: str, process: str, procedure: ProcedureIn) -> OperationIn:
    return OperationIn.model_validate(
        {
            "station": station,
            "process": process,
            "procedure": procedure.id,
            "procedure_revision": procedure.revision,
            "spec": FLOWDOWN.spec,
            "class": FLOWDOWN.class_,
            "acceptance_criteria": FLOWDOWN.acceptance_criteria,
        }
    )


ROUTE = TravelerIn(
    operations=(
        _operation(STATION, "penetrant", PROCEDURES[0]),
        _operation(SHIPPING, "shipping", PROCEDURES[1]),
    ),
    reason="first issue",
)


def order(now: datetime) -> PurchaseOrderIn:
    line = LineIn(
        line=LINE,
        part=TRAVELER["part"],
        part_revision="C",
        quantity=2,
        serials=("SN-001", TRAVELER["serial"]),
        unit_price=Decimal("42.50"),
        due_date=(now + 14 * DAY).date(),
        flowdowns=(FLOWDOWN,),
    )
    return PurchaseOrderIn(po=PO, client=CLIENT.code, received_on=now.date(), lines=(line,))


async def load_work(work: WorkServices, now: datetime) -> release.Released | None:
    """Enter, review, route and release the demo PO through the services; ``None`` if it already was."""
    from starlette.concurrency import run_in_threadpool

    held = await run_in_threadpool(work.clients.line, PO, LINE)
    if held is not None and held.released_version == held.version:
        return None  # a restarted demo floor keeps what it released
    if held is None:
        if await run_in_threadpool(work.clients.client, CLIENT.code) is None:
            await run_in_threadpool(work.clients.add_client, CLIENT, actor=DEMO_ACTOR)
        await run_in_threadpool(work.clients.add_po, order(now), actor=DEMO_ACTOR)
    for procedure in PROCEDURES:
        current = await run_in_threadpool(work.travelers.procedure, procedure.id)
        if current is None or current.revision != procedure.revision:
            await run_in_threadpool(work.travelers.approve_procedure, procedure, actor="l3-1")
    if await run_in_threadpool(work.travelers.latest, PO, LINE) is None:
        await run_in_threadpool(work.travelers.save, PO, LINE, ROUTE, actor="l3-1")
    line = await run_in_threadpool(work.clients.line, PO, LINE)
    if line is not None and not line.reviewed:
        review = ReviewIn(outcome=Outcome.ACCEPTED, notes="demo: capability, clauses and flowdowns checked")
        await run_in_threadpool(work.clients.review, PO, LINE, review, actor=DEMO_ACTOR)
    return await work.release.release(PO, LINE, actor=DEMO_ACTOR)


def work_records(now: datetime) -> list[release.StationRecord]:
    """The records the demo PO's release puts at pt-1 and sr-1, computed as the release computes them."""
    entered = order(now).lines[0]
    line = LineView(
        po=PO,
        line=LINE,
        client=CLIENT.code,
        part=entered.part,
        part_revision=entered.part_revision,
        quantity=entered.quantity,
        unit=entered.unit,
        serials=entered.serials,
        lot=None,
        unit_price=entered.unit_price,
        due_date=entered.due_date,
        version=1,
        reviewed=True,
        released_version=1,
        released_at=now,
        flowdowns=(
            FlowdownView.model_validate(
                {**FLOWDOWN.model_dump(by_alias=True), "retention": FLOWDOWN.retention or CLIENT.retention}
            ),
        ),
        reviews=(
            ReviewView(
                line_version=1, reviewer=DEMO_ACTOR, reviewed_at=now, outcome=Outcome.ACCEPTED, notes=""
            ),
        ),
    )
    traveler = TravelerView(
        po=PO,
        line=LINE,
        revision=1,
        status="released",
        reason=ROUTE.reason,
        template=None,
        operations=tuple(
            OperationView.model_validate({"seq": n, **op.model_dump(by_alias=True)})
            for n, op in enumerate(ROUTE.operations, start=1)
        ),
        created_by="l3-1",
        created_at=now,
        released_by=DEMO_ACTOR,
        released_at=now,
    )
    procedures = {p.id: ProcedureView(**p.model_dump(), approved_at=now, current=True) for p in PROCEDURES}
    return release.station_records(line, traveler, procedures)


def shops(now: datetime) -> dict[str, dict[str, list[Any]]]:
    """Each station's own records (people, equipment, lots), by station then kind, dated from ``now``."""
    return {STATION: penetrant_shop(now), SHIPPING: shipping_shop(now)}


async def seed_people_and_equipment(
    js: JetStreamContext,
    now: datetime,
    *,
    stations: Collection[str] | None = None,
    people: bool = True,
    equipment: bool = True,
    lots: bool = True,
) -> int:
    """Put the stations' people, equipment and lots in the hub's ``station-records``; how many records.

    With ``people=False`` the people are left to SMART-ID (:func:`enrol`, then a publish); with
    ``equipment=False`` the equipment to MaintenanceHub (:func:`load_equipment`); with
    ``lots=False`` the lots are left to InventoryHub (:func:`load_means`).
    """
    count = 0
    for station, shop in shops(now).items():
        if stations is not None and station not in stations:
            continue
        for kind, values in shop.items():
            if (
                (kind == "person" and not people)
                or (kind == "equipment" and not equipment)
                or (kind == "lot" and not lots)
            ):
                continue
            for value in values:
                await records.publish_record(js, station, kind, records.fact_key(kind, value), value)
                count += 1
    return count


async def seed(
    js: JetStreamContext, now: datetime, *, stations: Collection[str] | None = None, people: bool = True
) -> int:
    """Everything the stations decide from, straight into the bucket (benches, station tests with no
    hub database): their own records and the demo PO's release records; how many records."""
    count = await seed_people_and_equipment(js, now, stations=stations, people=people)
    for record in work_records(now):
        if stations is None or record.station in stations:
            await records.publish_record(js, record.station, record.kind, record.record_id, record.value)
            count += 1
    return count


async def load_equipment(maintenance: MaintenanceHub, now: datetime) -> int:
    """Register and calibrate pt-1's equipment in MaintenanceHub, which publishes it; how many were new.

    The same equipment :func:`penetrant_shop` lists (a restarted demo floor adds nothing): the UV-A
    meter with a traceable in-tolerance certificate 60 days old (due by the contract's 6 months), the
    TAM panel with its finish.
    """
    from starlette.concurrency import run_in_threadpool

    from smart.hub.maintenance.models import CalibrationIn, EquipmentIn

    added = 0
    for held in penetrant_shop(now)["equipment"]:
        if await run_in_threadpool(maintenance.equipment, held.id) is not None:
            continue
        item = EquipmentIn(
            asset_id=held.id,
            kind=held.kind,
            station=STATION,
            serial=f"DEMO-{held.id}",
            attributes=dict(held.attributes),
        )
        await run_in_threadpool(maintenance.register, item, actor=DEMO_ACTOR)
        if held.calibration is not None:
            certificate = CalibrationIn(
                calibrated_at=held.calibration.at,
                lab="Demo Metrology Lab (made up)",
                certificate_number=f"DEMO-CAL-{held.id}",
                traceability="NIST-traceable reference meter (made up)",
                as_found="within ±5 %",
                as_left="within ±2 %",
                in_tolerance=True,
            )
            await run_in_threadpool(maintenance.record_calibration, held.id, certificate, actor=DEMO_ACTOR)
        added += 1
    await maintenance.publish_pending()
    return added


def _records(level: str | None, today: date, *, vision_days: int = 120) -> list[Record]:
    """A PT inspector's personnel records at ``level`` (exams, certification, eyes, work); None: none."""
    if level is None:
        return []
    certified = today - timedelta(days=3 * 365)
    exams = certified - timedelta(days=30)
    return [
        Record(RecordKind.EXAM, exams, method="PT", exam="general", score=84),
        Record(RecordKind.EXAM, exams, method="PT", exam="specific", score=80),
        Record(RecordKind.EXAM, exams, method="PT", exam="practical", score=91, samples=3),
        Record(RecordKind.CERTIFICATION, certified, method="PT", level=level, scheme="NAS410"),
        Record(
            RecordKind.EYE_EXAM,
            today - timedelta(days=vision_days),
            test="near_vision",
            test_type="jaeger-1-at-12in",
        ),
        Record(RecordKind.EYE_EXAM, today - timedelta(days=400), test="colour_vision", test_type="ishihara"),
        Record(RecordKind.PERFORMANCE, today - timedelta(days=7), method="PT"),
    ]


#: The demo's people as SMART-ID holds them: badge → (employee id, made-up name, roles, level, vision days).
ENROLLED: Mapping[str, tuple[str, str, tuple[str, ...], str | None, int]] = {
    "op-7": ("D-007", "Demo Operator Seven", ("operator",), "2", 120),
    "op-9": ("D-009", "Demo Operator Nine", ("operator",), "2", 395),
    "tr-1": ("D-101", "Demo Trainee", ("operator",), "trainee", 120),
    "l3-1": ("D-301", "Demo Level Three", ("level3",), "3", 120),
    "ship-1": ("D-501", "Demo Shipping Clerk", ("operator",), None, 0),
    "qm-1": ("D-901", "Demo Quality Manager", ("quality_manager",), None, 0),
}


def enrol(smartid: SmartId, now: datetime, *, actor: str = "demo-shop") -> int:
    """Register the demo's people in SMART-ID with records, station access and current credentials.

    A person SMART-ID already holds (a floor started again) is left as it is; returns how many were new.
    """
    station_of = {badge: station for station, badges in PEOPLE_AT.items() for badge in badges}
    added = 0
    for badge, (employee, name, roles, level, vision_days) in ENROLLED.items():
        try:
            smartid.add_person(employee_id=employee, name=name, badge_id=badge, roles=roles, actor=actor)
        except VaultError:
            continue
        for record in _records(level, now.date(), vision_days=vision_days):
            smartid.add_record(employee, record, actor=actor)
        smartid.issue(employee, kind=Kind.ACCESS, scope={"station": station_of[badge]}, actor=actor)
        smartid.issue_current(employee, actor=actor)
        added += 1
    return added


# -- the means (procedures, lots), through StandardsCentral and InventoryHub ----------------------

#: The Level 3 whose SMART-ID credential signs the demo's penetrant procedure.
PROCEDURE_SIGNER = "D-301"


async def load_means(means: MeansServices, now: datetime) -> list[str]:
    """The penetrant procedure signed by the demo's Level 3 and the penetrant lot received; what was new.

    Run after :func:`enrol` (the signature is the Level 3's own verified credential) and before
    :func:`load_work` (whose route names the revision StandardsCentral put in force).
    """
    from starlette.concurrency import run_in_threadpool

    from smart.hub.inventory.models import LotIn, MaterialIn
    from smart.hub.standards.models import ProcedureIn as StandardProcedure
    from smart.hub.standards.models import RevisionIn
    from smart.hub.standards.store import APPROVE

    done: list[str] = []
    std, inventory = means.standards, means.inventory
    pt = PROCEDURES[0]
    if await run_in_threadpool(std.procedure, pt.id) is None:
        procedure = StandardProcedure(
            id=pt.id, method=pt.method, title="Fluorescent penetrant, Type I Method A", stations=(STATION,)
        )
        await run_in_threadpool(std.add_procedure, procedure, actor=DEMO_ACTOR)
        revision = RevisionIn(
            revision=pt.revision,
            effective_on=now.date(),
            validated=True,
            spec=FLOWDOWN.spec,
            spec_revision="21",
        )
        await run_in_threadpool(std.draft, pt.id, revision, actor=DEMO_ACTOR)
        signature = await run_in_threadpool(means.signer.sign_as, PROCEDURE_SIGNER, APPROVE, method=pt.method)
        await run_in_threadpool(std.approve, pt.id, pt.revision, signature, actor=DEMO_ACTOR)
        done.append(f"procedure {pt.id} rev {pt.revision}")
    await means.standards_publisher.sweep()
    if await run_in_threadpool(inventory.material, "penetrant") is None:
        material = MaterialIn(
            id="penetrant",
            form="bulk",
            unit="L",
            shelf_life="6 months",
            in_use_checks=("fluorescence", "water-content"),
            supplier="Penetrant Supplies (made up)",
            min_stock=20,
            lead_time_days=10,
            pack_size=20,
            stations=(STATION,),
        )
        await means.inventory_publisher.add_material(material, actor=DEMO_ACTOR)
    if await run_in_threadpool(inventory.lot, "PEN-2291") is None:
        lot = LotIn(
            id="PEN-2291",
            material="penetrant",
            supplier="Penetrant Supplies (made up)",
            certificate="CERT-2291",
            received_on=now.date(),
            expires_on=(now + 200 * DAY).date(),
            quantity=40,
            unit="L",
            stations=(STATION,),
        )
        await means.inventory_publisher.receive(lot, actor=DEMO_ACTOR)
        done.append("lot PEN-2291")
    return done
