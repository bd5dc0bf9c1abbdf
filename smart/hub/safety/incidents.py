"""Safety incidents from the stations' decisions, indexed once from the hub log, and their reports.

A station's Safety module answers every e-stop press and every PPE check with a decision on its
ledger (``module.decision``: the e-stop is a deny naming ``safety.estop``; a missing or prohibited
item is a deny by the contract's PPE rule); a FOD check that failed is a deny by a check rule on
``fod``; any other deny of the Safety module (a hazard interlock) is an interlock drop. Following
:mod:`smart.hub.log_index`, :class:`IncidentIndex` keeps one row per such decision: station,
time, job, who (the badge), what, why, and where the entry is in the log.

A safety lead completes an incident with its cause and the action taken: a row in
``safety_reports`` (append-only, like every index; the latest report of an incident is the one
shown) and a ``safety.incident_reported`` entry on the hub's ledger node, written first, so a
report the ledger does not hold does not exist. Trends count incidents per station and kind per
week.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Protocol

import psycopg

from smart.contracts import history
from smart.hub import log_index
from smart.ledger import hub_store
from smart.ledger.entry import Entry

INCIDENTS, REPORTS = "safety_incidents", "safety_reports"
Kind = Literal["estop", "ppe", "fod", "interlock"]

_INCIDENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS safety_incidents (
    ledger_idx bigint PRIMARY KEY,
    station text NOT NULL,
    node_seq bigint NOT NULL,
    at timestamptz NOT NULL,
    kind text NOT NULL,
    rule text,
    message text,
    person text,
    job text
);
CREATE INDEX IF NOT EXISTS safety_incidents_station_at ON safety_incidents (station, at);
"""
_REPORTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS safety_reports (
    report_id bigserial PRIMARY KEY,
    ledger_idx bigint NOT NULL REFERENCES safety_incidents (ledger_idx),
    cause text NOT NULL,
    action text NOT NULL,
    reported_by text NOT NULL,
    reported_at timestamptz NOT NULL,
    entry_seq bigint NOT NULL
);
"""


def migrate(owner_url: str, *, app_role: str = hub_store.APP_ROLE) -> None:
    log_index.migrate_table(owner_url, schema=_INCIDENTS_SCHEMA, table=INCIDENTS, app_role=app_role)
    log_index.migrate_table(owner_url, schema=_REPORTS_SCHEMA, table=REPORTS, app_role=app_role)
    with psycopg.connect(owner_url, autocommit=True) as conn:  # the serial the app role's INSERT draws
        conn.execute(f"GRANT USAGE ON SEQUENCE safety_reports_report_id_seq TO {app_role}")


class ReportError(ValueError):
    """A report that cannot be taken; the message names the field."""


def incident_kind(data: Mapping[str, Any]) -> tuple[Kind, Mapping[str, Any]] | None:
    """What safety incident a decision is, with the reason that makes it one (None: not one)."""
    if data.get("outcome") != "deny":
        return None
    reasons = [r for r in data.get("reasons") or () if isinstance(r, dict)]
    for reason in reasons:
        values = reason.get("values") if isinstance(reason.get("values"), dict) else {}
        if "fod" in str(reason.get("rule", "")) or (
            isinstance(values, dict) and values.get("check") == "fod"
        ):
            return "fod", reason
    if data.get("module") != "safety" or not reasons:
        return None
    reason = reasons[0]
    if reason.get("rule") == "safety.estop":
        return "estop", reason
    if data.get("verb") == "estop":  # the e-stop reset, refused for another reason: no new incident
        return None
    if data.get("verb") == "ppe":
        return "ppe", reason
    return "interlock", reason


class IncidentIndex(log_index.LogIndex):
    """One row per safety incident a station recorded."""

    kinds: ClassVar[tuple[str, ...]] = ("module.decision",)
    table: ClassVar[str] = INCIDENTS

    def take(self, idx: int, entry: Entry) -> int:
        found = incident_kind(entry.data)
        if found is None:
            return 0
        kind, reason = found
        event = entry.data.get("event") if isinstance(entry.data.get("event"), dict) else {}
        assert isinstance(event, dict)
        row = self.conn.execute(
            "INSERT INTO safety_incidents (ledger_idx, station, node_seq, at, kind, rule, message, person,"
            " job) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
            (
                idx,
                entry.node,
                entry.node_seq,
                history.parse_time(entry.ts),
                kind,
                reason.get("rule"),
                reason.get("message"),
                event.get("person") or None,
                event.get("job") or None,
            ),
        ).fetchone()
        return 1 if row else 0


@dataclass(frozen=True, slots=True)
class Incident:
    ledger_idx: int
    station: str
    node_seq: int
    at: datetime
    kind: str
    rule: str | None
    message: str | None
    person: str | None
    job: str | None
    cause: str | None = None
    action: str | None = None
    reported_by: str | None = None

    def json(self) -> dict[str, Any]:
        return {
            "incident": self.ledger_idx,
            "station": self.station,
            "at": self.at.isoformat(),
            "kind": self.kind,
            "rule": self.rule,
            "message": self.message,
            "person": self.person,
            "job": self.job,
            "report": {"cause": self.cause, "action": self.action, "by": self.reported_by}
            if self.cause
            else None,
        }


def incidents(
    conn: psycopg.Connection[Any], *, station: str | None = None, limit: int = 500
) -> list[Incident]:
    """Incidents newest first, each with its latest report (if a safety lead completed it)."""
    rows = conn.execute(
        "SELECT i.ledger_idx, i.station, i.node_seq, i.at, i.kind, i.rule, i.message, i.person, i.job,"
        " r.cause, r.action, r.reported_by FROM safety_incidents i LEFT JOIN LATERAL"
        " (SELECT cause, action, reported_by FROM safety_reports WHERE ledger_idx = i.ledger_idx"
        "  ORDER BY report_id DESC LIMIT 1) r ON true"
        " WHERE (%s::text IS NULL OR i.station = %s) ORDER BY i.at DESC, i.ledger_idx DESC LIMIT %s",
        (station, station, limit),
    ).fetchall()
    return [Incident(*row) for row in rows]


def trends(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Incidents per station, kind and week."""
    rows = conn.execute(
        "SELECT date_trunc('week', at), station, kind, count(*) FROM safety_incidents"
        " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ).fetchall()
    return [{"week": w.isoformat()[:10], "station": s, "kind": k, "count": int(n)} for w, s, k, n in rows]


class Ledger(Protocol):
    def append(self, *, kind: str, subject: str, data: Mapping[str, Any], actor: str) -> Any: ...


def report(
    conn: psycopg.Connection[Any],
    ledger: Ledger,
    *,
    incident: int,
    cause: str,
    action: str,
    by: str,
    now: datetime | None = None,
) -> Incident:
    """A safety lead's report on ``incident`` (ledger first); :class:`ReportError` names what is wrong."""
    if not cause.strip():
        raise ReportError("cause: say what caused the incident")
    if not action.strip():
        raise ReportError("action: say what was done about it")
    found = conn.execute("SELECT 1 FROM safety_incidents WHERE ledger_idx = %s", (incident,)).fetchone()
    if found is None:
        raise ReportError(f"incident: no safety incident {incident}")
    moment = now or datetime.now(UTC)
    entry = ledger.append(
        kind="safety.incident_reported",
        subject=f"incident/{incident}",
        data={"incident": incident, "cause": cause.strip(), "action": action.strip()},
        actor=by,
    )
    conn.execute(
        "INSERT INTO safety_reports (ledger_idx, cause, action, reported_by, reported_at, entry_seq)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (incident, cause.strip(), action.strip(), by, moment, int(getattr(entry, "node_seq", 0))),
    )
    return next(i for i in incidents(conn, limit=10_000) if i.ledger_idx == incident)
