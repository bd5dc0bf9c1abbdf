"""The hub log's refusals and activations, indexed once: searchable, countable, exportable.

Stations record every decision on their own ledger (``gate.decision``, ``module.decision``) and
every change of the revision they enforce (``contract.activated``, ``contract.retired``); the node
agent ships them into the hub log exactly once. Following :mod:`smart.hub.log_index`, two indexes
read the log from where their own table stops:

- :class:`DecisionIndex` keeps one row per ``deny`` or ``warn`` reason (station, time, rule, its
  standard, the badge, the equipment, the job, the contract revision judged under, and where the
  entry is in the log): what ComplianceCentral searches, counts and exports;
- :class:`ActivationIndex` keeps one row per activation or retirement: what "in force at a station
  at time T" is answered from (:func:`in_force_at`), the same question a station answers from its
  own store (policy-node-storage, verb ``at``).

Both tables are re-derivable from the log; the app role may only SELECT and INSERT. A search
names what is wrong with its question (an unknown rule, a malformed time) and reads nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from smart.contracts import history
from smart.hub import log_index
from smart.ledger import hub_store
from smart.ledger.entry import Entry

DECISIONS, ACTIVATIONS = "compliance_decisions", "contract_activations"
EQUIPMENT = "compliance_equipment"
DECISION_KINDS = ("gate.decision", "module.decision")

_DECISIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS compliance_decisions (
    ledger_idx bigint NOT NULL,
    reason_no int NOT NULL,
    station text NOT NULL,
    node_seq bigint NOT NULL,
    at timestamptz NOT NULL,
    kind text NOT NULL,
    module text,
    outcome text NOT NULL,
    severity text NOT NULL,
    audit boolean NOT NULL DEFAULT false,
    rule text NOT NULL,
    standard text,
    message text,
    person text,
    equipment text[] NOT NULL DEFAULT '{}',
    job text,
    revisions jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (ledger_idx, reason_no)
);
CREATE INDEX IF NOT EXISTS compliance_decisions_at ON compliance_decisions (at, ledger_idx);
CREATE INDEX IF NOT EXISTS compliance_decisions_station_at ON compliance_decisions (station, at, ledger_idx);
CREATE INDEX IF NOT EXISTS compliance_decisions_rule_at ON compliance_decisions (rule, at, ledger_idx);
-- A station's refusals by one rule: with only (rule, at) a pair that never fired reads every row of
-- the rule, newest first, to find none (the slowest search of the bench).
CREATE INDEX IF NOT EXISTS compliance_decisions_station_rule
    ON compliance_decisions (station, rule, at, ledger_idx);
CREATE INDEX IF NOT EXISTS compliance_decisions_job ON compliance_decisions (job, at, ledger_idx);
CREATE INDEX IF NOT EXISTS compliance_decisions_person ON compliance_decisions (person, at, ledger_idx);
CREATE INDEX IF NOT EXISTS compliance_decisions_standard ON compliance_decisions (standard, at, ledger_idx);
CREATE INDEX IF NOT EXISTS compliance_decisions_equipment ON compliance_decisions USING gin (equipment);
"""

#: One row per instrument a refusal names, ordered by time: a search by equipment walks the newest
#: rows of one instrument and stops at its limit, where the GIN index on the array reads (and sorts)
#: every refusal that ever named it. Written with its decision row, in the same transaction.
_EQUIPMENT_SCHEMA = """
CREATE TABLE IF NOT EXISTS compliance_equipment (
    equipment text NOT NULL,
    at timestamptz NOT NULL,
    ledger_idx bigint NOT NULL,
    reason_no int NOT NULL,
    PRIMARY KEY (equipment, ledger_idx, reason_no)
);
CREATE INDEX IF NOT EXISTS compliance_equipment_at ON compliance_equipment (equipment, at, ledger_idx);
"""

_ACTIVATIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS contract_activations (
    ledger_idx bigint PRIMARY KEY,
    station text NOT NULL,
    contract text NOT NULL,
    revision text,
    at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS contract_activations_station_at
    ON contract_activations (station, contract, at, ledger_idx);
"""


def migrate(owner_url: str, *, app_role: str = hub_store.APP_ROLE) -> None:
    """Create both index tables as the owner (safe to run again)."""
    log_index.migrate_table(owner_url, schema=_DECISIONS_SCHEMA, table=DECISIONS, app_role=app_role)
    log_index.migrate_table(owner_url, schema=_EQUIPMENT_SCHEMA, table=EQUIPMENT, app_role=app_role)
    with psycopg.connect(owner_url, autocommit=True) as conn:
        # A hub indexed before the equipment table existed: fill it once from the decisions' arrays.
        if conn.execute("SELECT 1 FROM compliance_equipment LIMIT 1").fetchone() is None:
            conn.execute(
                "INSERT INTO compliance_equipment (equipment, at, ledger_idx, reason_no)"
                " SELECT DISTINCT e, at, ledger_idx, reason_no FROM compliance_decisions, unnest(equipment) e"
                " ON CONFLICT DO NOTHING"
            )
    log_index.migrate_table(owner_url, schema=_ACTIVATIONS_SCHEMA, table=ACTIVATIONS, app_role=app_role)


class SearchError(ValueError):
    """A question ComplianceCentral cannot answer as asked; the message names the field."""


def _equipment(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return []


class DecisionIndex(log_index.LogIndex):
    """One row per deny or warn reason of every station decision in the hub log.

    ``standards`` maps a rule id to the standard it cites (from the contracts the hub holds), so a
    search by standard needs no bundle at query time.
    """

    kinds: ClassVar[tuple[str, ...]] = DECISION_KINDS
    table: ClassVar[str] = DECISIONS

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        *,
        url: str | None = None,
        standards: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(conn, url=url)
        self.standards = dict(standards or {})

    def take(self, idx: int, entry: Entry) -> int:
        data = entry.data
        reasons = [r for r in data.get("reasons") or () if isinstance(r, dict)]
        event = data.get("event") if isinstance(data.get("event"), dict) else {}
        assert isinstance(event, dict)
        at = history.parse_time(entry.ts)
        equipment = _equipment(event.get("equipment"))
        added = 0
        for number, reason in enumerate(reasons):
            severity = str(reason.get("severity") or "deny")
            if severity not in ("deny", "warn"):
                continue
            rule = str(reason.get("rule") or "")
            with self.conn.transaction():  # the decision row and its instruments' rows, or neither
                row = self.conn.execute(
                    "INSERT INTO compliance_decisions (ledger_idx, reason_no, station, node_seq, at, kind,"
                    " module, outcome, severity, audit, rule, standard, message, person, equipment, job,"
                    " revisions)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT DO NOTHING RETURNING 1",
                    (
                        idx,
                        number,
                        entry.node,
                        entry.node_seq,
                        at,
                        entry.kind,
                        data.get("module"),
                        str(data.get("outcome") or ""),
                        severity,
                        bool(reason.get("audit")),
                        rule,
                        self.standards.get(rule),
                        reason.get("message"),
                        event.get("person") or entry.actor,
                        equipment,
                        event.get("job")
                        or (entry.subject if entry.subject and entry.subject.startswith("J") else None),
                        Jsonb(data.get("revisions") or {}),
                    ),
                ).fetchone()
                if row is None:
                    continue
                added += 1
                for name in dict.fromkeys(equipment):
                    self.conn.execute(
                        "INSERT INTO compliance_equipment (equipment, at, ledger_idx, reason_no)"
                        " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        (name, at, idx, number),
                    )
        return added


class ActivationIndex(log_index.LogIndex):
    """One row per station activation or retirement of a contract revision in the hub log."""

    kinds: ClassVar[tuple[str, ...]] = history.ACTIVATION_KINDS
    table: ClassVar[str] = ACTIVATIONS

    def take(self, idx: int, entry: Entry) -> int:
        contract = entry.data.get("contract")
        if not isinstance(contract, str):
            return 0
        revision = entry.data.get("revision") if entry.kind == "contract.activated" else None
        row = self.conn.execute(
            "INSERT INTO contract_activations (ledger_idx, station, contract, revision, at)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
            (idx, entry.node, contract, revision, history.parse_time(entry.ts)),
        ).fetchone()
        return 1 if row else 0


def in_force_at(conn: psycopg.Connection[Any], station: str, at: datetime) -> list[history.InForce]:
    """Each contract's revision in force at ``station`` at ``at``, from the indexed activations."""
    rows = conn.execute(
        "SELECT c.contract, latest.revision, latest.at FROM"
        " (SELECT DISTINCT contract FROM contract_activations WHERE station = %s) AS c"
        " CROSS JOIN LATERAL (SELECT revision, at FROM contract_activations a"
        "  WHERE a.station = %s AND a.contract = c.contract AND a.at <= %s"
        "  ORDER BY a.at DESC, a.ledger_idx DESC LIMIT 1) AS latest ORDER BY c.contract",
        (station, station, at),
    ).fetchall()
    return [history.InForce(str(c), str(r), t) for c, r, t in rows if r is not None]


@dataclass(frozen=True, slots=True)
class Refusal:
    """One deny or warn reason as ComplianceCentral lists it."""

    station: str
    at: datetime
    outcome: str
    severity: str
    rule: str
    standard: str | None
    message: str | None
    person: str | None
    equipment: tuple[str, ...]
    job: str | None
    ledger_idx: int
    node_seq: int

    def json(self, *, personal: bool) -> dict[str, Any]:
        return {
            "station": self.station,
            "at": self.at.isoformat(),
            "outcome": self.outcome,
            "severity": self.severity,
            "rule": self.rule,
            "standard": self.standard,
            "message": self.message,
            **({"person": self.person} if personal else {}),
            "equipment": list(self.equipment),
            "job": self.job,
            "ledger": {"index": self.ledger_idx, "nodeSeq": self.node_seq},
        }


@dataclass(frozen=True, slots=True)
class Query:
    """A ComplianceCentral search, checked: every field known, every time a time."""

    station: str | None = None
    rule: str | None = None
    standard: str | None = None
    person: str | None = None
    equipment: str | None = None
    job: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    severity: Literal["deny", "warn"] | None = None
    limit: int = 500


def query(
    conn: psycopg.Connection[Any],
    *,
    station: str | None = None,
    rule: str | None = None,
    standard: str | None = None,
    person: str | None = None,
    equipment: str | None = None,
    job: str | None = None,
    since: str | None = None,
    until: str | None = None,
    severity: str | None = None,
    limit: int = 500,
) -> Query:
    """The search as asked, or :class:`SearchError` naming the field: an unknown rule, a bad time."""
    if (
        rule is not None
        and conn.execute("SELECT 1 FROM compliance_decisions WHERE rule = %s LIMIT 1", (rule,)).fetchone()
        is None
    ):
        raise SearchError(f"rule: no station has recorded a refusal by rule {rule!r}; check its id")
    if severity is not None and severity not in ("deny", "warn"):
        raise SearchError(f"severity: {severity!r} is not deny or warn")
    if not 1 <= limit <= 10_000:
        raise SearchError(f"limit: {limit} is not between 1 and 10000")
    try:
        start = history.parse_time(since, field_name="since") if since else None
        stop = history.parse_time(until, field_name="until") if until else None
    except history.HistoryError as err:
        raise SearchError(str(err)) from err
    if start and stop and stop <= start:
        raise SearchError(f"until: {until} is not after since {since}")
    return Query(station, rule, standard, person, equipment, job, start, stop, severity, limit)  # type: ignore[arg-type]


def _where(q: Query, *, by_equipment: bool = False) -> tuple[sql.Composable, list[Any]]:
    """The filters of ``q``; ``by_equipment``: over ``compliance_equipment e`` joined to decisions ``d``."""
    parts: list[sql.Composable] = []
    values: list[Any] = []

    def column(name: str, table: str = "d") -> sql.Composable:
        return sql.Identifier(table, name) if by_equipment else sql.Identifier(name)

    for name, value in (
        ("station", q.station),
        ("rule", q.rule),
        ("standard", q.standard),
        ("person", q.person),
        ("job", q.job),
        ("severity", q.severity),
    ):
        if value is not None:
            parts.append(sql.SQL("{} = %s").format(column(name)))
            values.append(value)
    if q.equipment is not None:
        if by_equipment:
            parts.append(sql.SQL("e.equipment = %s"))
        else:
            parts.append(sql.SQL("equipment @> ARRAY[%s]::text[]"))
        values.append(q.equipment)
    if q.since is not None:
        parts.append(sql.SQL("{} >= %s").format(column("at", "e")))
        values.append(q.since)
    if q.until is not None:
        parts.append(sql.SQL("{} < %s").format(column("at", "e")))
        values.append(q.until)
    where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(parts) if parts else sql.SQL("")
    return where, values


def search(conn: psycopg.Connection[Any], q: Query) -> list[Refusal]:
    """The refusals matching ``q``, newest first (by one instrument: its own rows, newest first)."""
    columns = sql.SQL(
        "station, at, outcome, severity, rule, standard, message, person, equipment, job,"
        " ledger_idx, node_seq"
    )
    if q.equipment is not None:
        where, values = _where(q, by_equipment=True)
        statement = sql.SQL(
            "SELECT d.station, d.at, d.outcome, d.severity, d.rule, d.standard, d.message, d.person,"
            " d.equipment, d.job, d.ledger_idx, d.node_seq FROM compliance_equipment e"
            " JOIN compliance_decisions d ON d.ledger_idx = e.ledger_idx AND d.reason_no = e.reason_no"
            "{} ORDER BY e.at DESC, e.ledger_idx DESC LIMIT %s"
        ).format(where)
    else:
        where, values = _where(q)
        statement = sql.SQL(
            "SELECT {} FROM compliance_decisions{} ORDER BY at DESC, ledger_idx DESC LIMIT %s"
        ).format(columns, where)
    rows = conn.execute(statement, [*values, q.limit]).fetchall()
    return [
        Refusal(str(s), at, str(o), str(sev), str(r), std, msg, p, tuple(eq or ()), j, int(i), int(n))
        for s, at, o, sev, r, std, msg, p, eq, j, i, n in rows
    ]


def counts(
    conn: psycopg.Connection[Any], q: Query, *, every: Literal["day", "week", "month"] = "day"
) -> list[dict[str, Any]]:
    """Refusals per rule and station per ``every`` (the trend an auditor reads)."""
    where, values = _where(q)
    rows = conn.execute(
        sql.SQL(
            "SELECT date_trunc(%s, at) AS period, station, rule, severity, count(*)"
            " FROM compliance_decisions{} GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
        ).format(where),
        [every, *values],
    ).fetchall()
    return [
        {"period": p.isoformat(), "station": s, "rule": r, "severity": sev, "count": int(n)}
        for p, s, r, sev, n in rows
    ]


def blocks_on_job(conn: psycopg.Connection[Any], job: str) -> list[Refusal]:
    """The denies that fired on ``job``, oldest first: an auditor's evidence that the controls work."""
    found = search(conn, Query(job=job, severity="deny", limit=10_000))
    return sorted(found, key=lambda r: (r.at, r.ledger_idx))


def to_csv(found: Iterable[Refusal], *, personal: bool) -> str:
    """The refusals as CSV (one row per reason); the badge column only where personal data may go."""
    out = io.StringIO()
    columns = ["at", "station", "outcome", "severity", "rule", "standard", "message"]
    columns += ["person"] if personal else []
    columns += ["equipment", "job", "ledger_index", "node_seq"]
    writer = csv.writer(out)
    writer.writerow(columns)
    for r in found:
        row: list[Any] = [r.at.isoformat(), r.station, r.outcome, r.severity, r.rule, r.standard, r.message]
        row += [r.person] if personal else []
        row += [";".join(r.equipment), r.job, r.ledger_idx, r.node_seq]
        writer.writerow(row)
    return out.getvalue()


def rule_standards(specs: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Rule id → the first standard it cites, over contract specs (plain JSON)."""
    found: dict[str, str] = {}
    for spec in specs:
        for rule in spec.get("rules", ()):
            cites = rule.get("cites") or ()
            if cites and isinstance(cites[0], dict) and cites[0].get("standard"):
                found.setdefault(str(rule["id"]), str(cites[0]["standard"]))
    return found
