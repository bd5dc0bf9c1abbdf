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
    """Readings in ``target``'s unit, converted before they are compared or placed in a band.

    A converted value is rounded to 1e-9 so that float noise never moves a reading across an
    edge: 37.7777777778 °C is 100 °F, not 100.00000000000001 °F.
    """
    cache: dict[str, tuple[float, float]] = {}

    def value(reading: f.Reading) -> float:
        if reading.unit == target:
            return reading.value
        conv = cache.get(reading.unit)
        if conv is None:
            conv = cache[reading.unit] = units.conversion(reading.unit, target)
        return round(reading.value * conv[0] + conv[1], 9)

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
    #: What the schema cannot say of one rule (bands that leave a gap): (field path, message) pairs,
    #: given the rule's path in the contract (``spec.rules[12]``).
    problems: Callable[[RuleT, str], list[tuple[str, str]]] | None = None

    @property
    def kind(self) -> str:
        kind = self.model.model_fields["kind"].default
        assert isinstance(kind, str)
        return kind


def attribute(event: f.Event, key: str) -> str | None:
    """An event attribute a ``when`` may name; ``step`` is the event's step."""
    return event.step if key == "step" else event.attributes.get(key)


#: What a scope says of an event: it applies (True), it does not (False), or the attribute it
#: needs is missing (its name): the rule cannot be chosen, and the event is refused for it.
Scoped = Callable[[f.Event], bool | str]


def scope(when: Mapping[str, str]) -> Scoped:
    """A rule's ``when``, compiled: every named attribute must be present and equal.

    A missing attribute never means "does not apply": a station that cannot tell whether a rule
    applies (fluorescent or visible particles, water or oil carrier) cannot prove the event is
    allowed, so the rule fails closed with the attribute's name.
    """
    pairs = tuple(when.items())
    if not pairs:
        return lambda event: True

    def applies(event: f.Event) -> bool | str:
        missing: str | None = None
        for key, wanted in pairs:
            have = attribute(event, key)
            if have is None:
                missing = missing or key
            elif have != wanted:
                return False  # an attribute the event does carry rules it out, whatever is missing
        return missing if missing is not None else True

    return applies


def unknown(key: str, what: str) -> str:
    """The reason a scoped rule gives when the event lacks the attribute its ``when`` names."""
    return f"unknown {key}: the {what} cannot be chosen"
