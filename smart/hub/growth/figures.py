"""Growth's figures, from the PO statuses the Floor published (each one a ``job.handoff`` in the ledger).

Business never reads the ledger itself: what it counts is the subset the
Floor published from it, one record per station and job. Per client and
process (the station when no process is named): jobs handed off, the median
turnaround from release to hand-off in hours, the share handed off by the
line's due day, and the share accepted (yield); a figure with nothing to be
computed from is ``None``, never 0.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from smart.hub.published.feed import PublishedRecord


@dataclass(frozen=True, slots=True)
class Figures:
    client: str
    process: str
    jobs: int
    turnaround_h: float | None
    on_time: float | None
    yield_: float | None


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def figures(records: Iterable[PublishedRecord]) -> list[Figures]:
    groups: dict[tuple[str, str], list[PublishedRecord]] = defaultdict(list)
    for record in records:
        body = record.body
        key = (
            str(body.get("client") or "unknown"),
            str(body.get("process") or body.get("station") or "unknown"),
        )
        groups[key].append(record)
    found = []
    for (client, process), group in sorted(groups.items()):
        hours, on_time, accepted = [], [], []
        for record in group:
            released, handed = _when(record.body.get("released_at")), _when(record.body.get("handed_off_at"))
            if released and handed:
                hours.append((handed - released).total_seconds() / 3600)
            due = record.body.get("due")
            if isinstance(due, str) and handed:
                on_time.append(handed.date() <= date.fromisoformat(due[:10]))
            if isinstance(record.body.get("accepted"), bool):
                accepted.append(bool(record.body["accepted"]))
        found.append(
            Figures(
                client,
                process,
                len(group),
                round(statistics.median(hours), 2) if hours else None,
                round(sum(on_time) / len(on_time), 3) if on_time else None,
                round(sum(accepted) / len(accepted), 3) if accepted else None,
            )
        )
    return found
