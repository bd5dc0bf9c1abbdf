"""What the hub status page and ``/api/status`` show: each part of the floor, healthy or why not.

The embedded floor fills these from its supervised servers; ``smart hub run`` from the database
and NATS it was given. Kept with the hub (not the floor) so the hub never needs the embedded runtime.
"""

from __future__ import annotations

from typing import Literal

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
    ledger_lag: int | None = Field(default=None, description="Entries the station has not shipped yet.")
    mirror_lag: int | None = Field(
        default=None, description="Messages the station's mirrors of hub buckets are behind the hub."
    )


class FloorStatus(BaseModel):
    healthy: bool
    services: list[ServiceHealth]
    checked_at: float
