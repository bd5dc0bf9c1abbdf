"""What AI Central reads: the hub log's decisions and checks, MaintenanceHub's due dates, SMART-ID's people.

Read-only, on the caller's connection (the app role's SELECT). The log is read by its entries'
canonical bytes (``"kind":"<kind>"``, as :mod:`smart.hub.log_index` picks them) and only the
entries of the last ``since`` are kept. A source this hub does not hold (the Vault's
``vault.credentials``, read only on the Vault's database, so never from the Floor) or may not
read (a schema not migrated yet) is named in :attr:`~smart.hub.advice.findings.Facts.unread`
and the rest is analysed: advice is never a
reason to fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
import structlog

from smart.contracts import history
from smart.contracts.history import HistoryError
from smart.hub.advice.findings import Check, Decision, Due, Facts, Reading
from smart.ledger.entry import Entry, EntryError

log = structlog.get_logger("smart.hub.advice")

DECISION_KINDS = ("gate.decision", "module.decision")
CHECK_KIND = "record.check"
PEOPLE = "vault.credentials"
#: Why a source was not read on a hub that does not hold it (the Floor, for SMART-ID's people).
NOT_HELD = "held by the Vault hub"


def _entries(conn: psycopg.Connection[Any], kinds: tuple[str, ...]) -> Iterator[tuple[int, Entry]]:
    marks = [f'"kind":"{kind}"'.encode() for kind in kinds]
    where = " OR ".join("position(%s::bytea in entry) > 0" for _ in marks)
    with conn.cursor() as cursor:
        for idx, raw in cursor.execute(
            f"SELECT idx, entry FROM ledger_entries WHERE {where} ORDER BY idx", marks
        ):
            try:
                entry = Entry.from_bytes(bytes(raw), canonical=False)
            except EntryError as err:
                log.error("advice.unreadable_entry", index=idx, error=str(err))
                continue
            if entry.kind in kinds:
                yield int(idx), entry


def _time(value: Any, fallback: str) -> datetime:
    try:
        return history.parse_time(str(value or fallback))
    except HistoryError:
        return history.parse_time(fallback)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def decisions(conn: psycopg.Connection[Any], since: datetime) -> list[Decision]:
    """Every station decision since ``since``: refused when its outcome is ``deny``, with the deny rules."""
    found = []
    for idx, entry in _entries(conn, DECISION_KINDS):
        data = entry.data
        event = data.get("event") if isinstance(data.get("event"), dict) else {}
        assert isinstance(event, dict)
        at = _time(event.get("at"), entry.ts)
        if at < since:
            continue
        attributes = event.get("attributes") if isinstance(event.get("attributes"), dict) else {}
        assert isinstance(attributes, dict)
        part = attributes.get("part") or attributes.get("partNumber")
        reasons = [r for r in data.get("reasons") or () if isinstance(r, dict)]
        rules = tuple(
            str(r.get("rule")) for r in reasons if (r.get("severity") or "deny") == "deny" and r.get("rule")
        )
        found.append(
            Decision(
                ledger_idx=idx,
                station=entry.node,
                at=at,
                refused=data.get("outcome") == "deny",
                rules=rules,
                part=str(part) if part else None,
            )
        )
    return found


def checks_and_readings(conn: psycopg.Connection[Any], since: datetime) -> tuple[list[Check], list[Reading]]:
    """Every station check done since ``since`` (``record.check``), and the readings it took."""
    checks, readings = [], []
    for idx, entry in _entries(conn, (CHECK_KIND,)):
        value = entry.data.get("value")
        if entry.data.get("kind") != "check" or not isinstance(value, dict) or not value.get("check"):
            continue
        at = _time(value.get("at"), entry.ts)
        if at < since:
            continue
        checks.append(Check(ledger_idx=idx, station=entry.node, check=str(value["check"]), at=at))
        taken = value.get("readings") if isinstance(value.get("readings"), dict) else {}
        assert isinstance(taken, dict)
        for characteristic, reading in sorted(taken.items()):
            number = _number(reading.get("value")) if isinstance(reading, dict) else _number(reading)
            if number is None:
                continue
            unit = reading.get("unit") if isinstance(reading, dict) else None
            readings.append(Reading(idx, entry.node, str(characteristic), number, at, unit))
    return checks, readings


def equipment_due(conn: psycopg.Connection[Any], until: date) -> list[Due]:
    """Calibrations and furnace surveys (TUS, SAT) due on or before ``until``, from MaintenanceHub."""
    rows = conn.execute(
        "SELECT asset_id, station, what, due FROM ("
        " SELECT asset_id, station, 'calibration' AS what, calibration_due AS due FROM maintenance.equipment"
        " UNION ALL SELECT asset_id, station, 'TUS', tus_due FROM maintenance.equipment"
        " UNION ALL SELECT asset_id, station, 'SAT', sat_due FROM maintenance.equipment) d"
        " WHERE due IS NOT NULL AND due <= %s ORDER BY due, asset_id",
        (until,),
    ).fetchall()
    return [
        Due(
            what=str(what),
            of="equipment",
            name=str(asset),
            station=str(station),
            due=due,
            href=f"/maintenance/equipment/{asset}",
        )
        for asset, station, what, due in rows
    ]


def people_due(conn: psycopg.Connection[Any], until: date) -> list[Due]:
    """Active credentials (certifications, eye exams, training) expiring by ``until`` and not yet renewed.

    Named by badge only: the advice goes on the ledger, and names are personal data kept in the Vault.
    """
    rows = conn.execute(
        "SELECT c.badge_id, c.kind, c.scope, c.expires_at FROM vault.credentials c"
        " WHERE c.status = 'active' AND c.kind <> 'access' AND c.expires_at::date <= %s"
        " AND NOT EXISTS (SELECT 1 FROM vault.credentials r WHERE r.renews = c.credential_id)"
        " ORDER BY c.expires_at, c.badge_id",
        (until,),
    ).fetchall()
    found = []
    for badge, kind, scope, expires in rows:
        what = str(kind)
        if isinstance(scope, dict) and scope.get("method"):
            what = f"{kind} {scope['method']}" + (f" level {scope['level']}" if scope.get("level") else "")
        found.append(
            Due(
                what=what,
                of="person",
                name=str(badge),
                station=None,
                due=expires.date(),
                href=f"/credentials?badge={badge}",
            )
        )
    return found


def _try(conn: psycopg.Connection[Any], name: str, unread: list[str], read: Any, *args: Any) -> Any:
    try:
        with conn.transaction():
            return read(conn, *args)
    except (
        psycopg.errors.UndefinedTable,
        psycopg.errors.InvalidSchemaName,
        psycopg.errors.InsufficientPrivilege,
    ) as err:
        unread.append(f"{name}: {type(err).__name__}")
        log.info("advice.source_unread", source=name, error=type(err).__name__)
        return None


def with_people(
    vault: psycopg.Connection[Any], facts: Facts, now: datetime, *, due_within: timedelta
) -> Facts:
    """``facts`` with the people's credentials read from the Vault's own database instead."""
    unread = [u for u in facts.unread if not u.startswith(PEOPLE)]
    people = _try(vault, PEOPLE, unread, people_due, (now + due_within).date()) or []
    dues = [d for d in facts.dues if d.of != "person"]
    return replace(facts, dues=[*dues, *people], unread=tuple(unread))


def read(
    conn: psycopg.Connection[Any], now: datetime, *, looking_back: timedelta, due_within: timedelta
) -> Facts:
    """Everything the analyses need, each source on its own (one missing source does not stop the rest)."""
    since = now - looking_back
    until = (now + due_within).date()
    unread: list[str] = []
    found_decisions = _try(conn, "ledger decisions", unread, decisions, since) or []
    checks_readings: tuple[list[Check], list[Reading]] = _try(
        conn, "ledger checks", unread, checks_and_readings, since
    ) or ([], [])
    equipment = _try(conn, "maintenance.equipment", unread, equipment_due, until) or []
    # People's credentials are the Vault's: read by :func:`with_people` on its database, never tried
    # here as a login that may not (a refusal the server would log on every run).
    unread.append(f"{PEOPLE}: {NOT_HELD}")
    return Facts(
        decisions=found_decisions,
        readings=checks_readings[1],
        checks=checks_readings[0],
        dues=equipment,
        unread=tuple(unread),
    )
