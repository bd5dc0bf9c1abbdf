"""Reverse search: from an instrument, a person, a lot or a procedure revision to every job it touched.

AS9100D 7.1.5.2 asks, when a gauge is found out of tolerance, for every job
it measured since its last good calibration; a lapsed or revoked
certification, an expired lot or a withdrawn procedure revision ask the same
question of the past. The answer comes from the audit index (``audit.refs``):
each station job with the first entry that proves the thing touched it (the
station's own decision naming it), so the list is evidence, not a report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg


@dataclass(frozen=True, slots=True)
class Touched:
    """One station job the thing touched, and the entry that proves it."""

    station: str
    job: str
    at: datetime
    idx: int
    po_line: str | None
    serials: tuple[str, ...]


def touched(
    conn: psycopg.Connection[Any],
    ref: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    method: str | None = None,
    limit: int = 10_000,
) -> list[Touched]:
    """Every station job ``ref`` (``equipment/X``, ``person/B``, ``lot/L``, ``procedure/P@R``) touched."""
    rows = conn.execute(
        "SELECT t.node, t.job, t.at, t.ledger_idx,"
        " (SELECT min(substr(r.ref, 9)) FROM audit.refs r WHERE r.node = t.node AND r.job = t.job"
        "  AND r.ref LIKE 'po-line/%%'),"
        " (SELECT coalesce(array_agg(DISTINCT substr(r.ref, 8)), '{}') FROM audit.refs r"
        "  WHERE r.node = t.node AND r.job = t.job AND r.ref LIKE 'serial/%%')"
        " FROM (SELECT DISTINCT ON (node, job) node, job, at, ledger_idx FROM audit.refs"
        "  WHERE ref = %s AND job IS NOT NULL AND (%s::timestamptz IS NULL OR at >= %s)"
        "  AND (%s::timestamptz IS NULL OR at < %s) AND (%s::text IS NULL OR method = %s)"
        "  ORDER BY node, job, ledger_idx) t ORDER BY t.at, t.node LIMIT %s",
        (
            ref,
            since,
            since,
            until,
            until,
            method,
            method,
            limit,
        ),
    ).fetchall()
    return [Touched(str(n), str(j), at, int(i), pl, tuple(sorted(s))) for n, j, at, i, pl, s in rows]


def count(conn: psycopg.Connection[Any], ref: str) -> int:
    """How many station jobs ``ref`` touched (an index-only scan in job order, no job read).

    ``count(DISTINCT (node, job))`` sorted every row by a row value (~0.5 s for a gauge in
    every job of a million-entry log); the distinct pairs of the ``refs_ref_jobs`` index are ~20 ms.
    """
    row = conn.execute(
        "SELECT count(*) FROM (SELECT DISTINCT node, job FROM audit.refs"
        " WHERE ref = %s AND job IS NOT NULL) AS jobs",
        (ref,),
    ).fetchone()
    return int(row[0]) if row else 0


def query_ref(
    *,
    equipment: str | None = None,
    person: str | None = None,
    lot: str | None = None,
    procedure: str | None = None,
    revision: str | None = None,
) -> str:
    """The index's name of what a reverse search starts from; exactly one must be given."""
    given = [
        (name, value)
        for name, value in (
            ("equipment", equipment),
            ("person", person),
            ("lot", lot),
            ("procedure", procedure),
        )
        if value
    ]
    if len(given) != 1:
        raise ValueError("name exactly one of --equipment, --person, --lot, --procedure")
    name, value = given[0]
    if name == "procedure":
        if not revision:
            raise ValueError("--procedure needs --revision (the revision whose jobs to list)")
        return f"procedure/{value}@{revision}"
    return f"{name}/{value}"


def search(
    conn: psycopg.Connection[Any],
    *,
    job: str | None = None,
    po: str | None = None,
    line: str | None = None,
    part: str | None = None,
    serial: str | None = None,
    person: str | None = None,
    equipment: str | None = None,
    on: date | None = None,
    limit: int = 200,
) -> list[Touched]:
    """Station jobs matching every criterion given (an auditor's search); none given: the latest jobs."""
    refs = [
        ref
        for ref, given in (
            (f"job/{job}", job),
            (f"po-line/{po}/{line}", po and line),
            (f"part/{part}", part),
            (f"serial/{serial}", serial),
            (f"person/{person}", person),
            (f"equipment/{equipment}", equipment),
        )
        if given
    ]
    since = datetime.combine(on, time(0), tzinfo=UTC) if on is not None else None
    until = since + timedelta(days=1) if since is not None else None
    if not refs:
        rows = conn.execute(
            "SELECT ref FROM audit.refs WHERE ref LIKE 'job/%%' AND job IS NOT NULL"
            " AND (%s::timestamptz IS NULL OR at >= %s) AND (%s::timestamptz IS NULL OR at < %s)"
            " GROUP BY ref ORDER BY max(at) DESC LIMIT %s",
            (since, since, until, until, limit),
        ).fetchall()
        refs_found = [str(r[0]) for r in rows]
        found = [t for ref in refs_found for t in touched(conn, ref, since=since, until=until, limit=limit)]
        return sorted(found, key=lambda t: t.at, reverse=True)[:limit]
    first, *others = refs
    found = touched(conn, first, since=since, until=until, limit=limit)
    for ref in others:
        keep = {(t.station, t.job) for t in touched(conn, ref, since=since, until=until, limit=10 * limit)}
        found = [t for t in found if (t.station, t.job) in keep]
    return found
