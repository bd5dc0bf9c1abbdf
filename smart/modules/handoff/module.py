"""HandoffNode: a released job's record handed to the hub, exactly once, across restarts.

The node agent already ships every ledger entry to the hub in order, each
exactly once (the hub's intake drops a repeat, and the station's cursor of
what the hub acknowledged is durable). So handing a job off is putting one
``job.handoff`` entry on the ledger with the job's whole record, and
knowing whether the hub has it yet: it does once the agent's shipped cursor
(``StationStore.shipped_seq``) has passed the entry.

Verb ``job`` (body ``job``, or the event's job): the job must have been
released (or shipped) here, as the ledger's ``job.transition`` entries say.
If the ledger already holds the job's ``job.handoff`` entry, that entry is
the answer (asked again, after a restart too, nothing is added); otherwise
the entry is appended with the record from the station's records (or, if
they lack it, the record the hand-off transition carried). The effects say
which entry it is, whether it was recorded now, and ``atHub``.

The ledger is read once from the start, on the first request, and then only
what was appended since.
"""

from __future__ import annotations

from typing import Any

from smart import ledger
from smart.bus import messages
from smart.contracts import engine
from smart.contracts import facts as f
from smart.modules import framework

HANDOFF_KIND = "job.handoff"
_RELEASING = ("release", "ship")


class HandoffModule(framework.StationModule):
    """Verb ``job``: the job's ``job.handoff`` entry, recorded once, and whether the hub holds it."""

    name = "handoff"

    def __init__(self, station: framework.StationContext, manifest: framework.ModuleManifest) -> None:
        super().__init__(station, manifest)
        self._read_to = 0
        self._released: dict[str, ledger.Entry] = {}
        self._handed: dict[str, ledger.Entry] = {}
        self._transitions: dict[str, ledger.Entry] = {}

    async def handle(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        if event.verb != "job":
            return self._refuse("verb", f"handoff does not answer {event.verb!r}; it answers job")
        station = self.station.station
        job_id = event.body.get("job") or event.event.job
        if not isinstance(job_id, str) or not job_id:
            return self._refuse("request", "a hand-off names its job (body.job or the event's job)")
        await self._read()
        entry = self._handed.get(job_id)
        recorded = False
        if entry is None:
            released = self._released.get(job_id)
            if released is None:
                return self._refuse("not-released", f"job {job_id} has not been released at {station}")
            entry = await self.station.record(
                kind=HANDOFF_KIND,
                subject=job_id,
                data={
                    "job": job_id,
                    "station": station,
                    "record": await self._record(job_id),
                    "released": {
                        "entry": released.node_seq,
                        "verb": released.data.get("verb"),
                        "at": released.ts,
                        # when the release (or shipment) happened at the station, as the machine saw it
                        "releasedAt": released.data.get("at"),
                    },
                },
                actor=event.event.person or station,
            )
            self._handed[job_id] = entry
            recorded = True
        shipped = await self.station.shipped_seq()
        return framework.ModuleDecision(
            module=self.name,
            outcome="allow",
            effects={
                "job": job_id,
                "entry": entry.node_seq,
                "recorded": recorded,
                "atHub": entry.node_seq <= shipped,
                "shippedSeq": shipped,
            },
        )

    def _refuse(self, rule: str, message: str) -> framework.ModuleDecision:
        reason = engine.Reason(f"handoff.{rule}", message)
        return framework.ModuleDecision(module=self.name, outcome="deny", reasons=(reason,))

    async def _read(self) -> None:
        """Take in the ledger's entries appended since the last read (all of them, the first time)."""
        size = await self.station.ledger_size()
        while self._read_to < size:
            stop = min(size, self._read_to + 1000)
            for entry in await self.station.entries(self._read_to, stop):
                job_id = entry.subject
                if entry.kind == HANDOFF_KIND:
                    self._handed.setdefault(job_id, entry)
                elif entry.kind == "job.transition" and entry.data.get("allowed"):
                    if entry.data.get("verb") in _RELEASING:
                        self._released[job_id] = entry
                    if entry.data.get("record") is not None:
                        self._transitions[job_id] = entry
            self._read_to = stop

    async def _record(self, job_id: str) -> Any:
        held = await self.station.held("job", job_id)
        if isinstance(held, f.Job):
            return messages.plain(held)
        transition = self._transitions.get(job_id)
        return transition.data.get("record") if transition is not None else None
