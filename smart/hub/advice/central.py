"""AI Central's run: read the records, find what is worth a look, issue each finding once (``advice.issued``).

Each finding goes on AI Central's own ledger node (``ai-central``, :mod:`smart.hub.service_log`),
which the hub's gathering takes into the hub log like any hub service's: who (``ai-central``),
the suggestion, its figures and its evidence (the hub log entries and hub records behind it).
An unchanged finding has the same fingerprint and is not issued again, however often the
analysis runs; a finding whose evidence grew is a new entry.

Advisory only: AI Central holds no NATS connection and writes nothing but its own node log, so
no station reads it and no decision can depend on it (``tests/hub/advice`` shows both).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import structlog

from smart.hub.advice import findings as f
from smart.hub.advice import sources
from smart.hub.service_log import ServiceNodeLog

log = structlog.get_logger("smart.hub.advice")

#: AI Central's ledger node (and its key's name).
AI_CENTRAL = "ai-central"
ISSUED = "advice.issued"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Advice:
    """One finding and, once issued, where its ``advice.issued`` entry is on AI Central's node."""

    finding: f.Finding
    node_seq: int | None


@dataclass(frozen=True, slots=True)
class Analysis:
    at: datetime
    advice: tuple[Advice, ...]
    unread: tuple[str, ...]
    #: How many were issued by this run (0 on a page view or an unchanged re-run).
    issued_now: int = 0


class AiCentral:
    """The analysis over the hub's database (app role), issuing onto ``ledger``."""

    def __init__(
        self,
        url: str,
        ledger: ServiceNodeLog,
        *,
        zone: ZoneInfo,
        thresholds: f.Thresholds | None = None,
        clock: Callable[[], datetime] = utc_now,
        vault_url: str | None = None,
    ) -> None:
        self.url = url
        #: Where SMART-ID's credentials are read (the Vault's database); ``None``: on ``url``, if held there.
        self.vault_url = vault_url
        self.ledger = ledger
        self.zone = zone
        self.thresholds = thresholds or f.Thresholds()
        self.clock = clock
        #: The last run's analysis (what the page shows while it is fresh: a page view reads no log).
        self.last: Analysis | None = None

    def findings(self) -> tuple[list[f.Finding], tuple[str, ...], datetime]:
        now = self.clock()
        t = self.thresholds
        # Two windows for the rates, and enough days back for a chart's baseline and a check's trend.
        back = max(2 * t.window, timedelta(days=90))
        with psycopg.connect(self.url, autocommit=True) as conn:
            facts = sources.read(conn, now, looking_back=back, due_within=t.due_within)
        if self.vault_url is not None:
            with psycopg.connect(self.vault_url, autocommit=True) as vault:
                facts = sources.with_people(vault, facts, now, due_within=t.due_within)
        return f.analyse(facts, now, self.zone, t), facts.unread, now

    def issued(self) -> dict[str, int]:
        """Fingerprint → node_seq of every ``advice.issued`` on the node."""
        return {str(e.data.get("fingerprint")): e.node_seq for e in self.ledger.entries() if e.kind == ISSUED}

    def analyse(self) -> Analysis:
        """The findings now, each with its entry if already issued (what the page shows); writes nothing."""
        found, unread, now = self.findings()
        issued = self.issued()
        return Analysis(now, tuple(Advice(x, issued.get(x.fingerprint)) for x in found), unread)

    def run(self) -> Analysis:
        """Issue every finding not issued before, in one append; the analysis with their entries."""
        found, unread, now = self.findings()
        issued = self.issued()
        fresh = [x for x in found if x.fingerprint not in issued]
        if fresh:
            entries = self.ledger.append_many(
                [{"kind": ISSUED, "subject": x.key, "data": _entry_data(x, now)} for x in fresh],
                actor=AI_CENTRAL,
            )
            for x, entry in zip(fresh, entries, strict=True):
                issued[x.fingerprint] = entry.node_seq
                log.info(
                    "advice.issued",
                    kind=x.kind,
                    key=x.key,
                    station=x.station,
                    node=AI_CENTRAL,
                    entry=entry.node_seq,
                )
        self.last = Analysis(
            now, tuple(Advice(x, issued.get(x.fingerprint)) for x in found), unread, len(fresh)
        )
        return self.last

    def latest(self, max_age: timedelta = timedelta(minutes=15)) -> Analysis:
        """The last run's analysis if it is at most ``max_age`` old, else a fresh one (recording nothing)."""
        if self.last is not None and self.clock() - self.last.at <= max_age:
            return self.last
        return self.analyse()


def _entry_data(finding: f.Finding, now: datetime) -> dict[str, Any]:
    return {**finding.to_json(), "advisory": True, "analysedAt": now.isoformat()}
