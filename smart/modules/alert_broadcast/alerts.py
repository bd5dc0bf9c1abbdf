"""The station's alerts and what the stack light and buzzer show of them: a small pure state machine.

An alert is raised by a module (a failed TAM panel check, an SPC finding, a
ledger that cannot ship), acknowledged by a person who has seen it, and
cleared when its cause is gone. The states follow the alarm-management
habit of process plants (ISA-18.2): *active and unacknowledged* sounds the
buzzer if critical; *active and acknowledged* stays on the light but is
quiet; *cleared* leaves the board (the ledger keeps it).

A repeat of an open alert (same key) is one alert seen again: its count and
last time go up, nobody is called twice for the same cause. A repeat at a
higher severity is an escalation: it takes the new severity and needs a new
acknowledgement.

The stack light is the floor's summary of the gate and the alerts:

- **red**: an open critical alert, or the last gate decision was a deny;
- **amber**: an open warning, the last gate decision was a warning, or no
  gate decision yet (the station has not been allowed to work);
- **green**: the last gate decision allowed the work and nothing above holds.

Info alerts inform and never change the light.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal, get_args

from smart.bus import messages

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
Light = messages.Light
GateOutcome = Literal["allow", "warn", "deny"]
_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}


class AlertError(ValueError):
    """An alert request that cannot be done: unknown severity, unknown alert, nobody named."""


@dataclass(frozen=True, slots=True)
class Alert:
    """One open alert: what, from which module, how bad, when raised and seen again, who acknowledged it."""

    #: The de-duplication key, also the id an acknowledgement names.
    id: str
    severity: Severity
    source: str
    message: str
    raised_at: datetime
    raised_by: str
    last_raised_at: datetime
    count: int = 1
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": self.severity,
            "source": self.source,
            "message": self.message,
            "raisedAt": self.raised_at.isoformat(),
            "raisedBy": self.raised_by,
            "lastRaisedAt": self.last_raised_at.isoformat(),
            "count": self.count,
            "acknowledgedBy": self.acknowledged_by,
            "acknowledgedAt": self.acknowledged_at.isoformat() if self.acknowledged_at else None,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Alert:
        return cls(
            id=raw["id"],
            severity=severity(raw["severity"]),
            source=raw["source"],
            message=raw["message"],
            raised_at=datetime.fromisoformat(raw["raisedAt"]),
            raised_by=raw["raisedBy"],
            last_raised_at=datetime.fromisoformat(raw["lastRaisedAt"]),
            count=int(raw.get("count", 1)),
            acknowledged_by=raw.get("acknowledgedBy"),
            acknowledged_at=datetime.fromisoformat(raw["acknowledgedAt"])
            if raw.get("acknowledgedAt")
            else None,
        )


def severity(text: str) -> Severity:
    """``text`` as a severity, or :class:`AlertError` naming the ones there are."""
    for known in SEVERITIES:
        if text == known:
            return known
    raise AlertError(f"severity {text!r} is not one of {', '.join(SEVERITIES)}")


@dataclass(frozen=True, slots=True)
class Board:
    """The station's open alerts (by id) and its last gate decision: all the light and buzzer depend on."""

    alerts: Mapping[str, Alert] = field(default_factory=lambda: MappingProxyType({}))
    gate: GateOutcome | None = None
    gate_at: datetime | None = None

    @property
    def light(self) -> Light:
        open_severities = {alert.severity for alert in self.alerts.values()}
        if "critical" in open_severities or self.gate == "deny":
            return "red"
        if "warning" in open_severities or self.gate in ("warn", None):
            return "amber"
        return "green"

    @property
    def buzzer(self) -> bool:
        """On while a critical alert waits for someone to acknowledge it."""
        return any(a.severity == "critical" and not a.acknowledged for a in self.alerts.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "alerts": [alert.to_json() for alert in self.alerts.values()],
            "gate": self.gate,
            "gateAt": self.gate_at.isoformat() if self.gate_at else None,
            "light": self.light,
            "buzzer": self.buzzer,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Board:
        alerts = (Alert.from_json(item) for item in raw.get("alerts", ()))
        gate = raw.get("gate")
        if gate not in (None, "allow", "warn", "deny"):
            raise AlertError(f"gate outcome {gate!r} is not allow, warn or deny")
        return cls(
            alerts=MappingProxyType({alert.id: alert for alert in alerts}),
            gate=gate,
            gate_at=datetime.fromisoformat(raw["gateAt"]) if raw.get("gateAt") else None,
        )


Change = Literal["raised", "repeated", "escalated"]


def raise_alert(
    board: Board,
    *,
    severity: Severity,
    source: str,
    message: str,
    at: datetime,
    by: str,
    key: str | None = None,
) -> tuple[Board, Alert, Change]:
    """Raise an alert, or count a repeat of an open one with the same key (``source:message`` by default)."""
    alert_id = key or f"{source}:{message}"
    existing = board.alerts.get(alert_id)
    change: Change
    if existing is None:
        alert = Alert(alert_id, severity, source, message, at, by, at)
        change = "raised"
    elif _RANK[severity] > _RANK[existing.severity]:
        alert = replace(
            existing,
            severity=severity,
            message=message,
            last_raised_at=at,
            count=existing.count + 1,
            acknowledged_by=None,
            acknowledged_at=None,
        )
        change = "escalated"
    else:
        alert = replace(existing, message=message, last_raised_at=at, count=existing.count + 1)
        change = "repeated"
    return replace(board, alerts=MappingProxyType({**board.alerts, alert_id: alert})), alert, change


def acknowledge(board: Board, alert_id: str, *, by: str, at: datetime) -> tuple[Board, Alert]:
    """A person has seen the alert: the buzzer stops for it; the light stays until it clears."""
    if not by:
        raise AlertError(f"acknowledging {alert_id!r} needs the person who saw it")
    alert = board.alerts.get(alert_id)
    if alert is None:
        raise AlertError(f"no open alert {alert_id!r}")
    if alert.acknowledged:
        return board, alert
    alert = replace(alert, acknowledged_by=by, acknowledged_at=at)
    return replace(board, alerts=MappingProxyType({**board.alerts, alert_id: alert})), alert


def clear(board: Board, alert_id: str) -> tuple[Board, Alert]:
    """The cause is gone: the alert leaves the board (its raise and acknowledgement stay on the ledger)."""
    alert = board.alerts.get(alert_id)
    if alert is None:
        raise AlertError(f"no open alert {alert_id!r}")
    rest = {key: value for key, value in board.alerts.items() if key != alert_id}
    return replace(board, alerts=MappingProxyType(rest)), alert


def gate(board: Board, outcome: GateOutcome, *, at: datetime) -> Board:
    """The gate's latest decision at this station, for the light."""
    return replace(board, gate=outcome, gate_at=at)
