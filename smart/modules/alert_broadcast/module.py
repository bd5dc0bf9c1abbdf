"""AlertBroadcast: the station's alerts, raised and acknowledged on the ledger and the alert subject.

The state machine is :mod:`.alerts`; this module keeps the station's board,
records each new alert, escalation, acknowledgement and clearing, and
publishes the alert with the stack light and buzzer it leads to on
``station.<id>.alert`` (:func:`smart.bus.subjects.alert`), where the hub and
the light's GPIO driver listen. A repeat of an open alert is counted, not
recorded or published again.
"""

from __future__ import annotations

from typing import Any

import structlog

from smart.bus import messages, subjects
from smart.contracts import engine
from smart.modules import framework
from smart.modules.alert_broadcast import alerts

log = structlog.get_logger("smart.modules.alert_broadcast")


class AlertBroadcastModule(framework.StationModule):
    """Verbs ``raise``, ``ack``, ``clear`` and ``gate`` (body fields in each handler's docstring)."""

    name = "alert-broadcast"

    def __init__(self, station: framework.StationContext, manifest: framework.ModuleManifest) -> None:
        super().__init__(station, manifest)
        self.board = alerts.Board()

    async def start(self) -> None:
        """Tell the station the board as it starts (empty, the tower amber until the gate decides)."""
        await self._publish("board", None)

    async def handle(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        try:
            if event.verb == "raise":
                return await self._raise(event)
            if event.verb == "ack":
                return await self._ack(event)
            if event.verb == "clear":
                return await self._clear(event)
            if event.verb == "gate":
                return await self._gate(event)
        except alerts.AlertError as err:
            return self._refuse("alert.request", str(err))
        return self._refuse("alert.verb", f"alert-broadcast does not answer {event.verb!r}")

    def _refuse(self, rule: str, message: str) -> framework.ModuleDecision:
        return framework.ModuleDecision(
            module=self.name, outcome="deny", reasons=(engine.Reason(rule, message),)
        )

    def _done(self, **effects: Any) -> framework.ModuleDecision:
        return framework.ModuleDecision(
            module=self.name,
            outcome="allow",
            effects={**effects, "light": self.board.light, "buzzer": self.board.buzzer},
        )

    async def _publish(self, change: str, alert: alerts.Alert | None) -> None:
        notice = messages.AlertNotice(
            change=change,
            alert=None if alert is None else alert.to_json(),
            light=self.board.light,
            buzzer=self.board.buzzer,
            board=self.board.to_json(),
        )
        await self.station.publish(subjects.alert(self.station.station), notice.model_dump(mode="json"))

    async def _raise(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        """Body: ``severity`` (info, warning, critical), ``source``, ``message``, ``key`` (optional)."""
        body = event.body
        by = event.event.person or str(body.get("source") or self.station.station)
        self.board, alert, change = alerts.raise_alert(
            self.board,
            severity=alerts.severity(str(body.get("severity"))),
            source=str(body.get("source") or "station"),
            message=str(body.get("message") or ""),
            at=event.event.at,
            by=by,
            key=body.get("key"),
        )
        if change != "repeated":
            await self.station.record(kind="alert.raised", subject=alert.id, data=alert.to_json(), actor=by)
            await self._publish(change, alert)
            log.info("alert.raised", station=self.station.station, alert=alert.id, severity=alert.severity)
        return self._done(alert=alert.id, change=change, count=alert.count)

    async def _ack(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        """Body: ``id`` of the alert; the event's person is who acknowledges it."""
        alert_id = str(event.body.get("id") or "")
        self.board, alert = alerts.acknowledge(
            self.board, alert_id, by=event.event.person or "", at=event.event.at
        )
        who = alert.acknowledged_by or ""
        await self.station.record(
            kind="alert.acknowledged", subject=alert.id, data=alert.to_json(), actor=who
        )
        await self._publish("acknowledged", alert)
        log.info("alert.acknowledged", station=self.station.station, alert=alert.id)
        return self._done(alert=alert.id)

    async def _clear(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        """Body: ``id`` of the alert whose cause is gone."""
        self.board, alert = alerts.clear(self.board, str(event.body.get("id") or ""))
        actor = event.event.person or alert.source
        await self.station.record(kind="alert.cleared", subject=alert.id, data=alert.to_json(), actor=actor)
        await self._publish("cleared", alert)
        return self._done(alert=alert.id)

    async def _gate(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        """Body: ``outcome`` (allow, warn, deny) of the gate's latest decision; sets the light."""
        outcome = event.body.get("outcome")
        if outcome not in ("allow", "warn", "deny"):
            raise alerts.AlertError(f"gate outcome {outcome!r} is not allow, warn or deny")
        before = (self.board.light, self.board.buzzer)
        self.board = alerts.gate(self.board, outcome, at=event.event.at)
        if (self.board.light, self.board.buzzer) != before:  # the tower's driver listens on the subject
            await self._publish("gate", None)
        return self._done(gate=outcome)
