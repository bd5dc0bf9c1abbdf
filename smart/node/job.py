"""One job at one station, from badge-in to hand-off, every step decided by the station's modules.

The states, in order::

    idle → badged-in → traveler-scanned → gated → in-process → released → handed-off

- ``badge`` (person, supervisor): the Gatekeeper judges the person.
- ``scan`` (job, PO, line, part, serial): the Gatekeeper judges the person
  with the traveler; the job's record starts here.
- ``start`` (equipment, lots, PPE, procedure, part attributes, readings such
  as a furnace setpoint): the gate.
  Every module that runs here among Gatekeeper, Maintenance, Safety,
  Standards, Inventory and QA must allow (QA judges the equipment checks'
  readings, e.g. UV-A); the interlock may then close, and the outcome goes
  to AlertBroadcast's ``gate`` (the stack light) where it runs.
  Once the gate allows, Maintenance counts the equipment's use (``count``,
  its usage counters) and Inventory draws the start's ``consumed``
  quantities (lot → quantity) from stock (``consume``, its reorder signal);
  Inventory's gate ``use`` already refused a draw larger than a lot holds.
- ``step`` (step, readings): Compliance (order) and QA (limits, dwell)
  judge it; an allowed step and its readings go on the job's record. An
  ``inspection`` (``result`` accept or reject, ``indications``) is QA's
  ``inspect``: recorded, and a reject opens an NCR.
- ``release`` (signer): the signer signs the record, then the Guardian (and
  Logistics where it runs) judges it complete.
- ``handoff``: the whole record goes on the ledger for the hub: HandoffNode (``handoff``
  ``job``), where it runs, records the job's ``job.handoff`` entry once, and the reply's
  ``handoff`` carries its effects (``entry``, ``recorded``, ``atHub``).
- ``badge-out``: back to idle, or, with a job in hand, nobody badged in and
  the job where it stood; ``status``: where things stand.

**No dead ends.** A job belongs to the person who scanned it (its
operator). Anyone may badge in at any time, and the Gatekeeper judges them
as always; a job in hand stays where it stood. The operator who badges in
again (after a restart, after a Level 3 came by) resumes it; the gate may be
run again in the job to close the interlock once more. Anyone else may not
work the job, but a Level 3 in the method or the quality manager
(:mod:`smart.contracts.authority`) may ``take-over`` it (becoming its operator)
or ``abandon`` it (the station is free again), each with a ``reason`` that
goes on the ledger. ``disposition`` (body ``ncr``, ``disposition``,
``designAuthorityApproval``, or ``close`` with ``evidence``) has QA decide an
NCR by the person badged in now, who needs the same authority; an NCR opened
by a step is raised on the alert board at once and cleared when it closes.

At a shipping station the job goes ``badged-in → received → shipped``:
``receive`` (job, PO, line, part, serial, ``received`` count) is judged by the
Gatekeeper (station role, PO line) and counted by Logistics; ``ship``
(``quantities``, ``cocSigner``) has the C of C signed, then the Gatekeeper,
the Guardian (C of C by an authorised signer) and Logistics (every part
accounted for) judge it.

Each module is asked over NATS on the station's own subjects, as any other
client would, and records its own decision. Each transition, allowed or
not, is recorded (``job.transition``) with the reasons; a denied one leaves
the state where it was. The machine answers ``station.<id>.job.<verb>`` with
a JSON body and replies with the new state, the outcome and every reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from pydantic import TypeAdapter, ValidationError

from smart.contracts import authority, engine
from smart.contracts import facts as f
from smart.contracts.decisions import ModuleAnswer
from smart.node import enforcement, records

if TYPE_CHECKING:
    from smart.node.station import StationRuntime

#: The modules whose every allow the gate needs, in the order they are asked, with the verb.
GATE: tuple[tuple[str, str], ...] = (
    ("gatekeeper", "start"),
    ("maintenance", "use"),
    ("safety", "ppe"),
    ("standards", "procedure"),
    ("inventory", "use"),
    ("qa", "measure"),
)
#: Asked once the gate has allowed, where they run: what the job uses is counted and drawn from stock.
AFTER_GATE: tuple[tuple[str, str], ...] = (("maintenance", "count"), ("inventory", "consume"))
STEP: tuple[tuple[str, str], ...] = (("compliance", "step"), ("qa", "measure"))
RELEASE: tuple[tuple[str, str], ...] = (("guardian", "release"), ("logistics", "ship"))
#: Shipping (sr-1): the station's role and the PO line, the C of C, then every part accounted for.
#: Logistics before the Guardian: it writes the counts and says what the C of C signer lacks.
SHIP: tuple[tuple[str, str], ...] = (("gatekeeper", "start"), ("logistics", "ship"), ("guardian", "release"))

_READINGS = TypeAdapter(dict[str, f.Reading])
_SCAN = TypeAdapter(f.Scan)


class State(StrEnum):
    IDLE = "idle"
    BADGED_IN = "badged-in"
    SCANNED = "traveler-scanned"
    GATED = "gated"
    WORKING = "in-process"
    RELEASED = "released"
    HANDED_OFF = "handed-off"
    RECEIVED = "received"
    SHIPPED = "shipped"


#: Verb → the states it may be asked in and the state it leads to.
TRANSITIONS: Mapping[str, tuple[frozenset[State], State]] = {
    "badge": (frozenset(State), State.BADGED_IN),
    "scan": (frozenset({State.BADGED_IN, State.SCANNED}), State.SCANNED),
    "start": (frozenset({State.SCANNED, State.GATED, State.WORKING}), State.GATED),
    "step": (frozenset({State.GATED, State.WORKING}), State.WORKING),
    "release": (frozenset({State.WORKING}), State.RELEASED),
    "handoff": (frozenset({State.RELEASED, State.SHIPPED}), State.HANDED_OFF),
    "receive": (frozenset({State.BADGED_IN}), State.RECEIVED),
    "ship": (frozenset({State.RECEIVED}), State.SHIPPED),
    "badge-out": (frozenset(State), State.IDLE),
}
#: States in which a job is in hand: badging in keeps it, and it may be taken over or abandoned.
IN_JOB: frozenset[State] = frozenset(
    {State.SCANNED, State.GATED, State.WORKING, State.RELEASED, State.RECEIVED}
)
#: Verbs that work the job: only its operator may ask them.
#: (Shipping is not: the person who signs the C of C badges in and ships what the clerk received.)
OPERATOR_VERBS: frozenset[str] = frozenset({"scan", "start", "step", "release", "handoff", "receive"})
#: Verbs that stay in the state they are asked in (the job goes on as it stood).
STAYING: Mapping[str, frozenset[State]] = {
    "badge": frozenset(State),
    "disposition": frozenset(State) - {State.IDLE},
    "take-over": IN_JOB,
}
#: Verbs beside the transitions: who holds the job, and the NCRs of the job.
HELD: Mapping[str, tuple[frozenset[State], State]] = {
    "disposition": (frozenset(State) - {State.IDLE}, State.BADGED_IN),
    "take-over": (IN_JOB, State.BADGED_IN),
    "abandon": (IN_JOB, State.BADGED_IN),
}


@dataclasses.dataclass(slots=True)
class Session:
    """What the station knows of the job in front of it, gathered verb by verb."""

    person: str | None = None
    supervisor: str | None = None
    job: str | None = None
    #: Who holds the job: the person who scanned it, or who took it over.
    operator: str | None = None
    scan: f.Scan | None = None
    equipment: tuple[str, ...] = ()
    lots: tuple[str, ...] = ()
    ppe: frozenset[str] = frozenset()
    procedure: str | None = None
    procedure_revision: str | None = None
    attributes: dict[str, str] = dataclasses.field(default_factory=dict)


class JobError(ValueError):
    """A job request whose body cannot be read; nothing is decided or changed."""


def _at(body: Mapping[str, Any]) -> datetime:
    raw = body.get("at")
    if raw is None:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(str(raw))
    except ValueError as err:
        raise JobError(f"at: {err}") from err
    if at.tzinfo is None:
        raise JobError("at: needs a timezone")
    return at


def _strings(body: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = body.get(name) or ()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise JobError(f"{name}: expected a list of strings")
    return tuple(value)


def _readings(body: Mapping[str, Any]) -> dict[str, f.Reading]:
    try:
        return _READINGS.validate_python(body.get("readings") or {})
    except ValidationError as err:
        raise JobError(f"readings: {err}") from err


def _consumed(body: Mapping[str, Any]) -> dict[str, float]:
    value = body.get("consumed") or {}
    if not isinstance(value, dict) or not all(
        isinstance(q, int | float) and not isinstance(q, bool) and q > 0 for q in value.values()
    ):
        raise JobError("consumed: expected an object of lot → quantity > 0")
    return {str(lot): float(quantity) for lot, quantity in value.items()}


def _text(body: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise JobError(f"{name}: expected a non-empty string")
    return value


class JobMachine:
    """The job state machine of one station; :meth:`request` is one verb with its JSON body."""

    def __init__(self, station: StationRuntime) -> None:
        self.station = station
        self.state = State.IDLE
        self.session = Session()

    def restore(self) -> None:
        """Take up the job where the station's records say it stood (after a restart)."""
        kept = self.station.records.load_session() if self.station.records is not None else None
        if kept is None:
            return
        state, raw = kept
        try:
            scan = _SCAN.validate_python(raw["scan"]) if raw.get("scan") else None
            self.session = Session(
                person=raw.get("person"),
                supervisor=raw.get("supervisor"),
                job=raw.get("job"),
                operator=raw.get("operator") or (raw.get("person") if raw.get("job") else None),
                scan=scan,
                equipment=tuple(raw.get("equipment") or ()),
                lots=tuple(raw.get("lots") or ()),
                ppe=frozenset(raw.get("ppe") or ()),
                procedure=raw.get("procedure"),
                procedure_revision=raw.get("procedure_revision"),
                attributes=dict(raw.get("attributes") or {}),
            )
            self.state = State(state)
        except (ValueError, KeyError, TypeError):
            self.state, self.session = State.IDLE, Session()  # unreadable: start over, never half a job

    def _save(self) -> None:
        if self.station.records is not None:
            self.station.records.save_session(self.state.value, records.plain(self.session))

    def status(self) -> dict[str, Any]:
        job = self._job_record()
        return {
            "station": self.station.station,
            "state": self.state.value,
            "person": self.session.person,
            "job": records.plain(job) if job is not None else self.session.job,
        }

    async def request(self, verb: str, body: Mapping[str, Any]) -> dict[str, Any]:
        if verb == "status":
            return self.status()
        verbs = {**TRANSITIONS, **HELD}
        if verb not in verbs:
            raise JobError(f"unknown verb {verb!r}; expected status or {', '.join(verbs)}")
        allowed_from, target = verbs[verb]
        if self.state in STAYING.get(verb, frozenset()) and (verb != "badge" or self.state in IN_JOB):
            target = self.state  # the job in hand stays where it stood
        if verb == "start" and self.state is State.WORKING:
            target = State.WORKING  # the gate run again in the job (after a restart) keeps its steps
        at = _at(body)
        if verb != "badge-out" and not self.station.agent.enforcer.revisions:
            # fail closed before asking anyone: no module can prove anything without a contract
            refusal = _refusal(
                enforcement.NO_VALID_CONTRACT_RULE,
                f"{enforcement.NO_VALID_CONTRACT}: station {self.station.station} holds no"
                " verified, active contract revision, so it refuses every operation",
                station=self.station.station,
                verb=verb,
            )
            return self._transition(verb, target, at, "deny", [], [refusal])
        if self.state not in allowed_from:
            refusal = _refusal(
                "job.state", f"cannot {verb} in state {self.state.value}", state=self.state.value, verb=verb
            )
            return self._transition(verb, target, at, "deny", [], [refusal])
        operator = self.session.operator
        if verb in OPERATOR_VERBS and operator is not None and self.session.person != operator:
            return self._transition(verb, target, at, "deny", [], [self._not_yours(verb, operator)])
        if verb in ("take-over", "abandon"):
            return self._hold(verb, target, body, at)
        if verb == "disposition":
            return await self._disposition(target, body, at)
        session = self._next_session(verb, body)
        if verb == "badge-out":
            if self.state in IN_JOB:  # the job stays in hand for its operator to badge in and resume
                self.session = dataclasses.replace(self.session, person=None, supervisor=None)
                return self._transition(verb, self.state, at, "allow", [], [])
            self.session = Session()
            return self._transition(verb, target, at, "allow", [], [])
        event, asks = self._plan(verb, body, session, at)
        unsigned: f.Job | None = None
        signing = verb == "release" or (
            verb == "ship" and (bool(body.get("signCoc")) or _text(body, "cocSigner") is not None)
        )
        if signing:
            signer = _text(body, "cocSigner" if verb == "ship" else "signer") or session.person
            if signer != session.person:  # signed by the signer's own badge, never by an id typed in
                what = "the C of C" if verb == "ship" else "the job's record"
                refusal = _refusal(
                    "job.own-badge",
                    f"{what} is signed by the signer's own badge: {signer} badges in at"
                    f" {self.station.station} to sign it (badged in now: {session.person})",
                    signer=signer,
                    person=session.person,
                )
                return self._transition(verb, target, at, "deny", [], [refusal])
            unsigned = self._job_record()
            self._sign(session, signer, at, coc=verb == "ship")
        decisions: list[ModuleAnswer] = []
        for module, mverb, event_for, extra in asks:
            if extra and any(not d.allowed for d in decisions):
                continue  # a module that writes (a count) is not asked once the transition is refused
            decisions.append(await self.station.ask(module, mverb, event_for, extra))
        if not decisions and verb != "handoff":
            refusal = _refusal(
                "station.no-module", f"no module runs at {self.station.station} to decide {verb}"
            )
            decisions = [ModuleAnswer(module="station", outcome="deny", reasons=(refusal,))]
        outcomes = [d.outcome for d in decisions]
        outcome: engine.Outcome = "deny" if "deny" in outcomes else "warn" if "warn" in outcomes else "allow"
        reasons = [reason for d in decisions for reason in d.reasons]
        if verb == "badge" and outcome == "deny" and self._authority_only(session.person, at):
            # a Level 3 or the quality manager may not operate here, but comes to decide NCRs and jobs:
            # let in for that alone (every operating verb is judged by the Gatekeeper again)
            outcome = "warn"
            reasons = [
                _refusal(
                    "station.authority-only",
                    f"{session.person} is let in to disposition NCRs and take over or abandon jobs, not to"
                    " operate: " + "; ".join(r.message for r in reasons),
                    severity="warn",
                    person=session.person,
                )
            ]
        if signing and outcome == "deny" and unsigned is not None:  # a refused signature is not kept
            self._keep_job(unsigned, session.person)
        if outcome != "deny":
            self.session = session
            self._apply(verb, body, event, at)
            if verb == "start":
                decisions += await self._after_gate(event, body)
        await self._raise_ncrs(decisions, event)
        light = await self._show(verb, outcome, event)
        reply = self._transition(verb, target, at, outcome, decisions, reasons)
        if light is not None:
            reply["light"] = light
        handed = next((d for d in decisions if d.module == "handoff"), None)
        if handed is not None:
            reply["handoff"] = dict(handed.effects)
        return reply

    # -- who holds the job, and its NCRs ----------------------------------------------------

    def _methods(self) -> tuple[str, ...]:
        return authority.methods_of(self.station.facts(), self.session.procedure)

    def _not_yours(self, verb: str, operator: str) -> engine.Reason:
        job = self.session.job
        needs = authority.who_may(self._methods())
        return _refusal(
            "job.operator",
            f"job {job} is {operator}'s: {operator} badges in to go on with it, or {needs} takes it"
            " over or abandons it with a reason",
            verb=verb,
            job=job,
            operator=operator,
            person=self.session.person,
        )

    def _badge_refusals(self, person: str | None, at: datetime) -> tuple[engine.Reason, ...]:
        """Why ``person``'s signed access credential fails here (none: it passes, or no keys held)."""
        badges = self.station.badges
        return badges.judge(person, at) if badges is not None and person else ()

    def _authority_only(self, person: str | None, at: datetime) -> bool:
        """Whether ``person``'s badge verifies and carries the authority of a Level 3 or quality manager."""
        facts = self.station.facts()
        methods = authority.methods_of(facts, self.session.procedure)
        found = authority.judge(
            person,
            what="decide",
            facts=facts,
            refused=self._badge_refusals(person, at),
            at=at,
            methods=methods,
        )
        return not found

    def _hold(self, verb: str, target: State, body: Mapping[str, Any], at: datetime) -> dict[str, Any]:
        """``take-over`` or ``abandon`` the job in hand: a Level 3 or the quality manager, with a reason."""
        reason = str(body.get("reason") or "").strip()
        person, job = self.session.person, self.session.job
        words = "take over" if verb == "take-over" else "abandon"
        refused = [
            *authority.judge(
                person,
                what=f"{words} job {job}",
                facts=self.station.facts(),
                refused=self._badge_refusals(person, at),
                at=at,
                methods=self._methods(),
            )
        ]
        if not reason:
            refused.append(_refusal(f"job.{verb}", f"to {words} job {job} say why (a reason)", job=job))
        if refused:
            return self._transition(verb, target, at, "deny", [], refused)
        held = {"job": job, "reason": reason, "operator": self.session.operator, "by": person}
        if verb == "take-over":
            self.session.operator = person
        else:
            self.session = Session(person=person, supervisor=self.session.supervisor)
        return self._transition(verb, target, at, "allow", [], [], extra=held)

    async def _disposition(self, target: State, body: Mapping[str, Any], at: datetime) -> dict[str, Any]:
        """QA decides an NCR by the person badged in now; a closed NCR leaves the alert board."""
        fields = ("ncr", "disposition", "designAuthorityApproval", "close", "evidence")
        asked = {k: body[k] for k in fields if k in body}
        event = self._event(self.session, "release", at)
        decision = await self.station.ask("qa", "disposition", event, asked)
        effects = decision.effects
        if decision.allowed and effects.get("open") is False and self.station.running(["alert-broadcast"]):
            await self.station.ask("alert-broadcast", "clear", event, {"id": effects.get("ncr")})
        return self._transition(
            "disposition", target, at, decision.outcome, [decision], list(decision.reasons)
        )

    async def _raise_ncrs(self, decisions: list[ModuleAnswer], event: f.Event) -> None:
        """Each NCR a step opened goes on the alert board at once (the light and the hub see it)."""
        if not self.station.running(["alert-broadcast"]):
            return
        needs = authority.who_may(self._methods())
        for decision in decisions:
            opened = decision.effects.get("ncrs") or ()
            why = "; ".join(r.message for r in decision.refusals())
            for ncr_id in opened:
                message = f"NCR {ncr_id} opened on job {event.job}: {why}; {needs} dispositions it"
                body = {"severity": "warning", "source": "qa", "message": message, "key": ncr_id}
                await self.station.ask("alert-broadcast", "raise", event, body)

    async def _after_gate(self, event: f.Event, body: Mapping[str, Any]) -> list[ModuleAnswer]:
        """The allowed gate's use of equipment and consumables, counted where the modules run."""
        consumed = _consumed(body)
        asks: dict[str, tuple[bool, dict[str, Any]]] = {
            "maintenance": (bool(event.equipment), {"equipment": list(event.equipment)}),
            "inventory": (bool(consumed), {"consumed": consumed}),
        }
        done: list[ModuleAnswer] = []
        for module, mverb in AFTER_GATE:
            wanted, extra = asks[module]
            if wanted and self.station.running([module]):
                done.append(await self.station.ask(module, mverb, event, extra))
        return done

    async def _show(self, verb: str, outcome: engine.Outcome, event: f.Event) -> str | None:
        """The gate's outcome on the stack light, through AlertBroadcast where it runs; the light shown."""
        if verb != "start" or not self.station.running(["alert-broadcast"]):
            return None
        shown = await self.station.ask("alert-broadcast", "gate", event, {"outcome": outcome})
        light = shown.effects.get("light")
        return str(light) if light is not None else None

    # -- planning each verb ------------------------------------------------------------------

    def _next_session(self, verb: str, body: Mapping[str, Any]) -> Session:
        session = dataclasses.replace(self.session, attributes=dict(self.session.attributes))
        if verb == "badge":
            person = _text(body, "person", required=True)
            supervisor = _text(body, "supervisor")
            if self.state in IN_JOB:  # the job in hand stays; whoever badges in is judged as always
                session = dataclasses.replace(session, person=person, supervisor=supervisor)
            else:
                session = Session(person=person, supervisor=supervisor)
        elif verb in ("scan", "receive"):
            session.job = _text(body, "job", required=True)
            session.operator = session.person
            try:
                session.scan = _SCAN.validate_python(
                    {k: body.get(k) for k in ("po", "line", "part", "serial", "operation") if k in body}
                )
            except ValidationError as err:
                raise JobError(f"scan: {err}") from err
        elif verb == "start":
            session.equipment = _strings(body, "equipment")
            session.lots = _strings(body, "lots")
            session.ppe = frozenset(_strings(body, "ppe"))
            session.procedure = _text(body, "procedure")
            session.procedure_revision = _text(body, "procedureRevision")
            attributes = body.get("attributes") or {}
            if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
                raise JobError("attributes: expected an object of strings")
            session.attributes.update(attributes)
        return session

    def _event(self, session: Session, action: str, at: datetime, **changes: Any) -> f.Event:
        event = f.Event(
            action=action,
            at=at,
            station=self.station.station,
            person=session.person,
            supervisor=session.supervisor,
            equipment=session.equipment,
            attributes=dict(session.attributes),
            job=session.job,
            lots=session.lots,
            ppe=session.ppe,
            scan=session.scan,
            procedure=session.procedure,
            procedure_revision=session.procedure_revision,
        )
        return dataclasses.replace(event, **changes)

    def _plan(
        self, verb: str, body: Mapping[str, Any], session: Session, at: datetime
    ) -> tuple[f.Event, list[tuple[str, str, f.Event, dict[str, Any]]]]:
        running = self.station.running
        if verb == "badge":
            event = self._event(session, "operate", at)
            return event, [("gatekeeper", "badge", event, {})]
        if verb == "scan":
            event = self._event(session, "operate", at)
            return event, [("gatekeeper", "start", event, {})]
        if verb == "receive":
            event = self._event(session, "receive", at)
            scanned = [session.scan.serial] if session.scan and session.scan.serial else []
            serials = body.get("serials") or scanned
            counted = {"job": session.job, "received": body.get("received"), "serials": serials}
            asks: list[tuple[str, str, f.Event, dict[str, Any]]] = [("gatekeeper", "start", event, {})]
            if "received" in body:
                asks.append(("logistics", "receive", event, counted))
            return event, asks
        if verb == "ship":
            event = self._event(session, "ship", at)
            quantities = {"job": session.job, "quantities": body.get("quantities") or {}}
            return event, [(m, v, event, quantities if m == "logistics" else {}) for m, v in SHIP]
        if verb == "start":
            event = self._event(session, "operate", at, readings=_readings(body))
            gate: list[tuple[str, str, f.Event, dict[str, Any]]] = []
            consumed = _consumed(body)
            for module, mverb in GATE:
                if module == "gatekeeper" or module in running([module]):
                    # QA judges the station's check readings here; they are not the job's, so no NCR on it
                    asked = dataclasses.replace(event, job=None) if module == "qa" else event
                    drawn = {"consumed": consumed} if module == "inventory" and consumed else {}
                    gate.append((module, mverb, asked, drawn))
            return event, gate
        if verb == "step":
            step = _text(body, "step", required=True)
            readings = _readings(body)
            attributes = {**session.attributes, **dict(body.get("attributes") or {})}
            event = self._event(session, "step", at, step=step, readings=readings, attributes=attributes)
            asks = [(m, v, event, {}) for m, v in STEP if m in running([m])]
            inspection = body.get("inspection")
            if inspection is not None:
                if not isinstance(inspection, dict) or inspection.get("result") not in ("accept", "reject"):
                    raise JobError("inspection: expected {result: accept|reject, indications: text}")
                if not running(["qa"]):
                    raise JobError(f"inspection: qa does not run at {self.station.station} to record it")
                asks.append(("qa", "inspect", event, dict(inspection)))
            return event, asks
        if verb == "release":
            signer = _text(body, "signer") or session.person
            event = self._event(session, "release", at, person=signer)
            extra = {"job": session.job, "quantities": body["quantities"]} if "quantities" in body else {}
            return event, [
                (m, v, event, extra if m == "logistics" else {})
                for m, v in RELEASE
                if m == "guardian" or m in running([m])
            ]
        # handoff: nothing left to judge; HandoffNode, where it runs, puts the record on the ledger for
        # the hub once (a station without it still records the record on the hand-off transition)
        event = self._event(session, "release", at)
        if running(["handoff"]):
            return event, [("handoff", "job", event, {"job": session.job})]
        return event, []

    # -- effects of an allowed transition ----------------------------------------------------

    def _job_record(self) -> f.Job | None:
        job_id = self.session.job
        held = self.station.held("job", job_id) if job_id else None
        return held if isinstance(held, f.Job) else None

    def _keep_job(self, job: f.Job, actor: str | None) -> None:
        self.station.keep("job", job, actor=actor or self.station.station)

    def _sign(self, session: Session, signer: str | None, at: datetime, *, coc: bool = False) -> None:
        """``signer`` signs the job's record (or, with ``coc``, its certificate of conformance)."""
        job = self._job_record()
        if job is not None and signer is not None:
            signed = (
                dataclasses.replace(job, coc_signed_by=signer)
                if coc
                else dataclasses.replace(job, signed_by=signer)
            )
            self._keep_job(signed, signer)

    def _apply(self, verb: str, body: Mapping[str, Any], event: f.Event, at: datetime) -> None:
        session = self.session
        if verb in ("scan", "receive") and session.job is not None and self._job_record() is None:
            scan = session.scan
            serials = (scan.serial,) if scan and scan.serial else ()
            job = f.Job(
                id=session.job,
                serials=serials,
                po=scan.po if scan else None,
                line=scan.line if scan else None,
                part=scan.part if scan else None,
            )
            self._keep_job(job, session.person)
        elif verb == "step":
            job = self._job_record() or f.Job(id=str(session.job))
            assert event.step is not None
            steps = job.steps if event.step in job.steps else (*job.steps, event.step)
            measurements = {**job.measurements, **event.readings}
            by_step = dict(job.step_measurements)
            if event.readings:
                by_step[event.step] = {**by_step.get(event.step, {}), **event.readings}
            self._keep_job(
                dataclasses.replace(job, steps=steps, measurements=measurements, step_measurements=by_step),
                session.person,
            )
        elif verb == "ship":  # who signed and shipped hands the job off
            session.operator = session.person
        elif verb == "release" and session.person is not None and session.procedure is not None:
            procedure = self.station.held("procedure", session.procedure)
            if isinstance(procedure, f.Procedure) and self.station.records is not None:
                self.station.records.performed(session.person, procedure.method, at)

    def _drive_interlock(self, verb: str, outcome: engine.Outcome, allowed: bool) -> None:
        """The gate's outcome closes or opens the relay; the job leaving the line opens it."""
        relay = self.station.interlock
        if relay is None:
            return
        if verb == "start":
            gate: engine.Outcome = "warn" if outcome == "warn" else "allow" if allowed else "deny"
            relay.decide(gate, job=self.session.job, revision=self.station.revision_text())
        elif allowed and verb in ("badge", "release", "ship", "handoff", "badge-out", "abandon"):
            relay.end_job()

    def renew_interlock(self) -> None:
        """Re-affirm the gate's allow while the job is on the line (the relay's lease, every third of it)."""
        relay = self.station.interlock
        if relay is not None and relay.energised and self.state in (State.GATED, State.WORKING):
            relay.renew(job=self.session.job, revision=self.station.revision_text())

    def _transition(
        self,
        verb: str,
        target: State,
        at: datetime,
        outcome: engine.Outcome,
        decisions: list[ModuleAnswer],
        reasons: list[engine.Reason],
        *,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        before = self.state
        allowed = outcome != "deny"
        if allowed:
            self.state = target
            self._save()
        self._drive_interlock(verb, outcome, allowed)
        job = self._job_record()
        data: dict[str, Any] = {
            "verb": verb,
            "from": before.value,
            "to": self.state.value,
            "allowed": allowed,
            "outcome": outcome,
            "at": at.isoformat(),
            "reasons": [reason.to_json() for reason in reasons],
            "decisions": [{"module": d.module, "entry": d.entry} for d in decisions],
        }
        if verb == "handoff" and job is not None:
            data["record"] = records.plain(job)
        if extra:
            data.update(extra)
        entry = self.station.record(
            kind="job.transition",
            subject=self.session.job or self.session.person or self.station.station,
            data=data,
            actor=self.session.person or self.station.station,
        )
        return {
            "station": self.station.station,
            "verb": verb,
            "state": self.state.value,
            "allowed": allowed,
            "outcome": outcome,
            "reasons": [reason.to_json() for reason in reasons],
            "decisions": [decision.to_json() for decision in decisions],
            "job": records.plain(job) if job is not None else None,
            "entry": entry.node_seq,
        }


def _refusal(
    rule: str, message: str, *, severity: Literal["deny", "warn"] = "deny", **values: Any
) -> engine.Reason:
    """A refusal (or, with ``severity`` warn, a warning) the job machine itself gives, not a module."""
    return engine.Reason(rule, message, MappingProxyType(values), severity=severity)
