"""Who may decide what badging in alone does not: disposition an NCR, take over or abandon a job.

An NCR's disposition decides what happens to a part that failed its limits,
and taking over or abandoning someone else's job ends their hold on the
station: both need authority beyond operating. The shop gives it to a
Level 3 in the station's method (NAS410 / EN4179: the Level 3 is the
method's technical authority) and to the quality manager (AS9100D 8.7: the
organisation's authority over nonconforming outputs).

The badge is judged like any badge first: where the station holds SMART-ID's
keys, its signed access credential for this station must verify offline
(the station's badge check, whose refusals the caller passes in). The authority then comes from the person's
record at the station, which SMART-ID publishes (a current, unrevoked Level 3
certification in a method the station practises) or, for the quality
manager, the record's authority :data:`QUALITY_MANAGER`. Nothing in a
request body can give it: the person judged is the one badged in.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from types import MappingProxyType

from smart.contracts import engine
from smart.contracts import facts as f
from smart.contracts.rules import Level

#: The authority a quality manager's station record carries (``facts.Person.authorities``).
QUALITY_MANAGER = "quality-manager"
RULE = "station.authority"


def methods_of(facts: f.Facts, procedure: str | None = None) -> tuple[str, ...]:
    """The methods the station practises: the job's procedure's, else every procedure it holds."""
    held = facts.procedures.get(procedure) if procedure else None
    if held is not None:
        return (held.method,)
    return tuple(sorted({p.method for p in facts.procedures.values()}))


def who_may(methods: Collection[str]) -> str:
    """The authority in the shop's words: "a Level 3 in PT or a quality manager"."""
    if not methods:
        return "a quality manager"
    return f"a Level 3 in {' or '.join(sorted(methods))} or a quality manager"


def _qualifies(person: f.Person, methods: Collection[str], at: datetime) -> bool:
    if QUALITY_MANAGER in person.authorities:
        return True
    return any(
        c.method in methods
        and c.level.rank >= Level.LEVEL_3.rank
        and not c.revoked
        and c.issued <= at < c.expires
        for c in person.certifications
    )


def holders(facts: f.Facts, methods: Collection[str], at: datetime) -> tuple[str, ...]:
    """The badges known at the station that hold the authority now (what the kiosk shows)."""
    return tuple(sorted(p.id for p in facts.people.values() if _qualifies(p, methods, at)))


def judge(
    badge: str | None,
    *,
    what: str,
    facts: f.Facts,
    refused: Sequence[engine.Reason],
    at: datetime,
    methods: Collection[str],
) -> tuple[engine.Reason, ...]:
    """Why ``badge`` may not ``what`` ("disposition NCR-…") at ``at``; empty: it may.

    ``refused`` are the station's reasons against the badge's signed access credential, judged
    by whoever holds the badges (the station in-process, its badge port across processes).
    """
    needed = who_may(methods)
    values = {"badge": badge, "needs": needed, "methods": sorted(methods)}
    if not badge:
        return (
            engine.Reason(RULE, f"to {what} a badged person is needed ({needed})", MappingProxyType(values)),
        )
    if refused:  # the badge's own signed credential failed first
        return tuple(refused)
    person = facts.people.get(badge)
    if person is None or not _qualifies(person, methods, at):
        return (
            engine.Reason(
                RULE,
                f"badge {badge} does not have the authority to {what}: it needs {needed}",
                MappingProxyType(values),
            ),
        )
    return ()
