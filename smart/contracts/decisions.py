"""The station's verdict on an event, as the runtime, the modules and the bus all share it.

A :class:`StationDecision` is what the active contract revisions, judged
together, say about one event at one station. It lives with the contracts
(not the node) because a module running as a process of its own receives it
over the bus and must read it without importing the node's internals; its
JSON form is the one the ledger, the kiosk and the bus carry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from smart.contracts import engine

_OUTCOMES = ("allow", "warn", "deny")


def reason_from_json(value: Any) -> engine.Reason:
    """A reason read back from :meth:`engine.Reason.to_json`; ``ValueError`` names the field that is wrong."""
    if not isinstance(value, Mapping):
        raise ValueError("reason: expected an object")
    rule, message = value.get("rule"), value.get("message")
    if not isinstance(rule, str) or not isinstance(message, str):
        raise ValueError("reason: expected rule and message as text")
    values = value.get("values") or {}
    if not isinstance(values, Mapping):
        raise ValueError(f"reason {rule}: values: expected an object")
    severity = value.get("severity", "deny")
    if severity not in ("deny", "warn"):
        raise ValueError(f"reason {rule}: severity {severity!r} is not deny or warn")
    return engine.Reason(
        rule,
        message,
        MappingProxyType(dict(values)),
        severity=severity,
        audit=bool(value.get("audit", False)),
    )


def outcome_from_json(value: Any) -> engine.Outcome:
    if value == "allow":
        return "allow"
    if value == "warn":
        return "warn"
    if value == "deny":
        return "deny"
    raise ValueError(f"outcome {value!r} is not allow, warn or deny")


@dataclass(frozen=True, slots=True)
class StationDecision:
    """The station's answer: outcome, every reason, and the revisions it was judged against."""

    station: str
    outcome: engine.Outcome
    reasons: tuple[engine.Reason, ...]
    revisions: Mapping[str, str]

    @property
    def allowed(self) -> bool:
        return self.outcome != "deny"

    def to_json(self) -> dict[str, Any]:
        return {
            "station": self.station,
            "outcome": self.outcome,
            "revisions": dict(self.revisions),
            "reasons": [reason.to_json() for reason in self.reasons],
        }

    @classmethod
    def from_json(cls, value: Any) -> StationDecision:
        """Read back :meth:`to_json`; ``ValueError`` says which field is wrong."""
        if not isinstance(value, Mapping) or not isinstance(value.get("station"), str):
            raise ValueError("station decision: expected an object naming its station")
        revisions = value.get("revisions") or {}
        if not isinstance(revisions, Mapping):
            raise ValueError("station decision: revisions: expected an object")
        return cls(
            station=value["station"],
            outcome=outcome_from_json(value.get("outcome")),
            reasons=tuple(reason_from_json(r) for r in value.get("reasons") or ()),
            revisions=MappingProxyType({str(k): str(v) for k, v in revisions.items()}),
        )


@dataclass(frozen=True, slots=True)
class ModuleAnswer:
    """A module's decision as whoever asked it got it back (the job machine), typed end to end.

    ``entry`` is the ``node_seq`` of its ``module.decision`` on the node ledger, where every
    answered decision is before it is replied; ``None`` for a refusal the asker made itself
    (the module did not answer, or no module runs to decide), which was never a module's word.
    """

    module: str
    outcome: engine.Outcome
    reasons: tuple[engine.Reason, ...] = ()
    revisions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: What the module did beside deciding (an NCR opened, the light shown, a count), module-specific.
    effects: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    entry: int | None = None

    @property
    def allowed(self) -> bool:
        return self.outcome != "deny"

    def refusals(self) -> tuple[engine.Reason, ...]:
        return tuple(reason for reason in self.reasons if reason.severity == "deny")

    def to_json(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "outcome": self.outcome,
            "revisions": dict(self.revisions),
            "reasons": [reason.to_json() for reason in self.reasons],
            "effects": dict(self.effects),
            "entry": self.entry,
        }
