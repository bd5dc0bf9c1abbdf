"""HubQuery: typed questions at a hub, matched to a small grammar and answered from that hub's own data.

Each hub answers only what it holds: the Vault who is due for an eye exam
(SMART-ID's records), Business the status of a PO (its published subset).
A question another hub would answer is refused by name ("the Business hub
answers that"), never looked up across the boundary. The grammar is a list
of patterns, as the station's NodeQuery keeps one, so the spoken form
(pocketsphinx with a hub grammar) can reuse it later.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from smart import intervals
from smart.access.records import RecordKind
from smart.hub.published import feed
from smart.hub.vault.smartid import SmartId

#: Near vision is retested every 12 months (NAS410 / the penetrant contract's pt-near-vision).
EYE_EXAM_EVERY = intervals.parse("12 months")


@dataclass(frozen=True, slots=True)
class Answer:
    question: str
    topic: str
    text: str
    rows: tuple[dict[str, str], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    pattern: re.Pattern[str]
    hub: str


TOPICS = (
    Topic("eye-exams-due", re.compile(r"\bdue\b.*\beye exams?\b|\beye exams?\b.*\bdue\b"), "vault"),
    Topic("po-status", re.compile(r"\b(?:status|where)\b.*\bpo\b\s*-?\s*(?P<po>[a-z0-9-]+)"), "business"),
    Topic("gauges-overdue", re.compile(r"\b(?:gauges?|equipment|calibrations?)\b.*\boverdue\b"), "floor"),
)


def topic_of(question: str) -> tuple[Topic, re.Match[str]] | None:
    said = " ".join(question.lower().replace("?", " ").split())
    for topic in TOPICS:
        match = topic.pattern.search(said)
        if match is not None:
            return topic, match
    return None


class HubQuery:
    """One hub's answers; ``smartid`` on the Vault, ``business_url`` (its own database login) on Business."""

    def __init__(
        self,
        hub: str,
        *,
        smartid: SmartId | None = None,
        business_url: str | None = None,
        today: Callable[[], date] = date.today,
    ) -> None:
        self.hub = hub
        self.smartid = smartid
        self.business_url = business_url
        self.today = today

    def ask(self, question: str) -> Answer:
        if not question.strip():
            raise ValueError("question: say what you want to know, e.g. 'status of PO 4411'")
        found = topic_of(question)
        if found is None:
            return Answer(
                question,
                "unknown",
                "I do not know that question. Try: "
                + ", ".join(
                    ("who is due for an eye exam this month", "status of PO 4411", "which gauges are overdue")
                ),
            )
        topic, match = found
        if topic.hub != self.hub and self.hub != "all":
            return Answer(question, topic.name, f"the {topic.hub.title()} hub answers that, not this one")
        if topic.name == "eye-exams-due":
            return self._eye_exams(question)
        if topic.name == "po-status":
            return self._po_status(question, match["po"])
        return Answer(question, topic.name, "this hub keeps no equipment register to answer from")

    def _eye_exams(self, question: str) -> Answer:
        assert self.smartid is not None
        today = self.today()
        month_end = date(today.year + (today.month == 12), today.month % 12 + 1, 1)
        rows = []
        for person in self.smartid.people():
            exams = [
                r
                for r in self.smartid.records(person.employee_id)
                if r.kind is RecordKind.EYE_EXAM and r.test == "near_vision"
            ]
            if not exams:
                rows.append({"employee": person.employee_id, "name": person.name, "due": "none on file"})
                continue
            due = intervals.due(max(r.on for r in exams), EYE_EXAM_EVERY)
            if due < month_end:
                rows.append({"employee": person.employee_id, "name": person.name, "due": due.isoformat()})
        names = ", ".join(f"{r['name']} ({r['due']})" for r in rows) or "no one"
        return Answer(question, "eye-exams-due", f"due for an eye exam this month: {names}", tuple(rows))

    def _po_status(self, question: str, po: str) -> Answer:
        assert self.business_url is not None
        wanted = po.upper().removeprefix("PO-")
        rows = [
            {
                "po": str(r.body.get("po")),
                "line": str(r.body.get("line")),
                "status": str(r.body.get("status")),
                "station": str(r.body.get("station")),
                "at": str(r.body.get("handed_off_at") or r.published_at),
            }
            for r in feed.records(self.business_url, "po-status")
            if str(r.body.get("po", "")).upper().removeprefix("PO-") == wanted
        ]
        if not rows:
            return Answer(question, "po-status", f"PO {po.upper()}: nothing published to this hub yet")
        said = "; ".join(f"line {r['line']} {r['status']} at {r['station']}" for r in rows)
        return Answer(question, "po-status", f"PO {po.upper()}: {said}", tuple(rows))
