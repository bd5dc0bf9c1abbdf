"""First-pass yield per station, part and customer: one definition for QACentral, the CLI and the dashboard.

AS9100D 8.5.1 and NADCAP audits ask how often a job goes through without a
nonconformance; counted differently on two screens, the figure means nothing.
So there is one query over the hub's indexes (HandoffCentral's
``handoff_jobs``, QACentral's ``qa.ncr_events``), and every reader calls
:func:`first_pass_yield`:

- a **station** counts each job it handed off or opened an NCR on, once,
  first pass when no NCR was opened on the job *at that station* (a job with
  an NCR at its second station is still first pass at its first);
- a **part** and a **customer** count each job once, however many stations it
  went through, first pass only when no station opened an NCR on it;
- a job's PO (hence its customer, ClientManager's ``purchase_orders``) is the
  one its hand-offs carry at any station, so a job scrapped with an NCR at one
  station is still that customer's job; a job with no PO known is ``unknown``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from smart.hub.qa.models import Yield

#: Per (station, job), then per job: each counted where the definition above says, in one round trip.
_SQL = """
WITH ncr AS (
    SELECT station, job, max(part) AS part FROM qa.ncr_events WHERE job IS NOT NULL GROUP BY station, job
), at_station AS (
    SELECT coalesce(h.station, n.station) AS station, coalesce(h.job, n.job) AS job,
           coalesce(h.part, n.part) AS part, h.po, n.job IS NOT NULL AS ncr
    FROM public.handoff_jobs h FULL JOIN ncr n ON n.station = h.station AND n.job = h.job
), jobs AS (
    SELECT job, max(part) AS part, max(po) AS po, bool_or(ncr) AS ncr FROM at_station GROUP BY job
)
SELECT 'station', station, count(*), count(*) FILTER (WHERE NOT ncr) FROM at_station GROUP BY station
UNION ALL
SELECT 'part', coalesce(part, 'unknown'), count(*), count(*) FILTER (WHERE NOT ncr) FROM jobs GROUP BY 2
UNION ALL
SELECT 'po', po, count(*), count(*) FILTER (WHERE NOT ncr) FROM jobs GROUP BY po
"""


def _customers(conn: psycopg.Connection[Any]) -> Mapping[str, str]:
    """PO → client code, from ClientManager's schema when this login may read it (else none known)."""
    try:
        with conn.transaction(), conn.cursor(row_factory=tuple_row) as cursor:
            return {
                str(po): str(client)
                for po, client in cursor.execute("SELECT po, client FROM clients.purchase_orders")
            }
    except psycopg.Error:  # not migrated here, or not granted to this hub role
        return {}


def first_pass_yield(conn: psycopg.Connection[Any]) -> list[Yield]:
    """Every station's, part's and customer's jobs and first-pass jobs, sorted by (by, key)."""
    with conn.cursor(row_factory=tuple_row) as cursor:
        found = cursor.execute(_SQL).fetchall()
    customers = _customers(conn)
    tally: dict[tuple[str, str], list[int]] = {}
    for by, key, jobs, good in found:
        if by == "po":
            by, key = "customer", customers.get(key, "unknown") if key is not None else "unknown"
        counts = tally.setdefault((str(by), str(key)), [0, 0])
        counts[0] += int(jobs)
        counts[1] += int(good)
    return [
        Yield(by=by, key=key, jobs=n, first_pass=good, rate=round(good / n, 4) if n else None)
        for (by, key), (n, good) in sorted(tally.items())
    ]
