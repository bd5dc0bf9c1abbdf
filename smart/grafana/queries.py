"""The SQL behind each PostgreSQL panel, kept apart so the panel-SQL test can run every one of them.

Each query reads what the ``smart_grafana`` role may read (:data:`TABLES`): the hub log as
``ledger_log`` (every entry as JSON, read-only by construction), the ledger's checkpoint, witness
and alarm tables, and the hub services' NCR, equipment and lot tables. Grafana's macros
(``$__timeFilter``, ``$__timeGroupAlias``) are the PostgreSQL datasource's own; a query names the
columns its panel draws (:attr:`PanelSql.columns`), which the test checks.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Every table the dashboards read, schema-qualified; the ``smart_grafana`` role is granted SELECT on
#: exactly these. Nothing personal beyond the badge ids entries already carry; no logins, sessions,
#: API keys, people records or certificates' bytes.
TABLES: tuple[str, ...] = (
    "public.ledger_entries",
    "public.ledger_log",
    "public.ledger_checkpoints",
    "public.ledger_cosignatures",
    "public.ledger_alarms",
    "public.ledger_alarm_decisions",
    "public.ledger_heads",
    "qa.ncr_events",
    "maintenance.equipment",
    "inventory.lots",
)

#: Tables the dashboards read only some columns of, granted column by column: the customer behind an
#: order (its code and company name), never who keyed it in; a refusal's rule, never whose badge.
COLUMNS: dict[str, tuple[str, ...]] = {
    # ComplianceCentral's index of refusals, without the badge and the message (which names people)
    "public.compliance_decisions": (
        "ledger_idx",
        "station",
        "at",
        "kind",
        "module",
        "outcome",
        "severity",
        "audit",
        "rule",
        "standard",
    ),
    "clients.purchase_orders": ("po", "client"),
    "clients.clients": ("code", "name"),
}

#: An entry's time as PostgreSQL reads it (entries carry UTC ISO 8601 with ``Z``).
_TS = "(body->>'ts')::timestamptz"


@dataclass(frozen=True, slots=True)
class PanelSql:
    """One panel's query: its SQL with Grafana's macros, and the columns the panel expects back."""

    sql: str
    columns: tuple[str, ...]
    #: ``time_series`` (a ``time`` column first) or ``table``.
    format: str = "table"


#: Refusals read ComplianceCentral's index of the log's decisions (one row per reason, indexed by
#: time, station and rule), not the raw log: on a million-entry ledger a panel over ``ledger_log``
#: parses every entry, the index answers from its own rows.
REFUSALS_BY_STATION = PanelSql(
    """SELECT $__timeGroupAlias(at, '1h'), station, count(DISTINCT ledger_idx) AS refusals
FROM compliance_decisions
WHERE outcome = 'deny' AND severity = 'deny' AND $__timeFilter(at)
GROUP BY 1, 2 ORDER BY 1""",
    ("time", "station", "refusals"),
    "time_series",
)

REFUSALS_BY_RULE = PanelSql(
    """SELECT $__timeGroupAlias(at, '1h'), rule, count(*) AS refusals
FROM compliance_decisions
WHERE outcome = 'deny' AND severity = 'deny' AND $__timeFilter(at)
GROUP BY 1, 2 ORDER BY 1""",
    ("time", "rule", "refusals"),
    "time_series",
)

DECISIONS_BY_OUTCOME = PanelSql(
    f"""SELECT body->'data'->>'outcome' AS outcome, count(*) AS decisions
FROM ledger_log
WHERE body->>'kind' IN ('module.decision', 'gate.decision') AND $__timeFilter({_TS})
GROUP BY 1 ORDER BY 2 DESC""",
    ("outcome", "decisions"),
)

TOP_REFUSING_RULES = PanelSql(
    """SELECT station, module, rule, coalesce(standard, '') AS standard, count(*) AS refusals,
       max(at) AS latest
FROM compliance_decisions
WHERE outcome = 'deny' AND severity = 'deny' AND $__timeFilter(at)
GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC LIMIT 20""",
    ("station", "module", "rule", "standard", "refusals", "latest"),
)

#: A job counts once at each station: handed off, or with an NCR opened there; first pass there when no
#: NCR was opened on it there. Its order is the hand-off record's, else the scanned traveler's as the
#: job's decisions recorded it. ``per_job``: a part and a customer count each job once, however many
#: stations it went through, first pass only with no NCR anywhere (as ``smart.hub.qa.yields``).
_JOBS = f"""WITH handed AS (
    SELECT node AS station, body->>'subject' AS job,
           body->'data'->'record'->>'part' AS part, body->'data'->'record'->>'po' AS po
    FROM ledger_log WHERE body->>'kind' = 'job.handoff' AND $__timeFilter({_TS})
), ncr AS (
    SELECT DISTINCT node AS station, body->'data'->>'job' AS job, body->'data'->>'part' AS part
    FROM ledger_log WHERE body->>'kind' = 'qa.ncr.opened' AND $__timeFilter({_TS})
), scanned AS (
    SELECT node AS station, body->'data'->'event'->>'job' AS job,
           max(body->'data'->'event'->'scan'->>'po') AS po
    FROM ledger_log WHERE body->>'kind' = 'module.decision'
      AND body->'data'->'event'->'scan'->>'po' IS NOT NULL AND $__timeFilter({_TS})
    GROUP BY 1, 2
), jobs AS (
    SELECT coalesce(h.station, n.station) AS station, coalesce(h.job, n.job) AS job,
           coalesce(h.part, n.part) AS part, coalesce(h.po, s.po) AS po,
           n.job IS NULL AS first_pass
    FROM handed h FULL JOIN ncr n ON n.station = h.station AND n.job = h.job
    LEFT JOIN scanned s ON s.station = coalesce(h.station, n.station) AND s.job = coalesce(h.job, n.job)
), per_job AS (
    SELECT job, coalesce(max(part), 'unknown') AS part, max(po) AS po, bool_and(first_pass) AS first_pass
    FROM jobs GROUP BY job
)"""


def _yield_by(column: str, label: str, rows: str) -> PanelSql:
    return PanelSql(
        f"""{_JOBS}
SELECT {column} AS {label}, count(*) AS jobs, count(*) FILTER (WHERE first_pass) AS first_pass,
       round(100.0 * count(*) FILTER (WHERE first_pass) / count(*), 1) AS yield_percent
FROM {rows} GROUP BY 1 ORDER BY 4, 1""",
        (label, "jobs", "first_pass", "yield_percent"),
    )


YIELD_BY_STATION = _yield_by("station", "station", "jobs")
YIELD_BY_PART = _yield_by("part", "part", "per_job")
#: The customer of the order the traveler names (ClientManager's purchase orders and clients).
YIELD_BY_CUSTOMER = PanelSql(
    f"""{_JOBS}
SELECT coalesce(c.name, o.client, 'unknown') AS customer, count(*) AS jobs,
       count(*) FILTER (WHERE first_pass) AS first_pass,
       round(100.0 * count(*) FILTER (WHERE first_pass) / count(*), 1) AS yield_percent
FROM per_job jobs
LEFT JOIN clients.purchase_orders o ON o.po = jobs.po
LEFT JOIN clients.clients c ON c.code = o.client
GROUP BY 1 ORDER BY 4, 1""",
    ("customer", "jobs", "first_pass", "yield_percent"),
)

NCRS_OPEN = PanelSql(
    """SELECT station, ncr, min(at) AS opened, max(job) AS job, max(part) AS part
FROM qa.ncr_events
GROUP BY station, ncr
HAVING bool_and(kind <> 'closed')
ORDER BY opened""",
    ("station", "ncr", "opened", "job", "part"),
)

NCRS_OPEN_COUNT = PanelSql(
    """SELECT count(*) AS open_ncrs FROM (
    SELECT ncr FROM qa.ncr_events GROUP BY ncr HAVING bool_and(kind <> 'closed')
) AS open""",
    ("open_ncrs",),
)

CALIBRATIONS_DUE = PanelSql(
    """SELECT asset_id, station, kind, due, what, due - current_date AS days_left
FROM (
    SELECT asset_id, station, kind, calibration_due AS due, 'calibration' AS what FROM maintenance.equipment
    UNION ALL SELECT asset_id, station, kind, tus_due, 'TUS' FROM maintenance.equipment
    UNION ALL SELECT asset_id, station, kind, sat_due, 'SAT' FROM maintenance.equipment
) AS dues
WHERE due IS NOT NULL AND due <= current_date + 90
ORDER BY due""",
    ("asset_id", "station", "kind", "due", "what", "days_left"),
)

LOTS_DUE = PanelSql(
    """SELECT id AS lot, material, expires_on, expires_on - current_date AS days_left,
       array_to_string(stations, ', ') AS stations
FROM inventory.lots
WHERE withdrawn_on IS NULL AND expires_on <= current_date + 90
ORDER BY expires_on""",
    ("lot", "material", "expires_on", "days_left", "stations"),
)

ENTRIES_PER_STATION = PanelSql(
    """SELECT node AS station, count(*) AS entries, max(node_seq) AS latest_seq, max(idx) AS latest_index
FROM ledger_entries GROUP BY node ORDER BY node""",
    ("station", "entries", "latest_seq", "latest_index"),
)

ENTRIES_OVER_TIME = PanelSql(
    f"""SELECT $__timeGroupAlias({_TS}, '1h'), node AS station, count(*) AS entries
FROM ledger_log WHERE $__timeFilter({_TS})
GROUP BY 1, 2 ORDER BY 1""",
    ("time", "station", "entries"),
    "time_series",
)

LATEST_CHECKPOINT = PanelSql(
    """SELECT c.size, encode(c.root, 'hex') AS root, count(w.witness) AS cosignatures,
       coalesce(string_agg(w.witness, ', ' ORDER BY w.witness), '') AS witnesses
FROM (SELECT size, root FROM ledger_checkpoints ORDER BY size DESC LIMIT 1) AS c
LEFT JOIN ledger_cosignatures w ON w.size = c.size
GROUP BY c.size, c.root""",
    ("size", "root", "cosignatures", "witnesses"),
)

LOG_SIZE = PanelSql(
    """SELECT (SELECT coalesce(max(idx) + 1, 0) FROM ledger_entries) AS entries,
       (SELECT coalesce(max(size), 0) FROM ledger_checkpoints) AS checkpointed,
       (SELECT coalesce(max(idx) + 1, 0) FROM ledger_entries)
         - (SELECT coalesce(max(size), 0) FROM ledger_checkpoints) AS not_yet_checkpointed""",
    ("entries", "checkpointed", "not_yet_checkpointed"),
)

ALARMS = PanelSql(
    """SELECT a.id, a.raised_at, a.node AS station, a.node_seq, a.kind, a.detail,
       CASE WHEN d.alarm_id IS NULL THEN 'open' ELSE 'decided' END AS state
FROM ledger_alarms a
LEFT JOIN (SELECT DISTINCT alarm_id FROM ledger_alarm_decisions) d ON d.alarm_id = a.id
ORDER BY a.raised_at DESC LIMIT 50""",
    ("id", "raised_at", "station", "node_seq", "kind", "detail", "state"),
)

OPEN_ALARMS = PanelSql(
    """SELECT count(*) AS open_alarms FROM ledger_alarms a
WHERE NOT EXISTS (SELECT 1 FROM ledger_alarm_decisions d WHERE d.alarm_id = a.id)""",
    ("open_alarms",),
)
