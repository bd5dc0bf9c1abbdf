"""Recall (AS9100D 7.1.5.2): which jobs an instrument served, from the stations' decisions on the hub log.

Every allowed ``module.decision`` a station records names the equipment of
its event and the job; :class:`EquipmentUses` follows the hub log and keeps
one row per (entry, equipment) in ``maintenance.equipment_uses``, indexed by
equipment and time, so the impact list of an instrument found out of
tolerance is one index range scan (:func:`impact`), not a pass over the log.
It also keeps each ``record.usage`` entry's counts (``usage_seen``), so a
maintenance order's reset keeps the counter's lifetime total. Like every
log index the tables are append-only and can be rebuilt from the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
import structlog

from smart.hub import log_index
from smart.ledger.entry import Entry, EntryError

log = structlog.get_logger("smart.hub.maintenance.recall")

DECISION = "module.decision"
USAGE = "record.usage"


@dataclass(frozen=True, slots=True)
class Served:
    """One job an instrument served, at which station, first and last use in the window."""

    job: str
    station: str
    first_use: datetime
    last_use: datetime


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


class EquipmentUses(log_index.LogIndex):
    """Indexes the equipment each allowed station decision named, and the stations' usage counts."""

    kinds = (DECISION, USAGE)
    table = "equipment_uses"

    @classmethod
    def connect(cls, url: str) -> EquipmentUses:
        return cls(psycopg.connect(url, autocommit=True), url=url)

    def index_once(self) -> int:
        """Index what the log added since the last pass, a slice per transaction (one commit per slice).

        The base class inserts entry by entry; a hub catching up with a million-entry log would pay a
        commit for each, so the rows of a slice go in together. ``usage_seen`` shares the cursor: the
        cursor is one past the larger of both tables' highest index.
        """
        if self._next is None:
            row = self.conn.execute(
                "SELECT greatest((SELECT max(ledger_idx) FROM equipment_uses), "
                "(SELECT max(ledger_idx) FROM usage_seen))"
            ).fetchone()
            self._next = int(row[0]) + 1 if row and row[0] is not None else 0
        size_row = self.conn.execute("SELECT coalesce(max(size), 0) FROM ledger_checkpoints").fetchone()
        size = int(size_row[0]) if size_row else 0
        added = 0
        while self._next < size:
            stop = min(size, self._next + log_index.SLICE * 4)
            rows = self.conn.execute(
                "SELECT idx, entry FROM ledger_entries WHERE idx >= %s AND idx < %s AND "
                "(position(%s::bytea in entry) > 0 OR position(%s::bytea in entry) > 0) ORDER BY idx",
                (self._next, stop, f'"kind":"{DECISION}"'.encode(), f'"kind":"{USAGE}"'.encode()),
            ).fetchall()
            uses: list[tuple[int, str, str, str, datetime]] = []
            counts: list[tuple[int, str, str, str, float, float]] = []
            for idx, raw in rows:
                try:
                    entry = Entry.from_bytes(bytes(raw), canonical=False)
                except EntryError as err:
                    log.error("recall.unreadable_entry", index=idx, error=str(err))
                    continue
                if entry.kind == USAGE:
                    counts.extend(_counts(int(idx), entry))
                elif entry.kind == DECISION:
                    uses.extend(_uses(int(idx), entry))
            with self.conn.transaction(), self.conn.cursor() as cur:
                if uses:
                    cur.executemany(
                        "INSERT INTO equipment_uses (ledger_idx, equipment, station, job, at) "
                        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        uses,
                    )
                if counts:
                    cur.executemany(
                        "INSERT INTO usage_seen (ledger_idx, equipment, task, station, since_service, total) "
                        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        counts,
                    )
            added += len({u[0] for u in uses}) + len(counts)
            self._next = stop
        return added

    def take(self, idx: int, entry: Entry) -> int:
        uses, counts = _uses(idx, entry), _counts(idx, entry)
        with self.conn.cursor() as cur:
            if uses:
                cur.executemany(
                    "INSERT INTO equipment_uses (ledger_idx, equipment, station, job, at) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    uses,
                )
            if counts:
                cur.executemany(
                    "INSERT INTO usage_seen (ledger_idx, equipment, task, station, since_service, total) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    counts,
                )
        return 1 if uses or counts else 0


def _counts(idx: int, entry: Entry) -> list[tuple[int, str, str, str, float, float]]:
    """A ``record.usage`` entry's count (the station's record of one equipment's upkeep counter)."""
    if entry.kind != USAGE:
        return []
    value = entry.data.get("value")
    if not isinstance(value, dict):
        return []
    return [
        (
            idx,
            str(value.get("equipment")),
            str(value.get("task")),
            entry.node,
            float(value.get("since_service") or 0.0),
            float(value.get("total") or 0.0),
        )
    ]


def _uses(idx: int, entry: Entry) -> list[tuple[int, str, str, str, datetime]]:
    """The equipment an allowed decision's event named, with its job and time (a refusal served nothing)."""
    data = entry.data
    if entry.kind != DECISION or data.get("outcome") == "deny":
        return []
    event = data.get("event")
    if not isinstance(event, dict):
        return []
    job, equipment = event.get("job"), event.get("equipment")
    at = _time(event.get("at")) or _time(entry.ts)
    if not isinstance(job, str) or not job or not isinstance(equipment, list) or at is None:
        return []
    names = sorted({e for e in equipment if isinstance(e, str) and e})
    return [(idx, name, entry.node, job, at) for name in names]


def impact(
    conn: psycopg.Connection[Any], *, equipment: str, since: datetime | None, until: datetime
) -> list[Served]:
    """Every job ``equipment`` served from ``since`` (last good calibration; ``None``: ever) to ``until``."""
    rows = conn.execute(
        "SELECT job, station, min(at) AS first_use, max(at) AS last_use FROM equipment_uses "
        "WHERE equipment = %s AND at >= coalesce(%s, '-infinity'::timestamptz) AND at <= %s "
        "GROUP BY job, station ORDER BY min(at), job",
        (equipment, since, until),
    ).fetchall()
    return [
        Served(_col(r, 0, "job"), _col(r, 1, "station"), _col(r, 2, "first_use"), _col(r, 3, "last_use"))
        for r in rows
    ]


def _col(row: Any, index: int, name: str) -> Any:
    return row[name] if isinstance(row, dict) else row[index]
