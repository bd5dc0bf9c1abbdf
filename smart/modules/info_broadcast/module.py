"""InfoBroadcast: keeps the station's public status (:mod:`.board`), publishes it, and serves the floor board.

The status goes out on ``station.<id>.status`` whenever it changes, for the
hub's floor map; the station UI mounts the board page and its JSON under
``/modules/info-broadcast/``. No personal data is kept here, so none can be
published or served.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import structlog

from smart.bus import subjects
from smart.contracts import engine
from smart.modules import framework
from smart.modules.info_broadcast import board

if TYPE_CHECKING:
    from fastapi import APIRouter

log = structlog.get_logger("smart.modules.info_broadcast")

_OUTCOMES = ("allow", "warn", "deny")


def _reasons(raw: Any) -> tuple[engine.Reason, ...]:
    """Only the rule id and severity of each reason: the message may name a person and is not kept."""
    found: list[engine.Reason] = []
    for item in raw or ():
        if isinstance(item, Mapping) and isinstance(item.get("rule"), str):
            found.append(
                engine.Reason(item["rule"], "", severity="warn" if item.get("severity") == "warn" else "deny")
            )
    return tuple(found)


class InfoBroadcastModule(framework.StationModule):
    """Verb ``status``; body empty (report), ``outcome`` (after a decision) or ``state`` offline/online."""

    name = "info-broadcast"

    def __init__(self, station: framework.StationContext, manifest: framework.ModuleManifest) -> None:
        super().__init__(station, manifest)
        self.status = board.Status(station=station.station)

    async def handle(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        if event.verb != "status":
            reason = engine.Reason(
                "info.verb", f"info-broadcast does not answer {event.verb!r}; it answers status"
            )
            return framework.ModuleDecision(module=self.name, outcome="deny", reasons=(reason,))
        body = event.body
        before = self.status
        if body.get("outcome") in _OUTCOMES:
            revisions = body.get("revisions")
            self.status = board.after_decision(
                self.status,
                event=event.event,
                outcome=body["outcome"],
                reasons=_reasons(body.get("reasons")),
                revisions={str(k): str(v) for k, v in revisions.items()}
                if isinstance(revisions, Mapping)
                else None,
            )
        elif body.get("state") == "offline":
            self.status = board.offline(self.status)
        elif body.get("state") == "online":
            self.status = board.online(self.status)
        if self.status != before:
            await self.station.publish(
                subjects.station_subject(self.station.station, "status"), self.status.to_json()
            )
            log.info(
                "info.status", station=self.station.station, state=self.status.state, job=self.status.job
            )
        return framework.ModuleDecision(
            module=self.name, outcome="allow", effects={"status": self.status.to_json()}
        )

    def routes(self) -> APIRouter | None:
        from fastapi import APIRouter
        from fastapi.responses import HTMLResponse, JSONResponse

        router = APIRouter()

        @router.get("/", response_class=HTMLResponse)
        async def page() -> HTMLResponse:
            return HTMLResponse(board.render_html(self.status))

        @router.get("/status.json")
        async def status() -> JSONResponse:
            return JSONResponse(self.status.to_json())

        return router
