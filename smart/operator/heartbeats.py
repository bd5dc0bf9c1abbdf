"""Station status in Kubernetes from the stations' heartbeats.

Each station's node agent publishes a heartbeat on ``station.<id>.heartbeat`` every few seconds
(the revisions it holds in force, how far its mirrors of the hub's buckets are behind, how many
ledger entries it has not shipped yet). The operator
listens on the hub NATS and keeps each Station's status in step, through the status subresource:

- ``online``: heard within ``station_offline_after_s`` (a setting);
- ``lastHeartbeat``: when the operator last heard the station (the operator's clock, not the
  station's, so a station with a wrong clock is judged fairly);
- ``activeRevisions``: contract → revision the station reports in force; ``activeRevision`` is its
  short form for ``kubectl get stations`` (one revision's first 12 hex digits, or "N revisions");
- ``mirrorLag``: how many messages the station's mirrors of the hub's buckets (its contracts,
  records, keys) are behind the hub's streams, as its leaf last knew them; 0 when caught up. (A
  contract sent but not yet in force shows as ``revisions`` differing from ``activeRevisions``.)
- ``ledgerLag``: the station's ledger entries not yet shipped to the hub.

A silent station keeps the last revisions it reported and turns ``online: false``.

Writes are throttled so that six stations heartbeating every two seconds do not flood the API
server: a status is patched at once when ``online``, the revisions or the mirror lag change, and
otherwise (the heartbeat time, the ledger lag) at most every ``refresh_s`` seconds. A station not
heard since the operator started is called offline only once the operator has itself listened for
the offline time, so a restarted operator does not flap every station offline.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pydantic
import structlog
from nats.aio.msg import Msg

from smart.bus import messages
from smart.contracts.models import Station, StationStatus

log = structlog.get_logger("smart.operator.heartbeats")

#: Fields whose change is written at once; the others wait for the refresh interval.
SIGNIFICANT = ("online", "activeRevision", "activeRevisions", "mirrorLag")
#: Longest a Station's ``lastHeartbeat`` and ``ledgerLag`` go unrefreshed while nothing else changes.
REFRESH_S = 15.0


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """One heartbeat as the operator heard it."""

    station: str
    revisions: Mapping[str, str]
    ledger_lag: int | None
    heard_at: float  # time.monotonic() on receipt
    heard_wall: float  # time.time() on receipt
    mirror_lag: int | None = None


def parse(subject: str, data: bytes, *, heard_at: float, heard_wall: float) -> Heartbeat | None:
    """The heartbeat in a message, or ``None`` if it is not one or speaks for another station."""
    try:
        read = messages.read_heartbeat(subject, data)
    except messages.MessageError as err:
        log.debug("heartbeat unread", subject=subject, error=str(err))
        return None
    return Heartbeat(
        read.station,
        MappingProxyType(dict(read.revisions)),
        read.ledger_lag,
        heard_at,
        heard_wall,
        read.mirror_lag,
    )


@dataclass
class Heard:
    """The last heartbeat of each station, fed by the NATS subscription."""

    since: float = field(default_factory=time.monotonic)
    last: dict[str, Heartbeat] = field(default_factory=dict)

    async def on_message(self, message: Msg) -> None:
        heartbeat = parse(message.subject, message.data, heard_at=time.monotonic(), heard_wall=time.time())
        if heartbeat is not None:
            self.last[heartbeat.station] = heartbeat

    def active(
        self, stations: Iterable[Station], *, now: float, offline_after_s: float
    ) -> dict[str, Mapping[str, str]]:
        """Station id → the revisions it reports in force, for the stations whose report counts now.

        A station heard within the offline time counts with what it said; a silent one does not
        count (its last word may be stale). While the operator has listened for less than the
        offline time, a station not heard yet counts with what its Station status shows (the
        last report written before a restart, if it was online then), so a restart with nothing
        changed changes no contract's Ready.
        """
        found: dict[str, Mapping[str, str]] = {}
        warming = now - self.since <= offline_after_s
        for station in stations:
            sid = station.spec.station_id
            heard = self.last.get(sid)
            if heard is not None:
                if now - heard.heard_at <= offline_after_s:
                    found[sid] = heard.revisions
            elif warming:
                try:
                    shown = StationStatus.model_validate(station.status or {})
                except pydantic.ValidationError:
                    continue
                if shown.online:
                    found[sid] = shown.active_revisions
        return found


def _timestamp(wall: float) -> str:
    moment = datetime.datetime.fromtimestamp(wall, datetime.UTC).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


def _short(revisions: Mapping[str, str]) -> str:
    short = sorted({r[:12] for r in revisions.values()})
    return short[0] if len(short) == 1 else (f"{len(short)} revisions" if short else "-")


def desired(
    station: Station, heard: Heartbeat | None, *, now: float, listening_since: float, offline_after_s: float
) -> dict[str, Any] | None:
    """The status fields the heartbeats say ``station`` should show; ``None`` while it is too early to say."""
    if heard is None:
        if now - listening_since <= offline_after_s:
            return None
        return _patch(StationStatus(online=False))
    fields: dict[str, Any] = {
        "online": now - heard.heard_at <= offline_after_s,
        "last_heartbeat": _timestamp(heard.heard_wall),
        "active_revisions": dict(heard.revisions),
        "active_revision": _short(heard.revisions),
    }
    if heard.mirror_lag is not None:
        fields["mirror_lag"] = heard.mirror_lag
    if heard.ledger_lag is not None:
        fields["ledger_lag"] = heard.ledger_lag
    status = _patch(StationStatus(**fields))
    # Merge patch: a contract the station no longer reports is set to null, which drops it.
    shown = dict((station.status or {}).get("activeRevisions") or {})
    status["activeRevisions"] = {**dict.fromkeys(shown), **status["activeRevisions"]}
    return status


def _patch(status: StationStatus) -> dict[str, Any]:
    """The typed status as the fields it sets (only those), in the API's camelCase."""
    return status.model_dump(mode="json", by_alias=True, exclude_unset=True)


def _comparable(status: Mapping[str, Any]) -> dict[str, Any]:
    """A status with the nulls a merge patch uses to drop keys taken out, for comparing what is shown."""
    return {
        k: ({c: r for c, r in v.items() if r is not None} if isinstance(v, dict) else v)
        for k, v in status.items()
    }


@dataclass(frozen=True, slots=True)
class Written:
    status: dict[str, Any]
    at: float


def due(previous: Written | None, status: Mapping[str, Any], *, now: float, refresh_s: float) -> bool:
    """Whether ``status`` is worth a write, given what was written last and when."""
    if previous is None:
        return True
    old, new = _comparable(previous.status), _comparable(status)
    if any(old.get(k) != new.get(k) for k in SIGNIFICANT if k in new):
        return True
    return old != {**old, **new} and now - previous.at >= refresh_s


StationKey = tuple[str, str]  # namespace, name
Patch = Callable[[str, str, dict[str, Any]], Awaitable[None]]


async def keep_status(
    *,
    heard: Heard,
    stations: Callable[[], Iterable[Station]],
    patch: Patch,
    offline_after_s: float,
    refresh_s: float = REFRESH_S,
) -> None:
    """Forever: compare each Station's status with the heartbeats and patch the ones that are due.

    ``patch(namespace, name, status)`` writes through the status subresource; a failed write is
    logged and tried again on a later tick.
    """
    tick = min(1.0, offline_after_s / 4)
    written: dict[StationKey, Written] = {}
    while True:
        now = time.monotonic()
        seen: set[StationKey] = set()
        for station in stations():
            key = (station.metadata.namespace or "default", station.metadata.name)
            seen.add(key)
            status = desired(
                station,
                heard.last.get(station.spec.station_id),
                now=now,
                listening_since=heard.since,
                offline_after_s=offline_after_s,
            )
            if status is None:
                continue
            if key not in written:  # what the object shows now, as if written long ago
                shown = {k: v for k, v in (station.status or {}).items() if k in status}
                written[key] = Written(shown, float("-inf"))
            if not due(written[key], status, now=now, refresh_s=refresh_s):
                continue
            try:
                await patch(*key, status)
            except Exception as err:  # the API server or the login may not be there yet; next tick
                log.warning("station status not written", station=key[1], error=str(err)[:200])
                continue
            if written[key].status.get("online") != status["online"]:
                log.info("station online" if status["online"] else "station offline", station=key[1])
            written[key] = Written(status, now)
        for gone in set(written) - seen:
            del written[gone]
        await asyncio.sleep(tick)
