"""The kiosk pages an operator works the job from, served by the station itself.

One operator stands at a station at a time, so the kiosk has no user list:
the person is whoever badged in and the Gatekeeper let in. Badging in (a
badge reader types the badge's id, or the operator does) is the job
machine's ``badge`` verb; an allowed badge gives this browser a session
cookie (random, HttpOnly, SameSite=Strict, forgotten after
``idle_s`` without use or when anyone else badges in); a refused one shows
every reason and gives nothing. Every action afterwards goes over the
station's own NATS subjects as any other client's would
(``station.<id>.job.<verb>``, ``…maintenance.check``, ``…node-query.ask``,
``…alert-broadcast.ack``), so the kiosk decides nothing itself and every
decision is on the station's ledger with its reasons. The pages read the
station's local store, records and contracts only, so they work with every
hub down; the offline banner says when the hub is out of reach.

Pages are server-rendered and work without JavaScript; a few lines of it
only refresh the banner. Targets are at least 56 px high for a 7" touch
screen and the layout reflows on a desktop.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from smart.bus import messages, subjects
from smart.contracts import authority
from smart.contracts import facts as f
from smart.modules import framework
from smart.modules.alert_broadcast import alerts
from smart.node import records
from smart.node.kiosk import forms as kiosk_forms
from smart.node.kiosk import reasons as kiosk_reasons
from smart.node.kiosk.uplink import HubProbe

if TYPE_CHECKING:
    from smart.node.station import StationRuntime

log = structlog.get_logger("smart.node.kiosk")

SESSION_COOKIE = "smart_kiosk"
#: The station's own screen: it follows whoever is badged in at the station, by reader or camera.
SCREEN_COOKIE = "smart_kiosk_screen"
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
Clock = Callable[[], datetime]

#: The job's states as the shop says them on the screen ("traveler scanned", not ``traveler-scanned``).
SHOP_WORDS: Mapping[str, str] = {
    "idle": "nobody badged in",
    "badged-in": "badged in",
    "traveler-scanned": "traveler scanned",
    "gated": "gate passed",
    "in-process": "in process",
    "released": "released",
    "handed-off": "handed off",
    "received": "received",
    "shipped": "shipped",
}


def shop_words(state: str) -> str:
    """A job state in the shop's words; an unknown one with its dashes read as spaces."""
    return SHOP_WORDS.get(state, state.replace("-", " "))


TEMPLATES.env.filters["shop_words"] = shop_words


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclasses.dataclass(slots=True)
class _Session:
    person: str
    last_used: float
    #: What the last action answered: shown until the next action, so a reload keeps the reasons.
    shown: dict[str, Any] | None = None
    #: A refused form's fields, by form, so the operator fixes the cause and sends it again unchanged.
    drafts: dict[str, dict[str, list[str]]] = dataclasses.field(default_factory=dict)


class KioskSessions:
    """Which browser speaks for the person badged in at this station (one at a time)."""

    def __init__(self, idle_s: float) -> None:
        self.idle_s = idle_s
        self._sessions: dict[str, _Session] = {}

    def open(self, person: str) -> str:
        """A new session for ``person``; every other one ends (the station has one operator)."""
        self._sessions.clear()
        token = secrets.token_urlsafe(32)
        self._sessions[token] = _Session(person, time.monotonic())
        return token

    def get(self, token: str | None, person_at_station: str | None) -> _Session | None:
        """The live session of ``token`` if its person is still the one badged in at the station."""
        if not token:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        if time.monotonic() - session.last_used > self.idle_s or session.person != person_at_station:
            del self._sessions[token]
            return None
        session.last_used = time.monotonic()
        return session

    def close(self, token: str | None) -> None:
        if token:
            self._sessions.pop(token, None)


async def form_fields(request: Request) -> dict[str, list[str]]:
    """An urlencoded form body, every value kept (checkbox groups send a name many times)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {
        key: [v.strip() for v in values] for key, values in parse_qs(body, keep_blank_values=True).items()
    }


def _one(fields: Mapping[str, list[str]], name: str) -> str:
    values = fields.get(name) or [""]
    return values[-1]


class KioskInputError(ValueError):
    """A form field that cannot be read (a reading that is not a number); nothing was sent."""


def readings_from(fields: Mapping[str, list[str]], prefix: str = "reading:") -> dict[str, dict[str, Any]]:
    """``reading:<quantity>`` and ``unit:<quantity>`` fields as the job machine's readings; blanks skipped."""
    readings: dict[str, dict[str, Any]] = {}
    for key, values in fields.items():
        if not key.startswith(prefix):
            continue
        name, text = key[len(prefix) :], values[-1].replace(",", ".")
        if not text:
            continue
        try:
            value = float(text)
        except ValueError as err:
            raise KioskInputError(f"{name}: {values[-1]!r} is not a number") from err
        readings[name] = {"value": value, "unit": _one(fields, f"unit:{name}")}
    return readings


def _count(fields: Mapping[str, list[str]], name: str) -> int:
    """A whole number of parts from the form, or :class:`KioskInputError` naming the field."""
    text = _one(fields, name)
    try:
        count = int(text)
    except ValueError as err:
        raise KioskInputError(f"{name}: {text!r} is not a whole number of parts") from err
    if count < 0:
        raise KioskInputError(f"{name}: {count} is below zero")
    return count


def attributes_from(fields: Mapping[str, list[str]]) -> dict[str, str]:
    return {key[len("attr:") :]: v[-1] for key, v in fields.items() if key.startswith("attr:") and v[-1]}


SCREEN_TOKEN_FILE = "kiosk-screen.token"


def screen_token(data_dir: Path) -> str:
    """The station screen's secret, made on first use in the station's directory (0600), never logged.

    The browser on the station's own display opens ``/kiosk/screen?token=<it>`` once (a Pi's
    kiosk-mode Chromium reads the file when it starts); any other browser badges in by itself.
    """
    path = data_dir / SCREEN_TOKEN_FILE
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(token + "\n")
    return token


class Kiosk:
    """The kiosk of one station: its sessions, hub probe and pages (:meth:`router`)."""

    def __init__(
        self,
        runtime: StationRuntime,
        *,
        clock: Clock = _utc_now,
        idle_s: float = 900.0,
        screen_token: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.station = runtime.station
        self.clock = clock
        self.sessions = KioskSessions(idle_s)
        self.probe = HubProbe(runtime.station, lambda: runtime.agent.connection)
        # The station's /metrics (one registry per station) says whether this kiosk reaches the hub.
        runtime.agent.metrics.add_state(
            lambda figures: dataclasses.replace(figures, kiosk_hub_online=self.probe.uplink.reachable)
        )
        #: The secret the station's own screen presents once (``/kiosk/screen?token=…``); None: no screen.
        self.screen_token = screen_token
        #: The screen's cookie, derived from the secret, so it outlives a restart of the station.
        self._screen_cookie = (
            hmac.new(screen_token.encode(), b"smart kiosk screen", hashlib.sha256).hexdigest()
            if screen_token
            else None
        )
        self._screen: _Session | None = None
        #: The alert board as AlertBroadcast last told it on the station's alert subject, for when
        #: AlertBroadcast runs in a process of its own (``smart node run --modules none``).
        self.heard_board: alerts.Board | None = None

    def screen_session(self, cookie: str | None) -> _Session | None:
        """The station screen's session: whoever the job machine has badged in, however they badged."""
        expected = self._screen_cookie
        if not cookie or expected is None or not hmac.compare_digest(cookie, expected):
            return None
        person = self.runtime.jobs.session.person
        if person is None:
            self._screen = None
            return None
        if self._screen is None or self._screen.person != person:
            self._screen = _Session(person, time.monotonic())
        return self._screen

    # -- what the station holds ------------------------------------------------------------

    def bundles(self) -> list[dict[str, Any]]:
        store = self.runtime.agent.store
        if store is None:
            return []
        return [json.loads(active.envelope)["bundle"] for active in store.active()]

    def facts(self) -> f.Facts:
        return self.runtime.facts() if self.runtime.records is not None else f.Facts()

    def board(self) -> dict[str, Any] | None:
        """The station's alert board: AlertBroadcast's own in-process, else the one it last published."""
        module = self.runtime.modules.get("alert-broadcast")
        board = getattr(module, "board", None)
        if isinstance(board, alerts.Board):
            return board.to_json()
        return self.heard_board.to_json() if self.heard_board is not None else None

    async def follow_alerts(self, connection: NatsClient) -> Subscription:
        """Keep :attr:`heard_board` from every notice on the station's alert subject, wherever it comes from.

        Subscribed before the modules start, so the board AlertBroadcast tells as it starts is heard.
        A notice that cannot be read changes nothing.
        """

        async def on_notice(message: Msg) -> None:
            try:
                notice = messages.read_alert_notice(message.data)
                if notice.board is None:
                    return
                self.heard_board = alerts.Board.from_json(notice.board)
            except (messages.MessageError, alerts.AlertError, KeyError, TypeError, ValueError) as err:
                log.debug("kiosk.alert_notice_unread", station=self.station, error=str(err))

        return await connection.subscribe(subjects.alert(self.station), cb=on_notice)

    def banner(self) -> dict[str, Any]:
        """What the top of every page shows: station, revisions, hub link, light."""
        uplink = self.probe.uplink
        board = self.board()
        return {
            "station": self.station,
            "revisions": dict(self.runtime.agent.enforcer.revisions),
            "online": uplink.reachable,
            "lastSeen": datetime.fromtimestamp(uplink.last_seen, UTC).isoformat()
            if uplink.last_seen
            else None,
            "why": uplink.why,
            "light": board["light"] if board else None,
            "state": self.runtime.jobs.state.value,
        }

    # -- talking to the station's modules ---------------------------------------------------

    async def job(self, verb: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """One job verb over the station's bus, stamped with the kiosk's clock."""
        request = {"at": self.clock().isoformat(), **body}
        try:
            return await self.runtime.request(framework.subject(self.station, "job", verb), request)
        except Exception as err:  # the station's own bus down: nothing happened, say so
            return _not_sent(verb, err)

    async def module(self, module: str, verb: str, event: f.Event, body: Mapping[str, Any]) -> dict[str, Any]:
        request = {"event": records.plain(event), "body": dict(body)}
        try:
            return await self.runtime.request(framework.subject(self.station, module, verb), request)
        except Exception as err:
            return _not_sent(f"{module}.{verb}", err)

    def event(self, action: str, person: str | None, **changes: Any) -> f.Event:
        return f.Event(action=action, at=self.clock(), station=self.station, person=person, **changes)

    # -- rendering -----------------------------------------------------------------------------

    def outcome_panel(self, title: str, reply: Mapping[str, Any]) -> dict[str, Any]:
        """A reply as the go/no-go panel: the outcome and every reason with where it comes from."""
        if "error" in reply:
            reasons = [{"rule": "kiosk.request", "message": str(reply["error"]), "severity": "deny"}]
            outcome = "deny"
        else:
            reasons = list(reply.get("reasons") or [])
            outcome = str(reply.get("outcome") or ("allow" if reply.get("allowed") else "deny"))
        decisions = [d for d in reply.get("decisions") or [] if isinstance(d, Mapping)]
        if "module" in reply and not decisions:
            decisions = [reply]
        return {
            "title": title,
            "outcome": outcome,
            "reasons": kiosk_reasons.explain(decisions, reasons, self.bundles()),
            "answer": reply.get("answer"),
            "light": reply.get("light"),
        }

    def page(self, request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return TEMPLATES.TemplateResponse(
            request,
            f"kiosk/{template}",
            {"banner": self.banner(), **context},
            status_code=status_code,
        )

    def job_context(self, person: str) -> dict[str, Any]:
        facts = self.facts()
        forms = kiosk_forms.station_forms(self.bundles(), facts)
        machine = self.runtime.jobs
        job_id = machine.session.job
        job = facts.jobs.get(job_id) if job_id else None
        done = job.steps if job is not None else ()
        next_step = next((s for s in forms.steps if s not in done), None)
        now = self.clock()
        qa = self.runtime.modules.get("qa")
        open_ncrs = qa.open_ncrs() if qa is not None and hasattr(qa, "open_ncrs") else []
        methods = authority.methods_of(facts)
        who_may = (
            {"needs": authority.who_may(methods), "badges": list(authority.holders(facts, methods, now))}
            if qa is not None
            else None
        )
        operator = machine.session.operator
        return {
            "person": person,
            "operator": operator,
            #: The job in hand is someone else's: its operator resumes it, or an authority takes it over.
            "not_mine": operator is not None and operator != person,
            #: The job is on the line but the interlock is open (after a restart): the gate is run again.
            "relay_open": self.runtime.interlock is not None and not self.runtime.interlock.energised,
            "ncrs": [n.to_json() for n in open_ncrs if job_id is None or n.job in (None, job_id)],
            "who_may": who_may,
            #: Lots ticked (in the session or the refused form) that have expired: unticked, and why.
            "unticked": sorted(
                lot.id
                for lot in facts.lots.values()
                if lot.expires < now
                and (lot.id in machine.session.lots or lot.id in self._drafted(person, "start", "lots"))
            ),
            #: A receiving and shipping station: receive → ship instead of scan → gate → steps.
            "shipping": bool(self.runtime.running(["logistics"])),
            "state": machine.state.value,
            "session": machine.session,
            "job": job,
            "forms": forms,
            "done": done,
            "next_step": next_step,
            "equipment": sorted(facts.equipment.values(), key=lambda e: e.id),
            "lots": sorted(facts.lots.values(), key=lambda lot: lot.id),
            "procedures": sorted(facts.procedures.values(), key=lambda p: (p.id, p.revision)),
            "checks_done": facts.checks,
            "now": now,
            "board": self.board(),
        }

    def _drafted(self, person: str, form: str, field: str) -> list[str]:
        """What the person's refused ``form`` held in ``field`` (the session of this station's person)."""
        for session in self.sessions._sessions.values():
            if session.person == person:
                return list((session.drafts.get(form) or {}).get(field, []))
        return []

    # -- routes --------------------------------------------------------------------------------

    def router(self) -> APIRouter:
        routes = APIRouter()

        def current(request: Request) -> tuple[str | None, _Session | None]:
            token = request.cookies.get(SESSION_COOKIE)
            session = self.sessions.get(token, self.runtime.jobs.session.person)
            if session is None:
                session = self.screen_session(request.cookies.get(SCREEN_COOKIE))
            return token, session

        def home() -> RedirectResponse:
            return RedirectResponse("/kiosk", status_code=303)

        def shown_once(session: _Session) -> dict[str, Any] | None:
            """The last answer, kept until the next action (a reload of the page shows it again)."""
            return session.shown

        @routes.get("/", include_in_schema=False)
        async def root() -> Response:
            return home()

        @routes.get("/kiosk/screen", include_in_schema=False)
        async def screen(request: Request, token: str = "") -> Response:
            """The station's own screen signs on once with the station's screen secret."""
            expected = self.screen_token
            if expected is None or not token or not secrets.compare_digest(token, expected):
                log.warning("kiosk.screen_refused", station=self.station)
                panel = self.outcome_panel(
                    "Station screen", {"error": "this is not the station's screen secret"}
                )
                return self.page(request, "badge.html", status_code=403, page="Badge in", outcome=panel)
            assert self._screen_cookie is not None
            log.info("kiosk.screen_signed_on", station=self.station)
            response = home()
            response.set_cookie(
                SCREEN_COOKIE,
                self._screen_cookie,
                max_age=10 * 365 * 24 * 3600,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )
            return response

        @routes.get("/kiosk", response_class=HTMLResponse, include_in_schema=False)
        async def kiosk_page(request: Request) -> Response:
            _, session = current(request)
            if session is None:
                return self.page(request, "badge.html", page="Badge in", outcome=None)
            return self.page(
                request,
                "job.html",
                page="Job",
                outcome=shown_once(session),
                drafts=session.drafts,
                **self.job_context(session.person),
            )

        @routes.post("/kiosk/badge", include_in_schema=False)
        async def badge(request: Request) -> Response:
            fields = await form_fields(request)
            badge_id = _one(fields, "badge")
            if not badge_id:
                panel = self.outcome_panel(
                    "Badge in",
                    {"error": "no badge read: scan your badge or type its number"},
                )
                return self.page(request, "badge.html", status_code=400, page="Badge in", outcome=panel)
            body: dict[str, Any] = {"person": badge_id}
            if supervisor := _one(fields, "supervisor"):
                body["supervisor"] = supervisor
            reply = await self.job("badge", body)
            panel = self.outcome_panel(f"Badge {badge_id}", reply)
            if not reply.get("allowed"):
                log.info("kiosk.badge_refused", station=self.station, entry=reply.get("entry"))
                return self.page(request, "badge.html", status_code=403, page="Badge in", outcome=panel)
            token = self.sessions.open(badge_id)
            session = self.sessions.get(token, badge_id)
            assert session is not None
            session.shown = panel
            log.info("kiosk.badged_in", station=self.station, entry=reply.get("entry"))
            response = home()
            response.set_cookie(
                SESSION_COOKIE,
                token,
                max_age=int(self.sessions.idle_s),
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )
            return response

        @routes.post("/kiosk/badge-out", include_in_schema=False)
        async def badge_out(request: Request) -> Response:
            token, session = current(request)
            if session is not None:
                await self.job("badge-out", {})
            self.sessions.close(token)
            response = home()
            response.delete_cookie(SESSION_COOKIE)
            return response

        async def act(
            request: Request,
            title: str,
            send: Callable[[_Session, dict[str, list[str]]], Any],
            *,
            draft: str | None = None,
        ) -> Response:
            _, session = current(request)
            if session is None:
                return home()
            fields = await form_fields(request)
            try:
                reply = await send(session, fields)
            except KioskInputError as err:
                reply = {"error": str(err)}
            if draft is not None:
                if reply.get("allowed"):
                    session.drafts.pop(draft, None)
                else:
                    session.drafts[draft] = fields
            step = _one(fields, "step")
            session.shown = self.outcome_panel(f"{title} {step}" if step else title, reply)
            return home()

        @routes.post("/kiosk/scan", include_in_schema=False)
        async def scan(request: Request) -> Response:
            async def send(session: _Session, fields: dict[str, list[str]]) -> dict[str, Any]:
                body = {
                    k: _one(fields, k) for k in ("job", "po", "line", "part", "serial") if _one(fields, k)
                }
                return await self.job("scan", body)

            return await act(request, "Traveler", send, draft="scan")

        @routes.post("/kiosk/receive", include_in_schema=False)
        async def receive(request: Request) -> Response:
            async def send(session: _Session, fields: dict[str, list[str]]) -> dict[str, Any]:
                body: dict[str, Any] = {
                    k: _one(fields, k) for k in ("job", "po", "line", "part", "serial") if _one(fields, k)
                }
                body["received"] = _count(fields, "received")
                return await self.job("receive", body)

            return await act(request, "Receiving", send, draft="receive")

        @routes.post("/kiosk/ship", include_in_schema=False)
        async def ship(request: Request) -> Response:
            async def send(session: _Session, fields: dict[str, list[str]]) -> dict[str, Any]:
                quantities = {
                    name: _count(fields, name) for name in ("accepted", "rejected") if _one(fields, name)
                }
                body: dict[str, Any] = {"quantities": quantities}
                if _one(fields, "signCoc") == "yes":  # signed by the badge badged in here, nobody else's
                    body["signCoc"] = True
                return await self.job("ship", body)

            return await act(request, "Shipping", send, draft="ship")

        @routes.post("/kiosk/start", include_in_schema=False)
        async def start(request: Request) -> Response:
            async def send(session: _Session, fields: dict[str, list[str]]) -> dict[str, Any]:
                procedure, _, revision = _one(fields, "procedure").partition("@")
                body: dict[str, Any] = {
                    "equipment": [v for v in fields.get("equipment", []) if v],
                    "lots": [v for v in fields.get("lots", []) if v],
                    "ppe": [v for v in fields.get("ppe", []) if v],
                    "attributes": attributes_from(fields),
                    "readings": readings_from(fields),
                }
                if procedure:
                    body["procedure"] = procedure
                if revision:
                    body["procedureRevision"] = revision
                return await self.job("start", body)

            return await act(request, "Start the job (gate)", send, draft="start")

        @routes.post("/kiosk/step", include_in_schema=False)
        async def step(request: Request) -> Response:
            async def send(session: _Session, fields: dict[str, list[str]]) -> dict[str, Any]:
                body: dict[str, Any] = {"step": _one(fields, "step"), "readings": readings_from(fields)}
                if attributes := attributes_from(fields):
                    body["attributes"] = attributes
                if result := _one(fields, "inspection"):
                    body["inspection"] = {"result": result, "indications": _one(fields, "indications")}
                return await self.job("step", body)

            return await act(request, "Step", send, draft="step")

        @routes.post("/kiosk/ncr/{ncr_id}", include_in_schema=False)
        async def disposition(request: Request, ncr_id: str) -> Response:
            """The badged-in person dispositions or closes an NCR; QA judges their authority."""

            async def send(session: _Session, fields: dict[str, list[str]]) -> dict[str, Any]:
                body: dict[str, Any] = {"ncr": ncr_id}
                if _one(fields, "close") == "yes":
                    body.update(close=True, evidence=_one(fields, "evidence"))
                else:
                    body["disposition"] = _one(fields, "disposition")
                    if approval := _one(fields, "designAuthorityApproval"):
                        body["designAuthorityApproval"] = approval
                return await self.job("disposition", body)

            return await act(request, f"NCR {ncr_id}", send, draft=f"ncr:{ncr_id}")

        @routes.post("/kiosk/regate", include_in_schema=False)
        async def regate(request: Request) -> Response:
            """The gate asked again for the job in hand (after a restart the relay is open until it is)."""

            async def send(session: _Session, fields: dict[str, list[str]]) -> dict[str, Any]:
                held = self.runtime.jobs.session
                body: dict[str, Any] = {
                    "equipment": list(held.equipment),
                    "lots": list(held.lots),
                    "ppe": sorted(held.ppe),
                    "attributes": dict(held.attributes),
                }
                if held.procedure:
                    body["procedure"] = held.procedure
                if held.procedure_revision:
                    body["procedureRevision"] = held.procedure_revision
                return await self.job("start", body)

            return await act(request, "Run the gate again", send)

        @routes.post("/kiosk/take-over", include_in_schema=False)
        async def take_over(request: Request) -> Response:
            async def send(session: _Session, fields: dict[str, list[str]]) -> dict[str, Any]:
                return await self.job("take-over", {"reason": _one(fields, "reason")})

            return await act(request, "Take over the job", send, draft="hold")

        @routes.post("/kiosk/abandon", include_in_schema=False)
        async def abandon(request: Request) -> Response:
            async def send(session: _Session, fields: dict[str, list[str]]) -> dict[str, Any]:
                return await self.job("abandon", {"reason": _one(fields, "reason")})

            return await act(request, "Abandon the job", send, draft="hold")

        @routes.post("/kiosk/release", include_in_schema=False)
        async def release(request: Request) -> Response:
            async def send(session: _Session, fields: dict[str, list[str]]) -> dict[str, Any]:
                return await self.job("release", {"signer": session.person})

            return await act(request, "Release", send)

        @routes.post("/kiosk/handoff", include_in_schema=False)
        async def handoff(request: Request) -> Response:
            async def send(session: _Session, fields: dict[str, list[str]]) -> dict[str, Any]:
                return await self.job("handoff", {})

            return await act(request, "Hand off to the hub", send)

        @routes.post("/kiosk/next-job", include_in_schema=False)
        async def next_job(request: Request) -> Response:
            async def send(session: _Session, fields: dict[str, list[str]]) -> dict[str, Any]:
                return await self.job("badge", {"person": session.person})

            return await act(request, "Next job", send)

        @routes.get("/kiosk/checks", response_class=HTMLResponse, include_in_schema=False)
        async def checks_page(request: Request) -> Response:
            _, session = current(request)
            if session is None:
                return home()
            return self.page(
                request,
                "checks.html",
                page="Station checks",
                outcome=shown_once(session),
                drafts=session.drafts,
                **self.job_context(session.person),
            )

        @routes.post("/kiosk/checks", include_in_schema=False)
        async def check(request: Request) -> Response:
            _, session = current(request)
            if session is None:
                return home()
            fields = await form_fields(request)
            name = _one(fields, "check")
            try:
                readings = readings_from(fields)
                equipment = tuple(v for v in fields.get("equipment", []) if v)
                event = self.event("measure", session.person, equipment=equipment)
                body = {"check": name, "passed": _one(fields, "passed") == "yes", "readings": readings}
                reply = await self.module("maintenance", "check", event, body)
            except KioskInputError as err:
                reply = {"error": str(err)}
            if reply.get("outcome") in ("allow", "warn"):
                session.drafts.pop(f"check:{name}", None)
            else:  # what was typed stays in the form, to correct and send again
                session.drafts[f"check:{name}"] = fields
            session.shown = self.outcome_panel(f"Check {name}", reply)
            return RedirectResponse("/kiosk/checks", status_code=303)

        @routes.post("/kiosk/ask", include_in_schema=False)
        async def ask(request: Request) -> Response:
            async def send(session: _Session, fields: dict[str, list[str]]) -> dict[str, Any]:
                event = self.event("operate", session.person)
                body = {"text": _one(fields, "text"), "badge": session.person}
                reply = await self.module("node-query", "ask", event, body)
                answer = (reply.get("effects") or {}).get("answer")
                if answer is not None:
                    reply = {**reply, "answer": answer}
                return reply

            return await act(request, "Ask SMART", send)

        @routes.post("/kiosk/alerts/{alert_id}/ack", include_in_schema=False)
        async def acknowledge(request: Request, alert_id: str) -> Response:
            async def send(session: _Session, fields: dict[str, list[str]]) -> dict[str, Any]:
                event = self.event("operate", session.person)
                return await self.module("alert-broadcast", "ack", event, {"id": alert_id})

            return await act(request, "Acknowledge alert", send)

        @routes.get("/kiosk/api/banner", include_in_schema=False)
        async def banner() -> JSONResponse:
            """The banner's facts for the page's refresh: no personal data, so no session needed."""
            return JSONResponse(self.banner())

        return routes


def _not_sent(what: str, err: Exception) -> dict[str, Any]:
    return {"error": f"{what} was not sent: the station's bus does not answer ({type(err).__name__})"}
