"""The job across stations: one PO line, serial by serial, through each operation of its released traveler.

Everything here is read from the stations' own ledger entries as the hub
indexed them: what sr-1 received (``handoff.floor_events``), what each
station handed off (``handoff_jobs``: its job id, record and place in the
log), and what was shipped. A serial's row links pt-1's job record to
sr-1's by the PO line and the serial, with each operation's state:
``waiting`` (released to the station, nothing back yet), ``done`` (the
station handed off a job carrying this serial) and, for the receiving and
shipping station, ``received``/``shipped``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from smart.hub import handoff_central
from smart.hub.release.store import FloorEvent, floor_events
from smart.hub.travelers.models import TravelerView


@dataclass(frozen=True, slots=True)
class OperationState:
    seq: int
    station: str
    process: str
    state: str
    job: str | None = None
    ledger_idx: int | None = None
    at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "station": self.station,
            "process": self.process,
            "state": self.state,
            "job": self.job,
            "ledgerIndex": self.ledger_idx,
            "at": self.at.isoformat() if self.at else None,
        }


@dataclass(frozen=True, slots=True)
class SerialTrace:
    serial: str
    received: FloorEvent | None
    operations: tuple[OperationState, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "received": self.received.to_json() if self.received else None,
            "operations": [op.to_json() for op in self.operations],
        }


@dataclass(frozen=True, slots=True)
class JobView:
    po: str
    line: str
    traveler_revision: int | None
    received_quantity: int
    serials: tuple[SerialTrace, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "po": self.po,
            "line": self.line,
            "travelerRevision": self.traveler_revision,
            "receivedQuantity": self.received_quantity,
            "serials": [s.to_json() for s in self.serials],
        }


def job_view(
    conn: psycopg.Connection[Any],
    *,
    po: str,
    line: str,
    serials: tuple[str, ...],
    traveler: TravelerView | None,
) -> JobView:
    events = floor_events(conn, po=po, line=line)
    handed = handoff_central.for_line(conn, po, line)
    receipts = [e for e in events if e.verb == "receive"]
    shipments = [e for e in events if e.verb == "ship"]
    known = list(serials) + [s for e in receipts for s in e.serials if s not in serials]
    traces: list[SerialTrace] = []
    for serial in known:
        received = next((e for e in receipts if serial in e.serials), None)
        states: list[OperationState] = []
        for op in traveler.operations if traveler else ():
            done = next((h for h in handed if h.station == op.station and serial in h.serials), None)
            shipped = next((e for e in shipments if e.station == op.station and serial in e.serials), None)
            if done is not None:
                state = OperationState(
                    op.seq, op.station, op.process, "done", done.job, done.ledger_idx, done.handed_off_at
                )
            elif shipped is not None:
                state = OperationState(
                    op.seq, op.station, op.process, "shipped", shipped.job, shipped.ledger_idx, shipped.at
                )
            elif received is not None and received.station == op.station:
                state = OperationState(
                    op.seq, op.station, op.process, "received", received.job, received.ledger_idx, received.at
                )
            else:
                state = OperationState(op.seq, op.station, op.process, "waiting")
            states.append(state)
        traces.append(SerialTrace(serial, received, tuple(states)))
    return JobView(
        po=po,
        line=line,
        traveler_revision=traveler.revision if traveler else None,
        received_quantity=sum(e.quantity or 0 for e in receipts),
        serials=tuple(traces),
    )
