"""The station's ports, in-process and over the station's leaf: how a module reaches its station.

A module sees its station only as :class:`smart.modules.framework.StationContext`
(records, the active revisions, the node ledger, badges, the bus). Two
implementations give the same answers:

- :class:`LocalPorts`, in the process that holds the station (``smart node
  run``, the systemd fallback, ``smart up``): each call goes straight to the
  station runtime, no bus hop.
- :class:`BusPorts`, in a module's own process (``smart module run``): each
  call is a request on ``station.<id>.ports.<verb>`` over the station's leaf,
  answered by :func:`serve` in the station's agent process, which stays the
  node log's one writer. ``record`` returns only once the agent has appended
  the entry durably (the reply carries the entry's bytes); an agent that does
  not answer is an error, and the module's decision fails closed.

Every reply is ``{"value": ...}`` or ``{"error": "<verb>: what is wrong"}``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from smart import ledger
from smart.bus import messages
from smart.contracts import engine
from smart.contracts import facts as f
from smart.contracts.decisions import StationDecision, reason_from_json
from smart.modules import framework
from smart.node import records

if TYPE_CHECKING:
    from smart.node.station import StationRuntime

log = structlog.get_logger("smart.node.ports")

#: The pseudo-module whose subjects the ports answer on: ``station.<id>.ports.<verb>``.
PORTS = "ports"
#: Entries per reply when a module reads the ledger over the bus (well under NATS's 1 MiB payload).
ENTRIES_PAGE = 200


class PortError(RuntimeError):
    """A port call the station's agent refused or did not answer; the module's decision fails closed."""


def _held_json(held: framework.HeldRevision) -> dict[str, Any]:
    return {
        "contract": held.contract,
        "revision": held.revision,
        "envelope": held.envelope.decode(),
        "activatedAt": held.activated_at,
    }


class LocalPorts:
    """The ports in the station's own process: straight calls into the runtime, no bus hop."""

    def __init__(self, runtime: StationRuntime) -> None:
        self._runtime = runtime

    @property
    def station(self) -> str:
        return self._runtime.station

    @property
    def data_dir(self) -> Path:
        return self._runtime.data_dir

    async def facts(self) -> f.Facts:
        return self._runtime.facts()

    async def held(self, kind: str, key: str) -> Any | None:
        return self._runtime.held(kind, key)

    async def keep(self, kind: str, record: Any, *, actor: str) -> None:
        self._runtime.keep(kind, record, actor=actor)

    async def judge(self, event: f.Event, *, module: str) -> StationDecision:
        return self._runtime.judge(event, module=module)

    async def judge_kinds(self, event: f.Event, *, kinds: Collection[str]) -> StationDecision:
        return self._runtime.judge_kinds(event, kinds=kinds)

    def _store(self) -> Any:
        store = self._runtime.agent.store
        if store is None:
            raise PortError(f"the store of station {self.station} is not open")
        return store

    def _log(self) -> ledger.NodeLog:
        log_ = self._runtime.agent.ledger
        if log_ is None:
            raise PortError(f"the ledger of station {self.station} is not open")
        return log_

    async def active_revisions(self) -> list[framework.HeldRevision]:
        return [
            framework.HeldRevision(a.contract, a.revision, a.envelope, a.activated_at)
            for a in self._store().active()
        ]

    async def revision_history(self, contract: str | None = None) -> list[framework.RevisionChange]:
        return [
            framework.RevisionChange(a.contract, a.revision, a.previous, a.at)
            for a in self._store().history(contract)
        ]

    async def envelope(self, contract: str, revision: str) -> bytes | None:
        found: bytes | None = self._store().envelope(contract, revision)
        return found

    async def record(
        self,
        *,
        kind: str,
        subject: str,
        data: Mapping[str, Any],
        actor: str,
        revisions: Mapping[str, str] | None = None,
    ) -> ledger.Entry:
        return self._runtime.record(kind=kind, subject=subject, data=data, actor=actor, revisions=revisions)

    async def ledger_size(self) -> int:
        return self._log().size()

    async def entries(self, start: int, stop: int | None = None) -> list[ledger.Entry]:
        return self._log().entries(start, stop)

    async def shipped_seq(self) -> int:
        seq: int = self._store().shipped_seq(self.station)
        return seq

    async def jobs_served_by(self, equipment: str, *, since: datetime | None) -> list[str]:
        return self._runtime.jobs_served_by(equipment, since=since)

    async def badged_in(self) -> str | None:
        return self._runtime.badged_in()

    async def badge_refusals(self, badge: str | None, at: datetime) -> tuple[engine.Reason, ...]:
        badges = self._runtime.badges
        return () if badges is None else badges.judge(badge, at)

    async def publish(self, subject: str, body: Mapping[str, Any]) -> None:
        await self._runtime.publish(subject, body)

    async def request(self, subject: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self._runtime.request(subject, body)


# -- the agent's side: answering the ports on the leaf ----------------------------------------------


def _when(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise messages.MessageError(f"{field}: expected an ISO date and time")
    try:
        return datetime.fromisoformat(value)
    except ValueError as err:
        raise messages.MessageError(f"{field}: {err}") from err


def _text(body: Mapping[str, Any], field: str, *, optional: bool = False) -> Any:
    value = body.get(field)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise messages.MessageError(f"{field}: expected text")
    return value


def _seq(body: Mapping[str, Any], field: str, *, optional: bool = False) -> Any:
    value = body.get(field)
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise messages.MessageError(f"{field}: expected a ledger entry number")
    return value


async def answer(ports: LocalPorts, verb: str, body: Mapping[str, Any]) -> Any:
    """The JSON value of port call ``verb`` with ``body``, answered by the station's own ports."""
    station = ports.station
    if verb == "facts":
        return messages.plain(await ports.facts())
    if verb == "held":
        kind = _text(body, "kind")
        return messages.plain(await ports.held(kind, _text(body, "key")))
    if verb == "keep":
        kind = _text(body, "kind")
        try:
            record = records.parse(kind, body.get("record"))
        except records.RecordError as err:
            raise messages.MessageError(str(err)) from err
        await ports.keep(kind, record, actor=_text(body, "actor"))
        return None
    if verb in ("judge", "judge_kinds"):
        event = messages.read_event(body.get("event"), station=station)
        if verb == "judge":
            decision = await ports.judge(event, module=_text(body, "module"))
        else:
            kinds = body.get("kinds")
            if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
                raise messages.MessageError("kinds: expected a list of rule kinds")
            decision = await ports.judge_kinds(event, kinds=kinds)
        return decision.to_json()
    if verb == "active_revisions":
        return [_held_json(held) for held in await ports.active_revisions()]
    if verb == "revision_history":
        changes = await ports.revision_history(_text(body, "contract", optional=True))
        return [
            {"contract": c.contract, "revision": c.revision, "previous": c.previous, "at": c.at}
            for c in changes
        ]
    if verb == "envelope":
        found = await ports.envelope(_text(body, "contract"), _text(body, "revision"))
        return None if found is None else found.decode()
    if verb == "record":
        data, revisions = body.get("data"), body.get("revisions")
        if not isinstance(data, dict):
            raise messages.MessageError("data: expected an object")
        if revisions is not None and not isinstance(revisions, dict):
            raise messages.MessageError("revisions: expected an object of contract → revision")
        entry = await ports.record(
            kind=_text(body, "kind"),
            subject=_text(body, "subject"),
            data=data,
            actor=_text(body, "actor"),
            revisions=revisions,
        )
        return entry.raw.decode()
    if verb == "ledger_size":
        return await ports.ledger_size()
    if verb == "entries":
        start = _seq(body, "start")
        stop = _seq(body, "stop", optional=True)
        stop = start + ENTRIES_PAGE if stop is None else min(stop, start + ENTRIES_PAGE)
        return [entry.raw.decode() for entry in await ports.entries(start, stop)]
    if verb == "shipped_seq":
        return await ports.shipped_seq()
    if verb == "jobs_served_by":
        since = body.get("since")
        return await ports.jobs_served_by(
            _text(body, "equipment"), since=None if since is None else _when(since, "since")
        )
    if verb == "badged_in":
        return await ports.badged_in()
    if verb == "badge_refusals":
        badge = _text(body, "badge", optional=True)
        refusals = await ports.badge_refusals(badge, _when(body.get("at"), "at"))
        return [reason.to_json() for reason in refusals]
    raise messages.MessageError(f"no port {verb!r}")


async def serve(connection: NatsClient, ports: LocalPorts) -> Subscription:
    """Answer ``station.<id>.ports.<verb>`` with ``ports`` until the subscription is dropped."""

    async def on_request(message: Msg) -> None:
        verb = message.subject.rsplit(".", 1)[-1]
        try:
            body = json.loads(message.data or b"{}")
            if not isinstance(body, dict):
                raise messages.MessageError("expected a JSON object")
            reply: dict[str, Any] = {"value": await answer(ports, verb, body)}
        except (messages.MessageError, ValueError, PortError, ledger.EntryError) as err:
            reply = {"error": f"{verb}: {err}"}
        except Exception as err:  # the store or the ledger failed: say so, the module fails closed
            log.exception("ports.failed", station=ports.station, verb=verb)
            reply = {"error": f"{verb}: {type(err).__name__}: {err}"}
        await message.respond(json.dumps(reply).encode())

    return await connection.subscribe(framework.subject(ports.station, PORTS, "*"), cb=on_request)


# -- a module's own process: the same ports over the leaf --------------------------------------------


class BusPorts:
    """The ports in a module's own process: each call a request to the station's agent on the leaf."""

    def __init__(
        self, connection: NatsClient, *, station: str, data_dir: Path, timeout_s: float = 5.0
    ) -> None:
        self._connection = connection
        self._station = station
        self._data_dir = data_dir
        self.timeout_s = timeout_s

    @property
    def station(self) -> str:
        return self._station

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    async def _call(self, verb: str, body: Mapping[str, Any] | None = None) -> Any:
        subject = framework.subject(self._station, PORTS, verb)
        payload = json.dumps(dict(body or {})).encode()
        try:
            reply = await self._connection.request(subject, payload, timeout=self.timeout_s)
        except Exception as err:
            raise PortError(
                f"the agent of station {self._station} did not answer {verb}: {type(err).__name__}"
            ) from err
        answer_: dict[str, Any] = json.loads(reply.data)
        if "error" in answer_:
            raise PortError(f"the agent of station {self._station} refused {answer_['error']}")
        return answer_.get("value")

    async def facts(self) -> f.Facts:
        return f.facts_from_json(await self._call("facts"))

    async def held(self, kind: str, key: str) -> Any | None:
        value = await self._call("held", {"kind": kind, "key": key})
        return None if value is None else records.parse(kind, value)

    async def keep(self, kind: str, record: Any, *, actor: str) -> None:
        await self._call("keep", {"kind": kind, "record": messages.plain(record), "actor": actor})

    async def judge(self, event: f.Event, *, module: str) -> StationDecision:
        value = await self._call("judge", {"event": messages.plain(event), "module": module})
        return StationDecision.from_json(value)

    async def judge_kinds(self, event: f.Event, *, kinds: Collection[str]) -> StationDecision:
        value = await self._call("judge_kinds", {"event": messages.plain(event), "kinds": list(kinds)})
        return StationDecision.from_json(value)

    async def active_revisions(self) -> list[framework.HeldRevision]:
        return [
            framework.HeldRevision(
                str(v["contract"]), str(v["revision"]), str(v["envelope"]).encode(), str(v["activatedAt"])
            )
            for v in await self._call("active_revisions")
        ]

    async def revision_history(self, contract: str | None = None) -> list[framework.RevisionChange]:
        return [
            framework.RevisionChange(str(v["contract"]), v.get("revision"), v.get("previous"), str(v["at"]))
            for v in await self._call("revision_history", {"contract": contract})
        ]

    async def envelope(self, contract: str, revision: str) -> bytes | None:
        value = await self._call("envelope", {"contract": contract, "revision": revision})
        return None if value is None else str(value).encode()

    async def record(
        self,
        *,
        kind: str,
        subject: str,
        data: Mapping[str, Any],
        actor: str,
        revisions: Mapping[str, str] | None = None,
    ) -> ledger.Entry:
        body = {
            "kind": kind,
            "subject": subject,
            "data": dict(data),
            "actor": actor,
            "revisions": None if revisions is None else dict(revisions),
        }
        raw = await self._call("record", body)
        return ledger.Entry.from_bytes(str(raw).encode(), canonical=False)

    async def ledger_size(self) -> int:
        return int(await self._call("ledger_size"))

    async def entries(self, start: int, stop: int | None = None) -> list[ledger.Entry]:
        end = await self.ledger_size() if stop is None else stop
        found: list[ledger.Entry] = []
        while start < end:
            page = await self._call("entries", {"start": start, "stop": end})
            if not page:
                break
            found.extend(ledger.Entry.from_bytes(str(raw).encode(), canonical=False) for raw in page)
            start = found[-1].node_seq + 1
        return found

    async def shipped_seq(self) -> int:
        return int(await self._call("shipped_seq"))

    async def jobs_served_by(self, equipment: str, *, since: datetime | None) -> list[str]:
        body = {"equipment": equipment, "since": None if since is None else since.isoformat()}
        return [str(job) for job in await self._call("jobs_served_by", body)]

    async def badged_in(self) -> str | None:
        value = await self._call("badged_in")
        return None if value is None else str(value)

    async def badge_refusals(self, badge: str | None, at: datetime) -> tuple[engine.Reason, ...]:
        value = await self._call("badge_refusals", {"badge": badge, "at": at.isoformat()})
        return tuple(reason_from_json(r) for r in value)

    async def publish(self, subject: str, body: Mapping[str, Any]) -> None:
        if not self._connection.is_connected:
            log.warning("module.publish_dropped", station=self._station, subject=subject)
            return
        await self._connection.publish(subject, json.dumps(dict(body), default=str).encode())

    async def request(self, subject: str, body: Mapping[str, Any]) -> dict[str, Any]:
        if not self._connection.is_connected:
            raise ConnectionError(f"the bus of station {self._station} is not connected")
        reply = await self._connection.request(
            subject, json.dumps(dict(body), default=str).encode(), timeout=self.timeout_s * 3
        )
        answer_: dict[str, Any] = json.loads(reply.data)
        return answer_
