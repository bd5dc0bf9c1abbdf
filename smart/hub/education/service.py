"""Education: the shop's courses, when they are held, who completed what, and who is due.

The courses (what each grants, for how long) are the shop's scheme data,
``smart/access/data/education.yaml``. A completion is a personnel record in
SMART-ID (``course`` kind) and SMART-ID then issues what the records make
current, so a training or safety credential is never issued here by hand:
it follows from the record, signed by SMART-ID's key, and a station verifies
it offline like any other. Sessions live in the ``education`` schema, used
by the Vault's database role. "Due" is a course credential whose last
current day falls within the horizon (or has passed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from smart.access.records import Record, RecordKind
from smart.access.schemes import Course, shop_courses
from smart.hub import migrations
from smart.hub.vault.smartid import IssuedCredential, SmartId, VaultError

SCHEMA = "education"
MIGRATIONS = Path(__file__).parent / "migrations"
GRANTS = {"sessions": "SELECT, INSERT"}


def migrate(owner_url: str, *, role: str) -> list[int]:
    return migrations.apply(owner_url, schema=SCHEMA, directory=MIGRATIONS, grants=GRANTS, app_role=role)


@dataclass(frozen=True, slots=True)
class Session:
    session_id: int
    course: str
    starts_on: date
    place: str
    seats: int


@dataclass(frozen=True, slots=True)
class Due:
    """One person's course credential that runs out within the horizon (or already has)."""

    employee_id: str
    name: str
    course: str
    title: str
    valid_until: date | None
    lapsed: bool


class Education:
    def __init__(self, url: str, smartid: SmartId, *, courses: dict[str, Course] | None = None) -> None:
        self.url = url
        self.smartid = smartid
        self.courses = shop_courses() if courses is None else courses

    def course(self, name: str) -> Course:
        found = self.courses.get(name)
        if found is None:
            raise VaultError(
                f"course {name!r} is not one of the shop's courses: {', '.join(sorted(self.courses))}"
            )
        return found

    def add_session(self, *, course: str, starts_on: date, place: str, seats: int, actor: str) -> Session:
        self.course(course)
        if seats < 1:
            raise VaultError(f"session of {course}: seats must be at least 1, got {seats}")
        if not place.strip():
            raise VaultError(f"session of {course}: the place is empty")
        with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as conn:
            row = conn.execute(
                "INSERT INTO education.sessions (course, starts_on, place, seats, added_by)"
                " VALUES (%s, %s, %s, %s, %s) RETURNING session_id",
                (course, starts_on, place.strip(), seats, actor),
            ).fetchone()
        assert row is not None
        return Session(int(row["session_id"]), course, starts_on, place.strip(), seats)

    def sessions(self, *, since: date | None = None) -> list[Session]:
        with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as conn:
            rows = conn.execute(
                "SELECT * FROM education.sessions WHERE starts_on >= %s ORDER BY starts_on, session_id",
                (since or date.min,),
            ).fetchall()
        return [Session(r["session_id"], r["course"], r["starts_on"], r["place"], r["seats"]) for r in rows]

    def complete(self, employee_id: str, *, course: str, on: date, actor: str) -> list[IssuedCredential]:
        """Record the completion in SMART-ID and issue what it makes current (the course's credential)."""
        self.course(course)
        if on > self.smartid.clock().date() + timedelta(days=1):
            raise VaultError(f"completion of {course} by {employee_id}: {on.isoformat()} is in the future")
        self.smartid.add_record(
            employee_id, Record(kind=RecordKind.COURSE, on=on, course=course), actor=actor
        )
        return self.smartid.issue_current(employee_id, actor=actor)

    def due(self, *, within_days: int = 30, today: date | None = None) -> list[Due]:
        """Every course credential running out by ``today + within_days``, soonest first."""
        today = today or self.smartid.clock().date()
        horizon = today + timedelta(days=within_days)
        found: list[Due] = []
        for person in self.smartid.people():
            for standing in self.smartid.standings(person.employee_id, today=today):
                name = standing.scope.get("course")
                if name is None or name not in self.courses:
                    continue
                if standing.valid_until is None or standing.valid_until <= horizon or not standing.current:
                    found.append(
                        Due(
                            person.employee_id,
                            person.name,
                            name,
                            self.courses[name].title,
                            standing.valid_until,
                            lapsed=not standing.current,
                        )
                    )
        return sorted(found, key=lambda d: (d.valid_until or date.min, d.employee_id))
