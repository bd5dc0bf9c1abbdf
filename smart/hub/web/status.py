"""What the hub status page and ``/api/status`` show: each part of the floor, healthy or why not.

The embedded floor fills these from its supervised servers; ``smart hub run`` from the database
and NATS it was given. Kept with the hub (not the floor) so the hub never needs the embedded runtime.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field


class ServiceHealth(BaseModel):
    """One part of the floor as the status page and ``/api/status`` show it."""

    name: str
    kind: Literal["database", "hub-nats", "station-leaf", "station-agent"]
    healthy: bool
    detail: str = Field(default="", description="Why not healthy, in plain words; empty when healthy.")
    state: str
    pid: int | None = None
    restarts: int = 0
    station: str | None = None
    jetstream_domain: str | None = None
    storage_bytes: int | None = None
    url: str | None = None
    online: bool | None = Field(default=None, description="Station agents: heard from lately.")
    revisions: dict[str, str] = Field(default_factory=dict, description="Active contract revisions.")
    ledger_lag: int | None = Field(
        default=None, description="Entries of the station's ledger the hub has not taken yet."
    )
    ledger_blocked: str | None = Field(
        default=None,
        description="Why the hub refuses the station's ledger (a fork, a refused entry); null if not.",
    )
    ledger_alarms: list[str] = Field(
        default_factory=list, description="The station's open ledger alarms (witness refusals, a bad entry)."
    )
    mirror_lag: int | None = Field(
        default=None, description="Messages the station's mirrors of hub buckets are behind the hub."
    )


def ledger_trouble(heartbeat: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """From a station's heartbeat: why the hub refuses its ledger (or None), and its open ledger alarms.

    A station whose ledger the hub refuses is not healthy, whatever its lag says: the lag of a
    blocked station only grows, and nobody would look at a green row.
    """
    blocked = heartbeat.get("ledger_blocked")
    alarms = [
        str(alarm.get("message", alarm))
        for alarm in heartbeat.get("ledger_alarms") or []
        if isinstance(alarm, dict) and alarm.get("key") != "ledger-shipping"
    ]
    return (str(blocked) if blocked else None), alarms


class FloorStatus(BaseModel):
    healthy: bool
    services: list[ServiceHealth]
    checked_at: float


def station_heard(
    station: str, heard: tuple[float, Any] | None, *, offline_after_s: float, now: float | None = None
) -> ServiceHealth:
    """A station as a hub without the embedded floor sees it: from its last heartbeat alone.

    ``heard`` is (when the hub received it, the :class:`smart.bus.messages.StationHeartbeat`); a
    station never heard from, or silent for longer than ``offline_after_s``, is not healthy and
    the row says why, as is one whose ledger the hub refuses or that has a ledger alarm open.
    """
    now = time.time() if now is None else now
    if heard is None:
        return ServiceHealth(
            name=f"node-{station}",
            kind="station-agent",
            healthy=False,
            detail="no heartbeat from the station yet",
            state="unknown",
            station=station,
            online=False,
        )
    at, heartbeat = heard
    blocked, alarms = heartbeat.trouble()
    online = now - at <= offline_after_s
    if blocked is not None:
        detail = f"ledger blocked: {blocked}"
    elif alarms:
        detail = f"ledger alarm: {alarms[0]}"
    elif not online:
        detail = f"offline: no heartbeat for {now - at:.0f} s"
    else:
        detail = ""
    return ServiceHealth(
        name=f"node-{station}",
        kind="station-agent",
        healthy=not detail,
        detail=detail,
        state="running" if online else "offline",
        station=station,
        online=online,
        revisions=dict(heartbeat.revisions),
        ledger_lag=heartbeat.ledger_lag,
        ledger_blocked=blocked,
        ledger_alarms=alarms,
        mirror_lag=heartbeat.mirror_lag,
    )
