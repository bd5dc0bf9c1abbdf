"""HubQuery: typed and spoken questions at a hub, answered from that hub's own data only.

Each hub answers only what it holds: the Vault who is due for an eye exam
(SMART-ID's records), Business the status of a PO (its published subset),
the Floor which gauges are overdue (MaintenanceHub's register). A question
another hub would answer is refused by name ("the Business hub answers
that"), never looked up across the boundary: each hub's HubQuery is built
with its own connections only. Typed questions are matched to a few
patterns; spoken ones (:meth:`HubQuery.hear`) are recognised against the
hub grammar (:mod:`.grammar`, :mod:`.speech`) and the words heard are then
read as if typed, so both answer alike. Speech that is no question is
answered "not understood", never a guess.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from smart import intervals
from smart.access.records import RecordKind
from smart.hub.hubquery import grammar, speech
from smart.hub.published import feed
from smart.hub.vault.smartid import SmartId

#: Near vision is retested every 12 months (NAS410 / the penetrant contract's pt-near-vision).
EYE_EXAM_EVERY = intervals.parse("12 months")


@dataclass(frozen=True, slots=True)
class Answer:
    """``question`` as read (typed, or what was heard in its typed form); ``heard`` the recogniser's words."""

    question: str
    topic: str
    text: str
    rows: tuple[dict[str, str], ...] = field(default=())
    heard: str | None = None


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


NOT_UNDERSTOOD = "not-understood"
EXAMPLES = "who is due for an eye exam this month; status of PO 4411; which gauges are overdue"
ASKABLE = "one of the hub's questions. You can ask: " + EXAMPLES


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
        maintenance_url: str | None = None,
        today: Callable[[], date] = date.today,
        recogniser: speech.HubRecogniser | None = None,
    ) -> None:
        self.hub = hub
        self.smartid = smartid
        self.business_url = business_url
        self.maintenance_url = maintenance_url
        self.today = today
        self.recogniser = recogniser or speech.HubRecogniser()

    def ask(self, question: str, *, heard: str | None = None) -> Answer:
        if not question.strip():
            raise ValueError("question: say what you want to know, e.g. 'status of PO 4411'")
        found = topic_of(question)
        if found is None:
            return Answer(question, NOT_UNDERSTOOD, f"Not understood: that is not {ASKABLE}", heard=heard)
        topic, match = found
        if topic.hub != self.hub and self.hub != "all":
            text = f"the {topic.hub.title()} hub answers that, not this one"
            return Answer(question, topic.name, text, heard=heard)
        if topic.name == "eye-exams-due":
            answer = self._eye_exams(question)
        elif topic.name == "po-status":
            answer = self._po_status(question, match["po"])
        else:
            answer = self._gauges_overdue(question)
        return dataclasses.replace(answer, heard=heard)

    def hear(self, audio: bytes | Path) -> Answer:
        """Answer a spoken question (a WAV recording); :class:`~.speech.SpeechError` if it cannot be read."""
        pcm = speech.pcm16k(audio)
        result = self.recogniser.recognise(pcm, po_numbers=self.po_numbers())
        if result.other or not result.text:
            why = f"that is not {ASKABLE}" if result.other else f"no question was heard. Ask: {EXAMPLES}"
            return Answer("", NOT_UNDERSTOOD, f"Not understood: {why}", heard="")
        return self.ask(grammar.typed(result.text), heard=result.text)

    def po_numbers(self) -> tuple[str, ...]:
        """The POs this hub holds (for the spoken grammar): Business's published ones, else none."""
        if self.business_url is None:
            return ()
        return tuple(sorted({str(r.body.get("po")) for r in feed.records(self.business_url, "po-status")}))

    def _gauges_overdue(self, question: str) -> Answer:
        """MaintenanceHub's register: equipment whose calibration fell due before today (shop time)."""
        if self.maintenance_url is None:
            return Answer(question, "gauges-overdue", "this hub keeps no equipment register to answer from")
        with psycopg.connect(self.maintenance_url, autocommit=True, row_factory=dict_row) as conn:
            found = conn.execute(
                "SELECT asset_id, kind, station, calibration_due FROM maintenance.equipment "
                "WHERE calibration_due < %s ORDER BY calibration_due, asset_id LIMIT 200",
                (self.today(),),
            ).fetchall()
        rows = tuple(
            {"asset": r["asset_id"], "kind": r["kind"], "station": r["station"], "due": str(due)}
            for r in found
            if (due := r["calibration_due"]) is not None
        )
        said = ", ".join(f"{r['asset']} at {r['station']} (due {r['due']})" for r in rows) or "none"
        return Answer(question, "gauges-overdue", f"overdue for calibration: {said}", rows)

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
