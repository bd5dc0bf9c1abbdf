"""Feedback: what a client says about a PO; a complaint is also a ``capa.requested`` ledger entry.

A PO is known here only through the published subset (its PO status), so
feedback on a PO Business was never told of is refused, naming the PO. A
complaint gets a reference (``FB-<n>``) and one entry on the ``feedback``
ledger node, kind ``capa.requested``, subject ``po:<po>``, data the
reference, line and text; QACentral opens its CAPA from that entry in the
hub log (it follows the log for ``capa.requested`` and names the reference),
so nothing from Business writes into the Vault.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from smart.hub import migrations
from smart.hub.published import feed
from smart.hub.service_log import ServiceLedger

SCHEMA = "feedback"
MIGRATIONS = Path(__file__).parent / "migrations"
GRANTS = {"entries": "SELECT, INSERT, UPDATE"}
NODE = "feedback"
CAPA_REQUESTED = "capa.requested"


class FeedbackError(ValueError):
    """Feedback refused; the message names the field and what was wrong."""


def migrate(owner_url: str, *, role: str) -> list[int]:
    return migrations.apply(owner_url, schema=SCHEMA, directory=MIGRATIONS, grants=GRANTS, app_role=role)


@dataclass(frozen=True, slots=True)
class Received:
    reference: str
    po: str
    kind: str
    ledger_seq: int | None


@dataclass(frozen=True, slots=True)
class Entry:
    reference: str
    po: str
    line: str | None
    kind: str
    text: str
    received_at: datetime
    received_by: str
    ledger_seq: int | None


class Feedback:
    def __init__(self, url: str, ledger: ServiceLedger) -> None:
        self.url = url
        self.ledger = ledger

    def receive(self, *, po: str, line: str | None, kind: str, text: str, actor: str) -> Received:
        if kind not in ("feedback", "complaint"):
            raise FeedbackError(f"kind: {kind!r} is neither 'feedback' nor 'complaint'")
        if not text.strip():
            raise FeedbackError("text: empty")
        if not any(r.body.get("po") == po for r in feed.records(self.url, "po-status")):
            raise FeedbackError(f"po: {po!r} is not a PO published to this hub")
        with psycopg.connect(self.url) as conn, conn.transaction():
            count = conn.execute("SELECT count(*) FROM feedback.entries").fetchone()
            reference = f"FB-{(int(count[0]) if count else 0) + 1:05d}"
            conn.execute(
                "INSERT INTO feedback.entries (reference, po, line, kind, text, received_at, received_by)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (reference, po, line, kind, text.strip(), datetime.now(UTC), actor),
            )
            seq = None
            if kind == "complaint":
                entry = self.ledger.append(
                    kind=CAPA_REQUESTED,
                    subject=f"po:{po}",
                    data={"reference": reference, "po": po, "line": line, "complaint": text.strip()},
                    actor=actor,
                )
                seq = entry.node_seq
                conn.execute(
                    "UPDATE feedback.entries SET ledger_seq = %s WHERE reference = %s", (seq, reference)
                )
        return Received(reference, po, kind, seq)

    def entries(self) -> list[Entry]:
        """What clients said, newest first (the Feedback page's list)."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT reference, po, line, kind, text, received_at, received_by, ledger_seq"
                " FROM feedback.entries ORDER BY received_at DESC, reference DESC"
            ).fetchall()
        return [Entry(*row) for row in rows]
