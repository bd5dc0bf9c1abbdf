"""Vision at the station: each code read from the station's scan folder becomes the job request it implies.

On start the module watches ``<station data dir>/scans`` (created if
missing; images already there are not scanned again after a restart) with a
:class:`~smart.modules.vision.watcher.Watcher` in its own thread, so reading
and decoding never hold up a decision. Each code read is added to what was
scanned so far (:class:`~smart.modules.vision.codes.Scanned`) and sent, on
the station's own bus as a kiosk would send it, to the job machine:

- a badge → ``station.<id>.job.badge``; a second, different badge is the
  supervisor's while the first person is badged in (or just after their
  badge was refused: a trainee's), otherwise a new person's;
- a traveler and a part's code, once both are in → ``station.<id>.job.scan``
  (the gate judges the part against the PO: a wrong serial is refused there,
  with the reason, in the reply);
- a PPE tag is kept for the next start; nothing is sent.

Every image leaves a ``vision.scan`` entry on the ledger: the code's kind,
the decoder, the file's name, what was asked and the reply's outcome with
its rule ids (or why nothing could be read). A badge is recorded by its id
only, never a name.

Verbs: ``status`` (the folder, frames read, the last scans); ``frame`` is
refused — frames come from the folder or a camera, not over the bus.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from pathlib import Path
from typing import Any

import structlog

from smart.contracts import engine
from smart.modules import framework
from smart.modules.vision import codes, sources, watcher

log = structlog.get_logger("smart.modules.vision")

SCAN_KIND = "vision.scan"
SCANS_FOLDER = "scans"
#: How long after a badge is refused the next, different badge counts as its supervisor's.
SUPERVISOR_WINDOW_S = 60.0


def describe(code: codes.Code) -> dict[str, Any]:
    """What the ledger keeps of a code: its kind and ids (a badge's id only)."""
    if isinstance(code, codes.Badge):
        return {"code": "badge", "person": code.person}
    if isinstance(code, codes.Traveler):
        return {"code": "traveler", "job": code.job, "operation": code.operation}
    if isinstance(code, codes.Part):
        return {"code": "part", "po": code.po, "line": code.line, "part": code.part, "serial": code.serial}
    return {"code": "ppe", "item": code.item}


class VisionModule(framework.StationModule):
    """The scan folder watched while the module runs; verb ``status``."""

    name = "vision"

    def __init__(self, station: framework.StationContext, manifest: framework.ModuleManifest) -> None:
        super().__init__(station, manifest)
        self.scanned = codes.Scanned()
        self.folder: Path | None = None
        self.watcher: watcher.Watcher | None = None
        self.last: collections.deque[dict[str, Any]] = collections.deque(maxlen=10)
        self._lock = asyncio.Lock()
        self._refused_at: float | None = None

    async def start(self) -> None:
        self.folder = self.station.data_dir / SCANS_FOLDER
        self.folder.mkdir(parents=True, exist_ok=True)
        self.watcher = watcher.Watcher(sources.FolderSource(self.folder, skip_existing=True), self._seen)
        self.watcher.start()
        log.info("vision.watching", station=self.station.station, folder=str(self.folder))

    async def stop(self) -> None:
        if self.watcher is not None:
            await asyncio.to_thread(self.watcher.stop)
            self.watcher = None

    async def handle(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        if event.verb == "status":
            return framework.ModuleDecision(
                module=self.name,
                outcome="allow",
                effects={
                    "folder": str(self.folder) if self.folder is not None else None,
                    "watching": self.watcher is not None and self.watcher.running,
                    "frames": self.watcher.frames if self.watcher is not None else 0,
                    "last": list(self.last),
                },
            )
        message = (
            "frames are read from the station's scan folder or camera, not sent on the bus"
            if event.verb == "frame"
            else f"vision does not answer {event.verb!r}; it answers status"
        )
        reason = engine.Reason("vision.verb", message)
        return framework.ModuleDecision(module=self.name, outcome="deny", reasons=(reason,))

    async def _seen(self, sighting: watcher.Sighting) -> None:
        """One code read (on the loop): the job request it implies, then the ledger entry."""
        async with self._lock:  # scans in the order they were read, one request at a time
            data: dict[str, Any] = {
                "file": Path(sighting.origin).name,
                "decoder": sighting.decoder,
                "at": sighting.at.isoformat(),
            }
            actor = self.station.station
            if sighting.code is None:
                data.update(code=None, error=sighting.error)
            else:
                data.update(describe(sighting.code))
                self.scanned = (await self._before(sighting.code)).add(sighting.code)
                verb, body = self._request_for(sighting.code)
                if isinstance(sighting.code, codes.Badge):
                    actor = sighting.code.person
                if verb is not None and body is not None:
                    data.update(await self._ask_job(verb, body))
                    self._refused_at = (
                        asyncio.get_running_loop().time()
                        if verb == "badge" and data.get("outcome") == "deny" and "supervisor" not in body
                        else None
                    )
            await self.station.record(kind=SCAN_KIND, subject=data["file"], data=data, actor=actor)
            self.last.append(data)

    async def _before(self, code: codes.Code) -> codes.Scanned:
        """What a new code adds to: the scans of the person at the station now, not of the last job.

        A badge adds to the scans so far only while the job machine has that person badged in (the
        new badge is then a supervisor's), or within ``SUPERVISOR_WINDOW_S`` of that person's badge
        being refused alone (a trainee, then the supervisor; once only); any other badge starts
        afresh. A traveler
        for another job drops the part scanned for the last one.
        """
        if isinstance(code, codes.Badge):
            refused = self._refused_at
            if refused is not None and asyncio.get_running_loop().time() - refused <= SUPERVISOR_WINDOW_S:
                return self.scanned
            status = await self._ask_job("status", {})
            if status.get("state") == "badged-in" and status.get("person") == self.scanned.person:
                return self.scanned
            return codes.Scanned()
        if isinstance(code, codes.Traveler) and code.job != self.scanned.job:
            return dataclasses.replace(self.scanned, part=None)
        return self.scanned

    def _request_for(self, code: codes.Code) -> tuple[str | None, dict[str, Any] | None]:
        if isinstance(code, codes.Badge):
            return "badge", self.scanned.badge_request()
        if isinstance(code, codes.Traveler | codes.Part):
            return "scan", self.scanned.scan_request()
        return None, None

    async def _ask_job(self, verb: str, body: dict[str, Any]) -> dict[str, Any]:
        subject = framework.subject(self.station.station, "job", verb)
        try:
            reply = await self.station.request(subject, body)
        except Exception as err:  # the bus down or the job machine silent: the scan is kept, unasked
            return {"asked": verb, "error": f"{type(err).__name__}: {err}"}
        if "error" in reply:
            return {"asked": verb, "error": str(reply["error"])}
        if verb == "status":
            return reply
        return {
            "asked": verb,
            "outcome": reply.get("outcome"),
            "state": reply.get("state"),
            "rules": [r.get("rule") for r in reply.get("reasons", ()) if isinstance(r, dict)],
            "transition": reply.get("entry"),
        }
