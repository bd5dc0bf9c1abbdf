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
from smart.ledger.entry import Entry

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
        # usage_seen shares the cursor: both tables are written from the same pass, so the cursor
        # is the larger of their highest indexes.
        if self._next is None:
            row = self.conn.execute(
                "SELECT greatest((SELECT max(ledger_idx) FROM equipment_uses), "
                "(SELECT max(ledger_idx) FROM usage_seen))"
            ).fetchone()
            self._next = int(row[0]) + 1 if row and row[0] is not None else 0
        return super().index_once()

    def take(self, idx: int, entry: Entry) -> int:
        data = entry.data
        if entry.kind == USAGE:
            value = data.get("value") if isinstance(data.get("value"), dict) else None
            if value is None:
                return 0
            return self.conn.execute(
                "INSERT INTO usage_seen (ledger_idx, equipment, task, station, since_service, total) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (
                    idx,
                    str(value.get("equipment")),
                    str(value.get("task")),
                    entry.node,
                    float(value.get("since_service") or 0.0),
                    float(value.get("total") or 0.0),
                ),
            ).rowcount
        if data.get("outcome") == "deny":
            return 0
        event = data.get("event") if isinstance(data.get("event"), dict) else {}
        assert isinstance(event, dict)
        job, equipment = event.get("job"), event.get("equipment")
        at = _time(event.get("at")) or _time(entry.ts)
        if not isinstance(job, str) or not job or not isinstance(equipment, list) or at is None:
            return 0
        names = sorted({e for e in equipment if isinstance(e, str) and e})
        if not names:
            return 0
        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO equipment_uses (ledger_idx, equipment, station, job, at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [(idx, name, entry.node, job, at) for name in names],
            )
        return 1


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
