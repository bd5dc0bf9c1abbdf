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
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

from nats.js import JetStreamContext

from smart.contracts import facts as f
from smart.contracts.rules import Level
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


async def seed(js: JetStreamContext, now: datetime, *, stations: Collection[str] | None = None) -> int:
    """Put the demo shop in the hub's ``station-records`` bucket; returns how many records."""
    count = 0
    for station, shop in shops(now).items():
        if stations is not None and station not in stations:
            continue
        for kind, values in shop.items():
            for value in values:
                await records.publish_record(js, station, kind, records.fact_key(kind, value), value)
                count += 1
    return count
