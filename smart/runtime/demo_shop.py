"""A small, made-up penetrant shop for trying the embedded floor: ``smart up --demo-shop``.

A fresh floor's stations know nobody: people, equipment, lots, PO lines and
procedures reach a station from the hub's ``station-records`` bucket, which
a real shop fills from SMART-ID and its ERP. So that a newcomer can walk a
job at the pt-1 kiosk the minute the floor is up, this puts DOMAIN.md's
walk-through shop there, dated from today: two Level 2 operators (one whose
near-vision exam is 13 months old, to see a refusal), a trainee and a Level
3; a calibrated UV-A meter and a TAM panel; a penetrant lot in date and one
expired; a released PO line with its traveler routing; an approved
procedure. The daily checks are left to do at the kiosk. The same PO line
reaches the shipping station sr-1, with a shipping clerk (who receives and
counts but may not sign the C of C) and the quality manager (who signs it and
may disposition NCRs); pt-1's people have no access to sr-1, so sr-1 refuses
them. Nothing here is a real person; badges are ids only, as everywhere on a
station.

``smart up --demo-shop`` registers the people in SMART-ID (:func:`enrol`:
each with personnel records, an access credential for their station and the
credentials their records make current) and publishes them as SMART-ID
always does, so the stations verify the demo's badges like any other; the
equipment, lots, PO line and procedure, which a shop's ERP and maintenance
schedule own, go into ``station-records`` directly (:func:`seed` with
``people=False``). Tests and benches that need no SMART-ID keep seeding the
people as records (:func:`penetrant_shop`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from nats.js import JetStreamContext

from smart.access.credential import Kind
from smart.access.records import Record, RecordKind
from smart.contracts import facts as f
from smart.contracts.rules import Level
from smart.hub.vault.smartid import SmartId, VaultError
from smart.node import records

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


def po_line() -> f.PoLine:
    """PO-4411 line 1: penetrant at pt-1, then shipping at sr-1, with the flowdowns receiving checks."""
    return f.PoLine(
        "PO-4411",
        "1",
        True,
        "BRK-220",
        ("SN-001", "SN-002"),
        ("penetrant", "shipping"),
        "l3-1",
        {
            "spec": "ASTM E1417-21",
            "spec-revision": "21",
            "acceptance-criteria": "no relevant indications",
            "retention": "10 years after final payment",
        },
    )


def shipping_shop(now: datetime) -> dict[str, list[Any]]:
    """sr-1's records: the shipping clerk, the quality manager and the PO line."""
    return {
        "person": [
            f.Person("ship-1"),
            f.Person("qm-1", authorities=("coc-signature", "quality-manager")),
        ],
        "po-line": [po_line()],
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
        "po-line": [po_line()],
        "procedure": [f.Procedure("PT-PROC-12", "D", "PT", approved_by="l3-1", validated=True)],
    }


def shops(now: datetime) -> dict[str, dict[str, list[Any]]]:
    """Each station's records, by station then kind, dated from ``now``."""
    return {STATION: penetrant_shop(now), SHIPPING: shipping_shop(now)}


async def seed(
    js: JetStreamContext, now: datetime, *, stations: Collection[str] | None = None, people: bool = True
) -> int:
    """Put the demo shop in the hub's ``station-records`` bucket; returns how many records.

    With ``people=False`` the people are left to SMART-ID (:func:`enrol`, then a publish).
    """
    count = 0
    for station, shop in shops(now).items():
        if stations is not None and station not in stations:
            continue
        for kind, values in shop.items():
            if kind == "person" and not people:
                continue
            for value in values:
                await records.publish_record(js, station, kind, records.fact_key(kind, value), value)
                count += 1
    return count


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
