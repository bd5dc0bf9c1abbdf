"""What a station must know of a person, from SMART-ID's records: exactly the facts its contract rules judge.

A station decides offline, so the person's certifications, eye exams and
when they last performed each method must be at the station before they
badge in. SMART-ID holds them; this turns one person's records into the
station's :class:`~smart.contracts.facts.Person`, keyed by badge id — no
name, no employee id, no exam scores — and :func:`publish_people` keeps
each station's ``station-records`` bucket holding exactly the people
SMART-ID lets in there (an access credential for the station).

The two vocabularies differ and are translated here, in one place:
SMART-ID's schemes say level ``2`` and eye exams ``near_vision`` /
``colour_vision`` with tests such as ``jaeger-1-at-12in``; the contracts say
``level-2``, ``near-vision`` / ``color-contrast`` and ``jaeger-1-12in``. A
record this file cannot translate is left out, so the station's rule
refuses for want of it rather than trusting a guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType

import structlog
from nats.js import JetStreamContext

from smart import intervals
from smart.access.records import Record, RecordKind
from smart.access.schemes import shop_schemes
from smart.bus import buckets
from smart.contracts import facts as f
from smart.contracts.rules import Level
from smart.node import records as station_records

log = structlog.get_logger("smart.hub.vault.station_people")

LEVELS: Mapping[str, Level] = MappingProxyType(
    {
        "trainee": Level.TRAINEE,
        "1L": Level.LEVEL_1_LIMITED,
        "1": Level.LEVEL_1,
        "2": Level.LEVEL_2,
        "3": Level.LEVEL_3,
    }
)
EYE_EXAMS: Mapping[str, str] = MappingProxyType(
    {"near_vision": "near-vision", "colour_vision": "color-contrast"}
)
EYE_TESTS: Mapping[str, str] = MappingProxyType(
    {
        "jaeger-1-at-12in": "jaeger-1-12in",
        "snellen-20-25-at-16in": "snellen-20-25-16in",
        "tumbling-e-iso18490": "tumbling-e-iso18490",
    }
)


#: What a SMART-ID role gives a person at a station (``facts.Person.authorities``): the quality
#: manager dispositions NCRs, takes over or abandons jobs and signs the C of C.
ROLE_AUTHORITIES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"quality_manager": ("quality-manager", "coc-signature")}
)


def _utc(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=UTC)


def _expires(certification: Record) -> datetime:
    """The end of the day the scheme's recertification falls due (far ahead if the scheme is unknown)."""
    scheme = shop_schemes().get(certification.scheme or "NAS410")
    rule = next((r for r in scheme.currency if r.name == "certification"), None) if scheme else None
    if rule is None:
        return _utc(certification.on) + timedelta(days=5 * 365)
    return _utc(intervals.due(certification.on, rule.every)) + timedelta(days=1)


def _practical_samples(certification: Record, records: Sequence[Record]) -> int:
    practicals = [
        r
        for r in records
        if r.kind is RecordKind.EXAM
        and r.exam == "practical"
        and r.method == certification.method
        and r.on <= certification.on
    ]
    if not practicals:
        return 0
    return max(practicals, key=lambda r: r.on).samples or 0


def station_person(badge: str, records: Sequence[Record], roles: Sequence[str] = ()) -> f.Person:
    """The station's view of the person holding ``badge``, from their SMART-ID records and roles."""
    certifications: list[f.Certification] = []
    seen_methods: set[str] = set()
    for record in sorted((r for r in records if r.kind is RecordKind.CERTIFICATION), key=lambda r: r.on):
        level = LEVELS.get(record.level or "")
        if level is None or not record.method:
            log.warning("station_people.certification_untranslated", badge=badge, level=record.level)
            continue
        certifications.append(
            f.Certification(
                method=record.method,
                level=level,
                issued=_utc(record.on),
                expires=_expires(record),
                technique=record.technique,
                basis="recertification-exam" if record.method in seen_methods else "initial-exam",
                practical_samples=_practical_samples(record, records),
            )
        )
        seen_methods.add(record.method)
    exams = []
    for record in records:
        if record.kind is not RecordKind.EYE_EXAM:
            continue
        exam = EYE_EXAMS.get(record.test or "")
        if exam is None:
            continue
        exams.append(f.Exam(exam, _utc(record.on), EYE_TESTS.get(record.test_type or "", record.test_type)))
    performed: dict[str, datetime] = {}
    for record in records:
        if record.kind in (RecordKind.PERFORMANCE, RecordKind.CERTIFICATION) and record.method:
            at = _utc(record.on)
            performed[record.method] = max(at, performed.get(record.method, at))
    return f.Person(
        id=badge,
        certifications=tuple(certifications),
        exams=tuple(exams),
        last_performed=MappingProxyType(performed),
        authorities=tuple(sorted({a for role in roles for a in ROLE_AUTHORITIES.get(role, ())})),
    )


async def publish_people(
    js: JetStreamContext,
    station: str,
    people: Iterable[tuple[str, Sequence[Record]]],
    roles: Mapping[str, Sequence[str]] | None = None,
) -> int:
    """Make ``station``'s person records exactly ``people`` (badge, records); returns how many."""
    await station_records.ensure_records_bucket(js)
    held_roles = roles or {}
    wanted = {badge: station_person(badge, held, held_roles.get(badge, ())) for badge, held in people}
    for badge, person in wanted.items():
        await station_records.publish_record(js, station, "person", badge, person)
    kv = await js.key_value(station_records.RECORDS_BUCKET)
    prefix = station_records.record_key(station, "person", "")  # "<station>.person."
    for key in await buckets.live_entries(kv, f"{prefix}>"):
        badge = key[len(prefix) :]
        if badge not in wanted:
            await station_records.withdraw_record(js, station, "person", badge)
    return len(wanted)
