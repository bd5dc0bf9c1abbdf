"""PeopleOps: employment records, and what a new hire still lacks to work at each station they are hired for.

The checklist is judged from SMART-ID, never kept by hand: a badge is an
active access credential for the station; the eye exam is a current
near-vision record; certification and training are the credentials the
records make current for the station's method (and its safety course). What
each station's process needs is :data:`NEEDS` (the station id's prefix names
its process, as the demo shop's and the reference contracts' stations do).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from smart.access.credential import Kind
from smart.hub import migrations
from smart.hub.vault.smartid import SmartId, VaultError

SCHEMA = "peopleops"
MIGRATIONS = Path(__file__).parent / "migrations"
GRANTS = {"employment": "SELECT, INSERT, UPDATE"}


@dataclass(frozen=True, slots=True)
class StationNeeds:
    method: str | None
    course: str | None
    eye_exam: bool


#: A station's process by its id's prefix: the method it certifies, its safety course, its eye exam.
NEEDS = {
    "pt": StationNeeds("PT", "uv-safety", True),
    "mt": StationNeeds("MT", "uv-safety", True),
    "ut": StationNeeds("UT", None, True),
    "ht": StationNeeds(None, "furnace-safety", False),
    "cp": StationNeeds(None, "chemical-handling", False),
    "sr": StationNeeds(None, None, False),
}


def migrate(owner_url: str, *, role: str) -> list[int]:
    return migrations.apply(owner_url, schema=SCHEMA, directory=MIGRATIONS, grants=GRANTS, app_role=role)


@dataclass(frozen=True, slots=True)
class Item:
    item: str  # badge, eye exam, certification, training
    done: bool
    why: str


@dataclass(frozen=True, slots=True)
class Hire:
    employee_id: str
    hired_on: date
    position: str
    stations: tuple[str, ...]


class PeopleOps:
    def __init__(self, url: str, smartid: SmartId) -> None:
        self.url = url
        self.smartid = smartid

    def hire(
        self, employee_id: str, *, hired_on: date, position: str, stations: list[str], actor: str
    ) -> None:
        self.smartid.person(employee_id)  # SMART-ID holds the person first
        unknown = [s for s in stations if s.split("-")[0] not in NEEDS]
        if unknown:
            raise VaultError(f"employment of {employee_id}: stations {unknown} have no known process")
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO peopleops.employment (employee_id, hired_on, position, stations, recorded_by)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (employee_id) DO UPDATE SET hired_on ="
                " EXCLUDED.hired_on, position = EXCLUDED.position, stations = EXCLUDED.stations",
                (employee_id, hired_on, position, stations, actor),
            )

    def hires(self) -> list[Hire]:
        """Every employment record, newest hire first (the PeopleOps page's list)."""
        with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as conn:
            rows = conn.execute(
                "SELECT employee_id, hired_on, position, stations FROM peopleops.employment"
                " ORDER BY hired_on DESC, employee_id"
            ).fetchall()
        return [Hire(r["employee_id"], r["hired_on"], r["position"], tuple(r["stations"])) for r in rows]

    def stations_of(self, employee_id: str) -> list[str]:
        with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as conn:
            row = conn.execute(
                "SELECT stations FROM peopleops.employment WHERE employee_id = %s", (employee_id,)
            ).fetchone()
        if row is None:
            raise VaultError(f"no employment record for {employee_id!r}")
        return list(row["stations"])

    def checklist(self, employee_id: str, *, today: date | None = None) -> dict[str, list[Item]]:
        """Per station of the hire: badge, eye exam, certification, training, each done or what is missing."""
        today = today or self.smartid.clock().date()
        now = self.smartid.clock()
        held = [
            c.credential
            for c in self.smartid.credentials(employee_id)
            if c.status == "active" and c.credential.expires_at > now
        ]
        standings = self.smartid.standings(employee_id, today=today)
        records = self.smartid.records(employee_id)
        found: dict[str, list[Item]] = {}
        for station in self.stations_of(employee_id):
            needs = NEEDS[station.split("-")[0]]
            badge = any(c.kind is Kind.ACCESS and c.scope.get("station") == station for c in held)
            items = [Item("badge", badge, "" if badge else f"no access credential for {station}")]
            if needs.eye_exam:
                eyes = any(r.test == "near_vision" for r in records) and not any(
                    "near" in reason and "vision" in reason
                    for s in standings
                    if s.kind is Kind.CERTIFIED
                    for reason in s.reasons
                )
                items.append(Item("eye exam", eyes, "" if eyes else "no current near-vision exam on file"))
            if needs.method is not None:
                certified = any(
                    c.kind is Kind.CERTIFIED and c.scope.get("method") == needs.method for c in held
                )
                why = "" if certified else f"no current {needs.method} certification"
                items.append(Item("certification", certified, why))
            if needs.course is not None:
                trained = any(c.kind is Kind.SAFETY and c.scope.get("course") == needs.course for c in held)
                why = "" if trained else f"course {needs.course} not completed"
                items.append(Item("training", trained, why))
            found[station] = items
        return found
