"""What every compiled rule is made of: a reason, the station it runs at, a failer, the registration.

A family's compiler turns its typed rule into a :data:`Check`, a closure of
the event and the station's facts that returns ``None`` (satisfied) or a
:class:`Reason`. :class:`Family` registers a model with its compiler (and,
for plain readings, a fast-path row), and the engine knows families only
through that registration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from types import MappingProxyType
from typing import Any, Generic, Literal, TypeVar

from smart.contracts import facts as f
from smart.contracts import units
from smart.contracts.families import vocabulary


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a rule was not satisfied: the rule's id, a message, and the values it judged."""

    rule: str
    message: str
    values: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    severity: Literal["deny", "warn"] = "deny"
    audit: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "message": self.message,
            "values": {key: plain(value) for key, value in self.values.items()},
            "severity": self.severity,
            "audit": self.audit,
        }


def plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple, list)):
        return (
            [plain(v) for v in sorted(value, key=str)]
            if isinstance(value, (set, frozenset))
            else [plain(v) for v in value]
        )
    if isinstance(value, vocabulary.Level):
        return value.value
    return value


Check = Callable[[f.Event, f.Facts], Reason | None]


@dataclass(frozen=True, slots=True)
class Context:
    """The station a bundle is compiled for: its id, labels, role and time zone."""

    station: str
    labels: Mapping[str, str]
    role: str | None
    zone: tzinfo


def failer(rule: vocabulary.RuleBase) -> Callable[..., Reason]:
    """A reason maker bound to the rule: the contract's message, if any, comes first."""
    severity = rule.severity
    override = rule.message

    def fail(message: str, **values: Any) -> Reason:
        text = f"{override} ({message})" if override else message
        return Reason(rule.id, text, MappingProxyType(values), severity)

    return fail


def scaler(target: str) -> Callable[[f.Reading], float]:
    cache: dict[str, tuple[float, float]] = {}

    def value(reading: f.Reading) -> float:
        if reading.unit == target:
            return reading.value
        conv = cache.get(reading.unit)
        if conv is None:
            conv = cache[reading.unit] = units.conversion(reading.unit, target)
        return reading.value * conv[0] + conv[1]

    return value


#: A plain reading's fast-path row: (quantity, low, high, unit); the engine scans these inline.
FastRow = tuple[str, float, float, str]

RuleT = TypeVar("RuleT", bound=vocabulary.RuleBase)


@dataclass(frozen=True, slots=True)
class Family(Generic[RuleT]):
    """One rule kind's registration: its model, its compiler and, optionally, its fast-path row."""

    model: type[RuleT]
    compile: Callable[[RuleT, Context], Check]
    fast: Callable[[RuleT], FastRow | None] | None = None

    @property
    def kind(self) -> str:
        kind = self.model.model_fields["kind"].default
        assert isinstance(kind, str)
        return kind
