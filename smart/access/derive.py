"""A person's current credentials, derived from their records by the schemes' rules.

The hub asks this before it issues or renews anything: which methods is this
person certified in today, at which level, until when, and if not, why not.
An expired eye exam suspends the certification it backs; a year without
performing a method lapses that method only. Everything is judged as of a
given day, using only records dated on or before it, so the same call
answers an auditor's question about the past.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import MappingProxyType

from smart import intervals
from smart.access.credential import Kind
from smart.access.records import Record, RecordKind
from smart.access.schemes import Course, CurrencyRule, Scheme, shop_courses, shop_schemes

DEFAULT_SCHEME = "NAS410"


class Status(enum.StrEnum):
    CURRENT = "current"
    LAPSED = "lapsed"  # method not performed within the scheme's period
    SUSPENDED = "suspended"  # a backing exam (e.g. near vision) is out of date
    EXPIRED = "expired"  # recertification due
    NOT_CERTIFIED = "not_certified"  # the certification record is not backed by passing exams


_SEVERITY = (Status.NOT_CERTIFIED, Status.EXPIRED, Status.SUSPENDED, Status.LAPSED)


@dataclass(frozen=True, slots=True)
class Standing:
    """What one credential of a person would be today: its scope, whether current, until when, why.

    ``valid_until`` is the last day it is current, inclusive (:func:`smart.intervals.due` of what
    falls due first); ``None`` when nothing bounds it.
    """

    kind: Kind
    scope: Mapping[str, str]
    status: Status
    valid_from: date
    valid_until: date | None
    reasons: tuple[str, ...] = ()
    basis: tuple[str, ...] = field(default=())

    @property
    def current(self) -> bool:
        return self.status is Status.CURRENT

    def describe(self) -> str:
        scope = ", ".join(f"{k}: {v}" for k, v in self.scope.items())
        return f"{self.kind.value} ({scope})"


def _matching(records: Iterable[Record], rule: CurrencyRule, method: str | None) -> list[Record]:
    return [
        r
        for r in records
        if r.kind.value in rule.records
        and (not rule.same_method or r.method == method)
        and (rule.test is None or r.test == rule.test)
    ]


def _certified(scheme: Scheme, certification: Record, records: list[Record], today: date) -> Standing:
    method = certification.method or ""
    level = certification.level or ""
    reasons: list[str] = []
    statuses: list[Status] = []
    basis = [certification.describe()]
    window_start = scheme.certification.exams_within
    for exam_rule in scheme.certification.exams:
        if level not in exam_rule.levels:
            continue
        samples = exam_rule.min_samples.get(level, 0)
        passing = [
            r
            for r in records
            if r.kind is RecordKind.EXAM
            and r.method == method
            and r.exam == exam_rule.exam
            and r.score is not None
            and r.score >= exam_rule.min_score
            and (r.samples or 0) >= samples
            and r.on <= certification.on <= intervals.due(r.on, window_start)
        ]
        if passing:
            basis.append(max(passing, key=lambda r: r.on).describe())
        else:
            need = f"score ≥ {exam_rule.min_score:g}" + (f", ≥ {samples} samples" if samples else "")
            reasons.append(
                f"certification of {certification.on.isoformat()} in {method} level {level} rests on "
                f"no passing {exam_rule.exam} exam ({need}) taken within {window_start} before it"
            )
            statuses.append(Status.NOT_CERTIFIED)
    valid_until: date | None = None
    for rule in scheme.currency:
        found = [r for r in _matching(records, rule, method) if r.kind is not RecordKind.CERTIFICATION]
        if RecordKind.CERTIFICATION.value in rule.records:
            found.append(certification)
        accepted = [r for r in found if not rule.accepted_tests or r.test_type in rule.accepted_tests]
        if not accepted:
            if found:
                latest_bad = max(found, key=lambda r: r.on)
                reasons.append(
                    f"{rule.name} of {latest_bad.on.isoformat()} does not name an accepted test "
                    f"({', '.join(rule.accepted_tests)}); it was {latest_bad.test_type or 'not recorded'}"
                )
            else:
                reasons.append(f"no {rule.name} on file")
            statuses.append(Status(rule.ends_as))
            never = certification.on - timedelta(days=1)  # an empty span: current on no day
            valid_until = never if valid_until is None else min(valid_until, never)
            continue
        latest = max(accepted, key=lambda r: r.on)
        due = intervals.due(latest.on, rule.every)
        basis.append(f"{rule.name}: {latest.describe()}, due by {due.isoformat()}")
        valid_until = due if valid_until is None else min(valid_until, due)
        if today > due:
            reasons.append(
                f"{rule.name} of {latest.on.isoformat()} was due again by {due.isoformat()} "
                f"(every {rule.every}, {scheme.scheme})"
            )
            statuses.append(Status(rule.ends_as))
    status = next((s for s in _SEVERITY if s in statuses), Status.CURRENT)
    scope = {"method": method, "level": level, "scheme": scheme.scheme}
    if certification.technique:
        scope["technique"] = certification.technique
    return Standing(
        kind=Kind.CERTIFIED,
        scope=MappingProxyType(scope),
        status=status,
        valid_from=certification.on,
        valid_until=valid_until,
        reasons=tuple(reasons),
        basis=tuple(basis),
    )


def _course(course: Course, completed: Record, today: date) -> Standing:
    until = intervals.due(completed.on, course.valid_for)
    current = today <= until
    return Standing(
        kind=course.kind,
        scope=MappingProxyType({"course": course.course, **course.scope}),
        status=Status.CURRENT if current else Status.EXPIRED,
        valid_from=completed.on,
        valid_until=until,
        reasons=()
        if current
        else (
            f"course {course.course} of {completed.on.isoformat()} was current through {until.isoformat()}",
        ),
        basis=(completed.describe(),),
    )


def standings(
    records: Iterable[Record],
    *,
    today: date,
    schemes: Mapping[str, Scheme] | None = None,
    courses: Mapping[str, Course] | None = None,
) -> tuple[Standing, ...]:
    """Every certified, training and safety credential ``records`` support or once supported, as of ``today``.

    Only records dated on or before ``today`` count. Certification: the latest
    certification record per scheme and method decides the level; exams back it;
    the currency rules bound it. Courses: the latest completion of each course.
    """
    schemes = shop_schemes() if schemes is None else schemes
    courses = shop_courses() if courses is None else courses
    known = sorted((r for r in records if r.on <= today), key=lambda r: r.on)
    latest_certification: dict[tuple[str, str], Record] = {}
    latest_course: dict[str, Record] = {}
    for record in known:
        if record.kind is RecordKind.CERTIFICATION:
            if not record.method or not record.level:
                raise ValueError(f"{record.describe()}: a certification record needs a method and a level")
            latest_certification[(record.scheme or DEFAULT_SCHEME, record.method)] = record
        elif record.kind is RecordKind.COURSE and record.course:
            latest_course[record.course] = record
    found: list[Standing] = []
    for (scheme_name, _method), certification in sorted(latest_certification.items()):
        scheme = schemes.get(scheme_name)
        if scheme is None:
            raise ValueError(
                f"{certification.describe()}: unknown scheme {scheme_name!r}; known: {sorted(schemes)}"
            )
        scheme.rank(certification.level or "")
        found.append(_certified(scheme, certification, known, today))
    for name, completed in sorted(latest_course.items()):
        course = courses.get(name)
        if course is None:
            raise ValueError(f"{completed.describe()}: unknown course {name!r}; known: {sorted(courses)}")
        found.append(_course(course, completed, today))
    return tuple(found)


def current(records: Iterable[Record], *, today: date) -> tuple[Standing, ...]:
    """Only the standings that are current ``today``."""
    return tuple(s for s in standings(records, today=today) if s.current)
