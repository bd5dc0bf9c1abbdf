"""The training matrix import: people, certifications, exams and eye exams from the shop's spreadsheet.

Most shops keep who is certified in what in a spreadsheet; this takes it (CSV,
or XLSX through openpyxl) into SMART-ID, where personnel records live. One
row per record: ``employee_id, name, badge, roles, station, record, on`` and,
as the record needs, ``scheme, method, level, exam, score, samples, test,
test_type``. ``record`` is ``certification``, ``exam``, ``eye_exam`` or
``performance``; a method and a level must be the scheme's (NAS410 when
left out); ``station`` gives the person an access credential there; roles
are separated by ``;``. A person on several rows must have the same name
and badge on each, and the same as SMART-ID holds.

:func:`check` reads the whole file and lists every problem with its row (as
the spreadsheet numbers it, header = 1) and column; it is the dry run.
:func:`run` writes only a file with no problem: the people, their records,
the access credentials, then every credential the records make current,
each on SMART-ID's ledger node as always.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from smart.access.credential import Kind
from smart.access.records import Record, RecordKind
from smart.access.roles import Role
from smart.access.schemes import shop_schemes
from smart.hub import spreadsheets
from smart.hub.clients.importing import Format
from smart.hub.clients.models import Problem
from smart.hub.vault.smartid import SmartId, VaultError

COLUMNS = (
    "employee_id",
    "name",
    "badge",
    "roles",
    "station",
    "record",
    "on",
    "scheme",
    "method",
    "level",
    "exam",
    "score",
    "samples",
    "test",
    "test_type",
)
REQUIRED = ("employee_id", "name", "badge", "record", "on")
RECORDS = ("certification", "exam", "eye_exam", "performance")
EXAMS = ("general", "specific", "practical")
EYE_TESTS = ("near_vision", "colour_vision")


@dataclass
class Person:
    employee_id: str
    name: str
    badge: str
    roles: tuple[str, ...]
    stations: set[str] = field(default_factory=set)
    records: list[Record] = field(default_factory=list)
    new: bool = True


@dataclass(frozen=True, slots=True)
class Checked:
    rows: int
    problems: tuple[Problem, ...]
    people: tuple[Person, ...] = ()
    digest: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "ok": self.ok,
            "people": len(self.people),
            "new": sum(1 for p in self.people if p.new),
            "records": sum(len(p.records) for p in self.people),
            "problems": [p.model_dump() for p in self.problems],
            "sha256": self.digest,
            "changes": [
                {
                    "employee_id": p.employee_id,
                    "name": p.name,
                    "new": p.new,
                    "stations": sorted(p.stations),
                    "records": [r.describe() for r in p.records],
                }
                for p in self.people
            ],
        }


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):  # a date cell of a spreadsheet
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value).strip())


def check(raw: bytes, fmt: Format, *, smartid: SmartId, stations: Collection[str], file: str = "") -> Checked:
    """Every problem of the file by row and column; the people and records it would write if none."""
    digest = hashlib.sha256(raw).hexdigest()
    try:
        cells = iter(spreadsheets.rows(raw, fmt=fmt.value, file=file))  # the hub imports' one reader
        header_cells = next(cells)
    except StopIteration:
        named = file or "the file"
        return Checked(0, (Problem(field="header", message=f"{named} is empty", row=1),), digest=digest)
    except spreadsheets.Unreadable as err:
        return Checked(0, (Problem(field="file", message=str(err)),), digest=digest)
    header = [str(c).strip().lower() if c is not None else "" for c in header_cells]
    problems: list[Problem] = [
        Problem(field=name, message=f"column {name} is missing", row=1, column=name)
        for name in REQUIRED
        if name not in header
    ]
    problems += [
        Problem(
            field=name, message=f"unknown column {name!r}; expected {', '.join(COLUMNS)}", row=1, column=name
        )
        for name in header
        if name and name not in COLUMNS
    ]
    if problems:
        return Checked(0, tuple(problems), digest=digest)
    schemes = shop_schemes()
    held = {p.employee_id: p for p in smartid.people()}
    held_badges = {p.badge_id: p.employee_id for p in smartid.people()}
    people: dict[str, Person] = {}
    rows = 0
    for number, values in enumerate(cells, start=2):
        row = {name: _text(values[i]) if i < len(values) else None for i, name in enumerate(header) if name}
        if all(v is None for v in row.values()):
            continue
        rows += 1

        def bad(column: str, message: str) -> None:
            problems.append(Problem(field=column, message=message, row=number, column=column))  # noqa: B023

        missing = [c for c in REQUIRED if row.get(c) is None]
        for column in missing:
            bad(column, f"{column} is required")
        if missing:
            continue
        employee, name, badge = row["employee_id"], row["name"], row["badge"]
        assert employee is not None and name is not None and badge is not None
        roles = tuple(r.strip() for r in (row.get("roles") or "").split(";") if r.strip())
        for role in roles:
            if role not in {r.value for r in Role}:
                bad("roles", f"unknown role {role!r}; expected one of {', '.join(r.value for r in Role)}")
        person = people.get(employee)
        if person is None:
            known = held.get(employee)
            if known is not None and (known.name != name or known.badge_id != badge):
                bad("badge", f"SMART-ID holds {employee} as {known.name} with badge {known.badge_id}")
            elif known is None and badge in held_badges:
                bad("badge", f"badge {badge} belongs to {held_badges[badge]} in SMART-ID")
            person = people[employee] = Person(employee, name, badge, roles, new=known is None)
        elif person.name != name or person.badge != badge:
            bad("badge", f"{employee} is {person.name} with badge {person.badge} on an earlier row")
        station = row.get("station")
        if station is not None:
            if station not in stations:
                bad("station", f"unknown station {station!r}; the hub knows {', '.join(sorted(stations))}")
            else:
                person.stations.add(station)
        try:
            on = _day(row["on"])
        except ValueError:
            bad("on", f"{row['on']!r} is not a date (YYYY-MM-DD)")
            continue
        kind = row["record"]
        if kind not in RECORDS:
            bad("record", f"unknown record {kind!r}; expected one of {', '.join(RECORDS)}")
            continue
        scheme_name = row.get("scheme") or "NAS410"
        scheme = schemes.get(scheme_name)
        if scheme is None:
            bad("scheme", f"unknown scheme {scheme_name!r}; expected one of {', '.join(schemes)}")
            continue
        method = row.get("method")
        if kind in ("certification", "exam", "performance"):
            if method is None:
                bad("method", f"a {kind} record names its method")
                continue
            if method not in scheme.methods:
                bad(
                    "method",
                    f"unknown method {method!r} in {scheme_name}; "
                    f"expected one of {', '.join(scheme.methods)}",
                )
                continue
        level = row.get("level")
        if kind == "certification":
            codes = [lv.code for lv in scheme.levels]
            if level not in codes:
                bad("level", f"unknown level {level!r} in {scheme_name}; expected one of {', '.join(codes)}")
                continue
            person.records.append(
                Record(RecordKind.CERTIFICATION, on, method=method, level=level, scheme=scheme_name)
            )
        elif kind == "exam":
            exam = row.get("exam")
            if exam not in EXAMS:
                bad("exam", f"unknown exam {exam!r}; expected one of {', '.join(EXAMS)}")
                continue
            try:
                score_text, samples_text = row.get("score"), row.get("samples")
                score = float(score_text) if score_text is not None else None
                samples = int(samples_text) if samples_text is not None else None
            except ValueError:
                bad("score", "score and samples are numbers")
                continue
            if score is None:
                bad("score", "an exam record has its score")
                continue
            person.records.append(
                Record(RecordKind.EXAM, on, method=method, exam=exam, score=score, samples=samples)
            )
        elif kind == "eye_exam":
            test = row.get("test")
            if test not in EYE_TESTS:
                bad("test", f"unknown eye test {test!r}; expected one of {', '.join(EYE_TESTS)}")
                continue
            if row.get("test_type") is None:
                bad("test_type", "an eye exam says which test was used (e.g. jaeger-1-at-12in)")
                continue
            person.records.append(Record(RecordKind.EYE_EXAM, on, test=test, test_type=row["test_type"]))
        else:
            person.records.append(Record(RecordKind.PERFORMANCE, on, method=method))
    if problems:
        return Checked(rows, tuple(problems), digest=digest)
    return Checked(rows, (), tuple(people.values()), digest)


def run(checked: Checked, *, smartid: SmartId, actor: str) -> Mapping[str, int]:
    """Write a checked file into SMART-ID (only one with no problem); what was written."""
    if not checked.ok:
        raise VaultError(f"the training matrix has {len(checked.problems)} problems; nothing was written")
    counts = {"people": 0, "records": 0, "credentials": 0}
    for person in checked.people:
        if person.new:
            smartid.add_person(
                employee_id=person.employee_id,
                name=person.name,
                badge_id=person.badge,
                roles=person.roles,
                actor=actor,
            )
            counts["people"] += 1
        for record in person.records:
            smartid.add_record(person.employee_id, record, actor=actor)
            counts["records"] += 1
        held = {
            c.credential.scope.get("station")
            for c in smartid.credentials(person.employee_id)
            if c.status == "active" and c.credential.kind is Kind.ACCESS
        }
        for station in sorted(person.stations - held):
            smartid.issue(person.employee_id, kind=Kind.ACCESS, scope={"station": station}, actor=actor)
            counts["credentials"] += 1
        counts["credentials"] += len(smartid.issue_current(person.employee_id, actor=actor))
    return counts
