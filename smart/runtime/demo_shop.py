"""A small, made-up penetrant shop for trying the embedded floor: ``smart up --demo-shop``.

A fresh floor's stations know nobody: people, equipment, lots, PO lines and
procedures reach a station from the hub's ``station-records`` bucket, which
a real shop fills from SMART-ID and its ERP. So that a newcomer can walk a
job at the pt-1 kiosk the minute the floor is up, this puts DOMAIN.md's
walk-through shop there, dated from today: two Level 2 operators (one whose
near-vision exam is 13 months old, to see a refusal), a trainee and a Level
3; a calibrated UV-A meter and a TAM panel; a penetrant lot in date and one
expired. The daily checks are left to do at the kiosk. Nothing here is a
real person; badges are ids only, as everywhere on a station.

The work comes in the way a shop's does (:func:`load_work`): a client, PO-4411
line 1 for BRK-220 with its flowdown entered in ClientManager, the approved
procedures, a traveler routed pt-1 (penetrant) → sr-1 (shipping), a contract
review, and a release by HandoffCentral, which alone puts the PO line and
procedure records into pt-1's and sr-1's ``station-records``. :func:`seed`
(benches and station tests with no hub database) puts the same records
straight into the bucket, as the release computes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from nats.js import JetStreamContext

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
from smart.node import records

if TYPE_CHECKING:
    from smart.hub.work import WorkServices

DAY = timedelta(days=1)
STATION = "pt-1"
#: What to tell the person who asked for the demo: each badge and what it will show.
BADGES: Mapping[str, str] = {
    "op-7": "PT Level 2, everything current: allowed",
    "op-9": "PT Level 2, near-vision exam 13 months old: refused at the badge",
    "tr-1": "PT trainee: refused alone, allowed with supervisor op-7",
    "l3-1": "PT Level 3",
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
        _operation("sr-1", "shipping", PROCEDURES[1]),
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


async def seed_people_and_equipment(js: JetStreamContext, now: datetime) -> int:
    """Put pt-1's people, equipment and lots in the hub's ``station-records`` (SMART-ID's, the ERP's)."""
    count = 0
    for kind, values in penetrant_shop(now).items():
        for value in values:
            await records.publish_record(js, STATION, kind, records.fact_key(kind, value), value)
            count += 1
    return count


async def seed(js: JetStreamContext, now: datetime) -> int:
    """Everything pt-1 decides from, straight into the bucket (benches, station tests); how many records."""
    count = await seed_people_and_equipment(js, now)
    for record in work_records(now):
        if record.station == STATION:
            await records.publish_record(js, STATION, record.kind, record.record_id, record.value)
            count += 1
    return count
