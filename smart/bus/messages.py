"""What travels on a station's bus, in one place: each message's shape and its one codec.

A module request (``{"event": ..., "body": ...}``) and its reply, the
station's verdict and reasons, the station's port calls (a module in its own
process reaching the node agent) and the JSON form of the station's records
are read here, once, at the edge; past this file the code holds typed
values (frozen dataclasses of :mod:`smart.contracts.facts` and
:mod:`smart.contracts.decisions`), never raw dicts.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from types import MappingProxyType
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from smart.bus import subjects
from smart.contracts import decisions
from smart.contracts import facts as f

#: The stack light's colours, as the alert board decides them and the tower shows them.
Light = Literal["green", "amber", "red"]


class MessageError(ValueError):
    """A message that cannot be read; says which field is wrong. Nothing is decided on it."""


def plain(value: Any) -> Any:
    """A facts value as JSON-ready data, in the shapes :func:`facts.facts_from_json` reads back.

    This is the ``station-records`` codec's writing half: the hub publishes records in this form
    and the station's ports carry facts in it.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, frozenset | set):
        return sorted(plain(item) for item in value)
    if isinstance(value, tuple | list):
        return [plain(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


# -- module requests and replies ----------------------------------------------------------------


class ModuleRequest(BaseModel):
    """A request on ``station.<id>.<module>.<verb>``: the event and the module-specific body."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event: dict[str, Any]
    body: dict[str, Any] | None = None


def read_module_request(data: bytes, *, station: str) -> tuple[f.Event, dict[str, Any]]:
    """``(event, body)`` of a module request for ``station``; :class:`MessageError` says what is wrong."""
    try:
        request = ModuleRequest.model_validate_json(data or b"null")
    except ValidationError as err:
        raise MessageError(_first_error(err) if err.errors() else "not a module request") from err
    return read_event(request.event, station=station), dict(request.body or {})


class ModuleReply(BaseModel):
    """A module's decision as it travels back, the same from every process: its ``entry`` is durable.

    Built from ``ModuleDecision.to_json()``; ``entry`` is the ``node_seq`` of its ``module.decision``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    module: str
    outcome: Literal["allow", "warn", "deny"]
    revisions: dict[str, str] = {}
    reasons: list[dict[str, Any]] = []
    effects: dict[str, Any] = {}
    entry: int | None = None


def module_reply(decision: Mapping[str, Any], *, entry: int | None) -> bytes:
    """The reply bytes for a decision (``ModuleDecision.to_json()``) recorded as ``entry``."""
    return ModuleReply.model_validate({**decision, "entry": entry}).model_dump_json().encode()


def read_module_reply(data: bytes) -> decisions.ModuleAnswer:
    """A module's reply as the asker holds it; :class:`MessageError` says what is wrong.

    An ``{"error": ...}`` reply (the request unreadable, or its decision not recorded) is a
    :class:`MessageError` too: nothing was decided, and the asker refuses.
    """
    try:
        raw = json.loads(data)
    except ValueError as err:
        raise MessageError(f"module reply: not JSON: {err}") from err
    if isinstance(raw, dict) and isinstance(raw.get("error"), str):
        raise MessageError(raw["error"])
    try:
        reply = ModuleReply.model_validate(raw)
        reasons = tuple(decisions.reason_from_json(r) for r in reply.reasons)
    except ValidationError as err:
        raise MessageError(f"module reply: {_first_error(err)}") from err
    except ValueError as err:
        raise MessageError(f"module reply: {err}") from err
    return decisions.ModuleAnswer(
        module=reply.module,
        outcome=reply.outcome,
        reasons=reasons,
        revisions=MappingProxyType(dict(reply.revisions)),
        effects=MappingProxyType(dict(reply.effects)),
        entry=reply.entry,
    )


def module_error(message: str) -> bytes:
    """The reply to a request that was not decided (unreadable, or its decision not recorded)."""
    return json.dumps({"error": message}).encode()


def read_event(value: Any, *, station: str | None = None) -> f.Event:
    """The event of a request, for ``station`` if given; :class:`MessageError` says what is wrong."""
    try:
        event = f.event_from_json(value)
    except ValueError as err:
        raise MessageError(f"event: {err}") from err
    if station is not None and event.station != station:
        raise MessageError(f"event is for station {event.station}, this is {station}")
    return event


# -- heartbeats ------------------------------------------------------------------------------------


class LedgerAlarm(BaseModel):
    """An open alarm of the station's ledger (a refused checkpoint, a fork, shipping refused)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    key: str
    kind: str
    message: str
    since: float


class StationHeartbeat(BaseModel):
    """What a station's agent publishes on ``station.<id>.heartbeat`` every few seconds.

    The revisions it holds in force, how far its ledger is shipped, why the hub refuses it if
    it does, its open ledger alarms, how far its mirrors of the hub's buckets are behind. Read
    by the operator (the Station's status) and by ``smart up``'s floor (``smart status``).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    station: str = Field(min_length=1)
    revisions: dict[str, str] = {}
    ledger_size: int | None = Field(default=None, ge=0)
    shipped_seq: int | None = Field(default=None, ge=-1)
    #: Entries not yet acknowledged by the hub.
    ledger_lag: int | None = Field(default=None, ge=0)
    #: Why the hub refuses the station's ledger, if it does.
    ledger_blocked: str | None = None
    ledger_alarms: tuple[LedgerAlarm, ...] = ()
    #: Messages the station's mirrors of the hub's buckets are behind; none if the leaf cannot say.
    mirror_lag: int | None = Field(default=None, ge=0)
    #: The station's clock when it spoke (seconds since the epoch); judge staleness by your own.
    ts: float | None = None

    def trouble(self) -> tuple[str | None, list[str]]:
        """Why the hub refuses the ledger (or None), and the open ledger alarms but shipping's own."""
        alarms = [a.message for a in self.ledger_alarms if a.key != "ledger-shipping"]
        return self.ledger_blocked or None, alarms


def heartbeat_bytes(status: Mapping[str, Any]) -> bytes:
    """The heartbeat of an agent's ``status()``, checked against the model before it is sent."""
    return StationHeartbeat.model_validate(status).model_dump_json().encode()


def read_heartbeat(subject: str, data: bytes) -> StationHeartbeat:
    """The heartbeat on ``subject``; :class:`MessageError` if it is not one or speaks for another station."""
    try:
        heartbeat = StationHeartbeat.model_validate_json(data)
    except ValidationError as err:
        raise MessageError(f"heartbeat: {_first_error(err)}") from err
    if subject != subjects.heartbeat(heartbeat.station):  # a station speaks only for itself
        raise MessageError(f"heartbeat of {heartbeat.station} on {subject}")
    return heartbeat


# -- alerts ----------------------------------------------------------------------------------------


class Lit(Protocol):
    """Anything that says what the tower should show: the alert board, a notice of it."""

    @property
    def light(self) -> Light: ...

    @property
    def buzzer(self) -> bool: ...


class AlertNotice(BaseModel):
    """What AlertBroadcast publishes on ``station.<id>.alert`` at each change of its board.

    ``light`` and ``buzzer`` are the board's after the change; the tower's driver shows them,
    whichever process the alert board runs in.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    change: str
    #: The alert that changed; none when the gate's decision alone relit the tower (``change`` "gate").
    alert: dict[str, Any] | None = None
    light: Light
    buzzer: bool
    #: The whole board after the change (every open alert), so a kiosk in another process than
    #: AlertBroadcast shows what it would show in-process; ``change`` "board" when only re-told.
    board: dict[str, Any] | None = None


def read_alert_notice(data: bytes) -> AlertNotice:
    """A notice from the alert subject; :class:`MessageError` says which field is wrong."""
    try:
        return AlertNotice.model_validate_json(data)
    except ValidationError as err:
        raise MessageError(f"alert notice: {_first_error(err)}") from err


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "(message)"
    return f"{where}: {first.get('msg')}"
