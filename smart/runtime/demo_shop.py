"""A small, made-up penetrant shop for trying the embedded floor: ``smart up --demo-shop``.

A fresh floor's stations know nobody: people, equipment, lots, PO lines and
procedures reach a station from the hub's ``station-records`` bucket, which
a real shop fills from SMART-ID and its ERP. So that a newcomer can walk a
job at the pt-1 kiosk the minute the floor is up, this puts DOMAIN.md's
walk-through shop there, dated from today: two Level 2 operators (one whose
near-vision exam is 13 months old, to see a refusal), a trainee and a Level
3; a calibrated UV-A meter and a TAM panel; a penetrant lot in date and one
expired; a released PO line with its traveler routing; an approved
procedure. The daily checks are left to do at the kiosk. Nothing here is a
real person; badges are ids only, as everywhere on a station.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from nats.js import JetStreamContext

from smart.contracts import facts as f
from smart.contracts.rules import Level
from smart.node import records

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
        "po-line": [
            f.PoLine(
                "PO-4411",
                "1",
                True,
                "BRK-220",
                ("SN-001", "SN-002"),
                ("penetrant",),
                "l3-1",
                {"spec": "ASTM E1417-21", "retention": "10 years after final payment"},
            )
        ],
        "procedure": [f.Procedure("PT-PROC-12", "D", "PT", approved_by="l3-1", validated=True)],
    }


async def seed(js: JetStreamContext, now: datetime) -> int:
    """Put the demo shop in the hub's ``station-records`` bucket; returns how many records."""
    count = 0
    for kind, values in penetrant_shop(now).items():
        for value in values:
            await records.publish_record(js, STATION, kind, records.fact_key(kind, value), value)
            count += 1
    return count
