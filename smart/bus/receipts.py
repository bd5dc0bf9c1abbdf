"""The hub intake's answer to a station's ledger batches, as it goes over NATS.

A station's batch stored in the hub's ``LEDGER`` stream is not yet in the
hub's log: the intake may still refuse it (a fork, a gap, bytes that are not
canonical). So the station moves its shipping cursor only on a receipt, sent
by the intake after each fetch is committed or refused, on
``station.<id>.ledger.receipt`` (inside the station's own subjects, which its
leaf receives). A receipt says how many of the station's entries the hub
holds (``hub_has``: ship from there), and, when something was refused, why,
what kind of refusal it is and the alarm it raised. Both sides import this
file so the wire format is written once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from smart.bus import subjects

#: ``accepted``: all taken; ``gap``: the hub lacks earlier entries (ship from ``hub_has``);
#: ``refused``: the batch will not be taken (fork, not canonical, bad head, blocked by an alarm).
Status = Literal["accepted", "gap", "refused"]


def receipt_subject(station: str) -> str:
    return subjects.station_subject(station, "ledger", "receipt")


@dataclass(frozen=True, slots=True)
class Receipt:
    station: str
    status: Status
    hub_has: int
    reason: str | None = None
    kind: str | None = None  # fork, refused, blocked, gap
    alarm: int | None = None

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "station": self.station,
                "status": self.status,
                "hub_has": self.hub_has,
                "reason": self.reason,
                "kind": self.kind,
                "alarm": self.alarm,
            }
        ).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Receipt:
        body = json.loads(raw)
        status = body["status"]
        if status not in ("accepted", "gap", "refused"):
            raise ValueError(f"receipt status {status!r} is not one of accepted, gap, refused")
        alarm = body.get("alarm")
        return cls(
            str(body["station"]),
            status,
            int(body["hub_has"]),
            None if body.get("reason") is None else str(body["reason"]),
            None if body.get("kind") is None else str(body["kind"]),
            None if alarm is None else int(alarm),
        )
