"""Answers to the station's questions, from the station's own store and nothing else.

Every answer comes from what the station holds: the contract revisions in
its store (:class:`HeldStore`: what the station's revision port says), its ledger
(:class:`ReadLog`: decisions with their reasons, job
transitions, what is shipped) and a snapshot of its facts (people's
certifications and exams, equipment calibrations) as the station runtime
built them. No answer waits for, or asks, a hub: a station that is cut off
answers exactly as one that is not.

An answer names the rule and the standard behind it, in plain words, and
says no more about a person than the asker needs: "my certification"
answers for the badge given; another person's certification gives only its
due day; a refusal's reason about a person is said aloud in full only to
that person's badge (the screen, behind the kiosk login, shows it all).
Due days follow :mod:`smart.intervals` (current through the due day, in the
contract's time zone), the same arithmetic the engine enforces.

:class:`Answer` carries ``text`` (every line, for the kiosk screen) and
``spoken`` (short enough to say aloud).
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import TypeAdapter, ValidationError

from smart import intervals, ledger
from smart.contracts import facts as f
from smart.contracts import rules
from smart.modules.node_query import questions

#: Ledger entry kinds that carry a station's decision with its reasons.
DECISION_KINDS = ("gate.decision", "module.decision")
JOB_KIND = "job.transition"
#: Job states in which no job is in hand.
_NO_JOB = {"idle", "badged-in", "handed-off"}
#: How far back (entries) the ledger is read for the last refusal or job.
LOOK_BACK = 5000
_PAGE = 200
#: Reasons said aloud before "and N more" (the screen shows all).
_SPOKEN_REASONS = 2

_RULE = TypeAdapter(rules.Rule)


class HeldRevision(Protocol):
    """An active revision as the station holds it."""

    @property
    def contract(self) -> str: ...
    @property
    def revision(self) -> str: ...
    @property
    def envelope(self) -> bytes: ...
    @property
    def activated_at(self) -> str: ...


class RevisionChange(Protocol):
    """One change of a contract's active revision."""

    @property
    def revision(self) -> str | None: ...
    @property
    def previous(self) -> str | None: ...


class HeldStore(Protocol):
    """The station's contract revisions and shipped cursor, as answers read them."""

    def active(self) -> Sequence[HeldRevision]: ...
    def history(self, contract: str | None = None) -> Sequence[RevisionChange]: ...
    def shipped_seq(self, node: str) -> int: ...


class ReadLog(Protocol):
    """The station's ledger, read by sequence range."""

    def size(self) -> int: ...
    def entries(self, start: int, stop: int | None = None) -> Sequence[ledger.Entry]: ...


@dataclass(frozen=True, slots=True)
class Local:
    """What a station holds: the only sources an answer may read."""

    station: str
    store: HeldStore
    log: ReadLog
    facts: f.Facts = field(default_factory=f.Facts)


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer: every line for the screen (``text``) and a short form to say aloud (``spoken``)."""

    question: questions.Question | questions.NotUnderstood
    lines: tuple[str, ...]
    spoken: str
    understood: bool = True

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def to_json(self) -> dict[str, Any]:
        """The answer as a kiosk page or a ``station.<id>.node-query.ask`` reply carries it."""
        question = self.question
        return {
            "understood": self.understood,
            "topic": question.topic if isinstance(question, questions.Question) else None,
            "lines": list(self.lines),
            "spoken": self.spoken,
        }


@dataclass(frozen=True, slots=True)
class _Contract:
    """One active revision as the store holds it, read for answering (verified at activation)."""

    name: str
    revision: str
    activated_at: str
    zone: tzinfo
    not_after: datetime | None
    standards: Mapping[str, Mapping[str, Any]]
    typed_rules: tuple[rules.RuleBase, ...]

    def rule(self, rule_id: str) -> rules.RuleBase | None:
        return next((r for r in self.typed_rules if r.id == rule_id), None)

    def cite(self, rule: rules.RuleBase) -> str:
        """The standards a rule cites, in words: ``NAS410 / EN4179 … rev 5 §8.4``."""
        named: list[str] = []
        for citation in rule.cites:
            standard = self.standards.get(citation.standard, {})
            title = str(standard.get("title", citation.standard))
            revision = standard.get("revision")
            text = f"{title} rev {revision}" if revision else title
            if citation.clause:
                text += f" §{citation.clause}"
            named.append(text)
        return "; ".join(dict.fromkeys(named))

    def short_cite(self, rule: rules.RuleBase) -> str:
        """The first standard's short title (before any parenthesis), for saying aloud."""
        for citation in rule.cites:
            title = str(self.standards.get(citation.standard, {}).get("title", citation.standard))
            return title.split("(")[0].strip()
        return ""


def _zone(name: Any) -> tzinfo:
    try:
        return ZoneInfo(str(name)) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _when(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


def contracts(store: HeldStore) -> list[_Contract]:
    """The station's active revisions, each with its rules typed (rules that do not read are skipped)."""
    found: list[_Contract] = []
    for active in store.active():
        try:
            bundle = json.loads(active.envelope)["bundle"]
        except (ValueError, KeyError, TypeError):
            continue
        typed: list[rules.RuleBase] = []
        for raw in bundle.get("rules", ()):
            try:
                typed.append(_RULE.validate_python(raw))
            except ValidationError:
                continue
        found.append(
            _Contract(
                name=active.contract,
                revision=active.revision,
                activated_at=active.activated_at,
                zone=_zone(bundle.get("timezone")),
                not_after=_when((bundle.get("window") or {}).get("notAfter")),
                standards={str(s.get("id")): s for s in bundle.get("standards", ()) if isinstance(s, dict)},
                typed_rules=tuple(typed),
            )
        )
    return found


def _day(value: date) -> str:
    return value.isoformat()


def _in_days(due: date, today: date) -> str:
    days = (due - today).days
    if days > 1:
        return f"in {days} days"
    if days == 1:
        return "tomorrow"
    if days == 0:
        return "today"
    return f"overdue by {-days} day{'s' if days != -1 else ''}"


def _last_entries(log: ReadLog, kinds: Iterable[str]) -> Iterable[ledger.Entry]:
    """The log's entries of ``kinds``, newest first, reading back at most ``LOOK_BACK`` entries."""
    wanted = set(kinds)
    stop = log.size()
    floor = max(0, stop - LOOK_BACK)
    while stop > floor:
        start = max(floor, stop - _PAGE)
        for entry in reversed(log.entries(start, stop)):
            if entry.kind in wanted:
                yield entry
        stop = start


def _short_time(ts: str) -> str:
    when = _when(ts)
    return ts if when is None else when.strftime("%Y-%m-%d %H:%M UTC")


# -- the questions --------------------------------------------------------------------------


def answer(
    question: questions.Question | questions.NotUnderstood,
    *,
    local: Local,
    badge: str | None = None,
    at: datetime | None = None,
) -> Answer:
    """Answer ``question`` from ``local``; ``badge`` is the asker (for "my certification")."""
    if isinstance(question, questions.NotUnderstood):
        message = question.message
        return Answer(question, (message,), message.split(" You can ask")[0], understood=False)
    now = at or datetime.now(UTC)
    held = contracts(local.store)
    if question.topic == "station-status":
        found = _status(question, local, held, now)
    elif question.topic == "why-refused":
        found = _why_refused(question, local, held, badge)
    elif question.topic == "certification-due":
        found = _certification(question, local, held, badge, now)
    elif question.topic == "calibration-due":
        found = _calibration(question, local, held, now)
    elif question.topic == "current-job":
        found = _current_job(question, local)
    else:
        found = _revisions(question, local, held)
    return replace(found, spoken=speakable(found.spoken))


_ISO_DAY = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_ENTRY = re.compile(r" \(ledger entry \d+\)")


def speakable(text: str) -> str:
    """``text`` as it is best said: days in words (``20 May 2027``), no ledger entry numbers."""

    def day(match: re.Match[str]) -> str:
        year, month, dom = (int(g) for g in match.groups())
        return f"{dom} {calendar.month_name[month]} {year}" if 1 <= month <= 12 else match.group(0)

    return _ENTRY.sub("", _ISO_DAY.sub(day, text))


def _status(question: questions.Question, local: Local, held: list[_Contract], now: datetime) -> Answer:
    station = local.station
    if not held:
        line = f"Station {station} holds no valid contract, so it refuses every operation (fail closed)."
        return Answer(question, (line,), line)
    expired = [c for c in held if c.not_after is not None and now >= c.not_after]
    lines: list[str] = []
    if expired:
        names = ", ".join(f"{c.name} (expired {c.not_after:%Y-%m-%d})" for c in expired)
        lines.append(f"Station {station} is blocked: contract {names}; it refuses every operation.")
    else:
        lines.append(
            f"Station {station} is enforcing {len(held)} contract{'s' if len(held) != 1 else ''}: "
            + ", ".join(f"{c.name} revision {c.revision[:8]}" for c in held)
            + "."
        )
        for c in held:
            if c.not_after is not None:
                left = _in_days(c.not_after.date(), now.date())
                lines.append(f"{c.name} is in force until {c.not_after:%Y-%m-%d %H:%M} UTC ({left}).")
    last = next(iter(_last_entries(local.log, DECISION_KINDS)), None)
    if last is not None:
        outcome = str(last.data.get("outcome", "unknown"))
        verdict = {"deny": "refused", "allow": "allowed", "warn": "allowed with a warning"}.get(
            outcome, outcome
        )
        action = last.data.get("action", "an action")
        lines.append(f"The last decision, at {_short_time(last.ts)}, {verdict} {action}.")
    size = local.log.size()
    unshipped = size - 1 - local.store.shipped_seq(station)
    if unshipped > 0:
        lines.append(f"{unshipped} ledger entr{'ies' if unshipped != 1 else 'y'} not yet sent to the hub.")
    else:
        lines.append("Every ledger entry has reached the hub.")
    return Answer(question, tuple(lines), " ".join(lines[:2] if not expired else lines[:1]))


def _why_refused(
    question: questions.Question, local: Local, held: list[_Contract], badge: str | None
) -> Answer:
    """The last refusal and every reason, with its rule and standard.

    The screen shows every reason as recorded. Said aloud, across the shop floor, a reason about a
    person (its values name one) is told in full only to that person's badge; anyone else hears
    which rule it was, not what it says about them.
    """
    denial = next(
        (e for e in _last_entries(local.log, DECISION_KINDS) if e.data.get("outcome") == "deny"), None
    )
    if denial is None:
        line = f"No operation has been refused at station {local.station}."
        return Answer(question, (line,), line)
    data = denial.data
    revisions = data.get("revisions") or {}
    judged = [c for c in held if revisions.get(c.name) == c.revision] + [
        c for c in held if revisions.get(c.name) != c.revision
    ]
    reasons = [
        r for r in data.get("reasons", ()) if isinstance(r, dict) and r.get("severity", "deny") == "deny"
    ]
    count = len(reasons)
    head = (
        f"The last refusal was of {data.get('action', 'an operation')} at {_short_time(denial.ts)} "
        f"(ledger entry {denial.node_seq}), for {count} reason{'s' if count != 1 else ''}."
    )
    lines = [head]
    spoken_parts = [head]
    for index, reason in enumerate(reasons):
        rule_id = str(reason.get("rule", "unknown rule"))
        message = str(reason.get("message", "")).rstrip(".")
        rule, contract = None, None
        for c in judged:
            rule = c.rule(rule_id)
            if rule is not None:
                contract = c
                break
        if rule is not None and contract is not None:
            cite = contract.cite(rule)
            source = f"rule {rule_id} of {contract.name}" + (f", {cite}" if cite else "")
            said = contract.short_cite(rule)
        else:
            source = f"rule {rule_id}"
            said = ""
        lines.append(f"{message}: {source}.")
        if index < _SPOKEN_REASONS:
            about = (reason.get("values") or {}).get("person")
            if about is not None and about != badge:
                message = f"the operator does not meet rule {rule_id.replace('-', ' ')}"
            sentence = message[:1].upper() + message[1:]
            spoken_parts.append(sentence + (f", under {said}." if said else "."))
    replaced = [
        f"{name} revision {str(rev)[:12]}"
        for name, rev in sorted(revisions.items())
        if any(c.name == name and c.revision != rev for c in held)
    ]
    if replaced:
        lines.append(f"That decision was judged under {', '.join(replaced)}, since replaced.")
    if count > _SPOKEN_REASONS:
        spoken_parts.append(f"And {count - _SPOKEN_REASONS} more, shown on the screen.")
    return Answer(question, tuple(lines), " ".join(spoken_parts))


def _certification(
    question: questions.Question,
    local: Local,
    held: list[_Contract],
    badge: str | None,
    now: datetime,
) -> Answer:
    own = question.person is None
    person_id = badge if own else _find_person(local.facts, question.person or "")
    if person_id is None:
        line = (
            "Badge in first, then ask about your certification."
            if own
            else f"No one called {question.person} is known at this station."
        )
        return Answer(question, (line,), line)
    person = local.facts.people.get(person_id)
    credential_rules = [(c, r) for c in held for r in c.typed_rules if isinstance(r, rules.CredentialRule)]
    if not credential_rules:
        line = f"No active contract at station {local.station} asks for a certification."
        return Answer(question, (line,), line)
    whose = "Your" if own else f"{person_id}'s"
    lines: list[str] = []
    for contract, rule in credential_rules:
        due, why = _certification_due(person, rule, contract.zone, now)
        cite = contract.cite(rule)
        source = f"rule {rule.id}" + (f", {cite}" if cite else "")
        if due is None:
            lines.append(f"{whose} {rule.method} certification is not current ({why}): {source}.")
        else:
            today = now.astimezone(contract.zone).date()
            when = f"{_day(due)}, {_in_days(due, today)}"
            lines.append(f"{whose} {rule.method} certification is due {when} ({why}): {source}.")
        level = _held_level(person, rule.method, now)
        if own and level is not None and level.rank < rule.min_level.rank:
            lines.append(
                f"You hold {level.value} in {rule.method}; {rule.min_level.value} is required to work alone."
            )
    if own and person is not None:
        for contract, exam in ((c, r) for c in held for r in c.typed_rules if isinstance(r, rules.ExamRule)):
            every = intervals.parse(exam.every)
            taken = [e.taken for e in person.exams if e.exam == exam.exam and e.passed and e.taken <= now]
            if not taken:
                lines.append(f"You have no passed {exam.exam} exam on file: rule {exam.id}.")
                continue
            due = intervals.due(max(taken).astimezone(contract.zone).date(), every)
            today = now.astimezone(contract.zone).date()
            when = f"{_day(due)}, {_in_days(due, today)}"
            lines.append(f"Your {exam.exam} exam is due {when} (every {every}): rule {exam.id}.")
    spoken = lines[0].split(": rule")[0] + "."
    return Answer(question, tuple(lines), spoken)


def _find_person(facts: f.Facts, name: str) -> str | None:
    key = questions.spoken_key(name)
    for person_id in facts.people:
        if questions.spoken_key(person_id) == key:
            return person_id
    return None


def _held_level(person: f.Person | None, method: str, now: datetime) -> rules.Level | None:
    """The highest level of a current certification in ``method``, if any."""
    levels = [
        c.level
        for c in (person.certifications if person is not None else ())
        if c.method == method and not c.revoked and c.issued <= now < c.expires
    ]
    return max(levels, key=lambda level: level.rank) if levels else None


def _certification_due(
    person: f.Person | None, rule: rules.CredentialRule, zone: tzinfo, now: datetime
) -> tuple[date | None, str]:
    """The day a person's certification for ``rule`` is last current, and what makes it due then."""
    if person is None:
        return None, "no certification on record"
    current = [
        c
        for c in person.certifications
        if c.method == rule.method and not c.revoked and c.issued <= now < c.expires
    ]
    if not current:
        return None, f"no current {rule.method} certification on record"
    cert = max(current, key=lambda c: c.level.rank)
    candidates: list[tuple[date, str]] = [
        ((cert.expires - timedelta(microseconds=1)).astimezone(zone).date(), "the certificate expires")
    ]
    if rule.recertify_every:
        every = intervals.parse(rule.recertify_every)
        candidates.append(
            (intervals.due(cert.issued.astimezone(zone).date(), every), f"recertification every {every}")
        )
    if rule.lapse_if_not_performed_for:
        lapse = intervals.parse(rule.lapse_if_not_performed_for)
        last = person.last_performed.get(rule.method)
        if last is None:
            return None, f"{rule.method} never performed on record, so it has lapsed"
        candidates.append(
            (
                intervals.due(last.astimezone(zone).date(), lapse),
                f"it lapses unless {rule.method} is performed within {lapse}",
            )
        )
    due, why = min(candidates)
    if due < now.astimezone(zone).date():
        return None, f"{why}; it was due {_day(due)}"
    return due, why


def _calibration(question: questions.Question, local: Local, held: list[_Contract], now: datetime) -> Answer:
    asked = question.equipment or ""
    key = questions.spoken_key(asked)
    every = list(local.facts.equipment.values())
    matches = [e for e in every if key in (questions.spoken_key(e.id), questions.spoken_key(e.kind))]
    if not matches and key:  # "the UV meter" for UV-METER-1: an id that starts with what was said
        matches = [e for e in every if questions.spoken_key(e.id).startswith(key)]
    if not matches:
        line = f"Station {local.station} has no equipment called {asked}."
        return Answer(question, (line,), line)
    lines: list[str] = []
    for equipment in sorted(matches, key=lambda e: e.id):
        lines.append(_calibration_line(equipment, held, now))
    return Answer(question, tuple(lines), " ".join(line.split(": rule")[0] + "." for line in lines[:2]))


def _calibration_line(equipment: f.EquipmentRecord, held: Sequence[_Contract], now: datetime) -> str:
    covering = [
        (c, r)
        for c in held
        for r in c.typed_rules
        if isinstance(r, rules.CalibrationRule) and equipment.kind in r.equipment_kinds
    ]
    name = f"{equipment.id} ({equipment.kind})"
    calibration = equipment.calibration
    if not covering:
        last = f"; last calibrated {_day(calibration.at.date())}" if calibration else ""
        return f"No active contract sets a calibration interval for {name}{last}."
    contract, rule = min(covering, key=lambda cr: intervals.parse(cr[1].every).longest)
    cite = contract.cite(rule)
    source = f"rule {rule.id}" + (f", {cite}" if cite else "")
    if calibration is None:
        return f"{name} has no calibration on record, so it may not be used: {source}."
    if not calibration.in_tolerance:
        found = _day(calibration.at.date())
        return f"{name} was found out of tolerance on {found} and may not be used: {source}."
    every = intervals.parse(rule.every)
    due = intervals.due(calibration.at.astimezone(contract.zone).date(), every)
    today = now.astimezone(contract.zone).date()
    return f"{name} calibration is due {_day(due)}, {_in_days(due, today)} (every {every}): {source}."


def _current_job(question: questions.Question, local: Local) -> Answer:
    last = next(iter(_last_entries(local.log, (JOB_KIND,))), None)
    state = str(last.data.get("to", "idle")) if last is not None else "idle"
    if last is None or state in _NO_JOB:
        line = f"No job is in hand at station {local.station}."
        return Answer(question, (line,), line)
    job_id = last.subject
    lines = [f"Job {job_id} is {state.replace('-', ' ')} at station {local.station}."]
    record = local.facts.jobs.get(job_id)
    if record is not None and record.steps:
        lines.append(f"Steps done: {', '.join(record.steps)}; the last was {record.steps[-1]}.")
    elif record is not None:
        lines.append("No step is recorded yet.")
    return Answer(question, tuple(lines), " ".join(lines))


def _revisions(question: questions.Question, local: Local, held: list[_Contract]) -> Answer:
    if not held:
        line = f"Station {local.station} holds no active contract revision."
        return Answer(question, (line,), line)
    lines: list[str] = []
    spoken: list[str] = []
    for c in held:
        previous = next(
            (a.previous for a in reversed(local.store.history(c.name)) if a.revision == c.revision), None
        )
        replaced = f", replacing {previous[:12]}" if previous else ""
        lines.append(
            f"{c.name}: revision {c.revision[:12]}, active since {_short_time(c.activated_at)}{replaced}."
        )
        spoken.append(f"{c.name} revision {' '.join(c.revision[:4])}")
        if c.standards:
            standards = ", ".join(
                f"{s.get('title', sid)} rev {s.get('revision', '?')}" for sid, s in c.standards.items()
            )
            lines.append(f"{c.name} applies {standards}.")
    return Answer(question, tuple(lines), "Active: " + "; ".join(spoken) + ".")
