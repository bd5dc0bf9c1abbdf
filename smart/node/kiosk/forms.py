"""What the kiosk asks the operator for, read from the contracts in force at the station.

An operator should never have to know a rule's id to satisfy it: the forms
offer exactly the steps, readings, checks, PPE and part attributes that the
active revisions judge, each reading with its unit and limits, so what is
typed is what the rule reads. Everything comes from the verified bundles in
the station's own store; nothing here decides — the modules do, when the
form is sent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from smart.contracts import facts as f
from smart.contracts import rules

_RULE: TypeAdapter[Any] = TypeAdapter(rules.Rule)
#: Events at which a reading typed before the job starts (at the gate) is judged.
_GATE_ACTIONS = frozenset({"operate"})


@dataclasses.dataclass(frozen=True, slots=True)
class Quantity:
    """One reading a rule judges: its name, unit and limits, and the rule that sets them."""

    name: str
    unit: str
    min: float | None = None
    max: float | None = None
    rule: str = ""
    when: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def limits(self) -> str:
        """The limits in words an operator reads at a glance: ``≥ 1000 µW/cm²``, ``0.1 – 0.4 mL/100mL``."""
        if self.min is not None and self.max is not None:
            return f"{_number(self.min)} – {_number(self.max)} {self.unit}"
        if self.min is not None:
            return f"≥ {_number(self.min)} {self.unit}"
        if self.max is not None:
            return f"≤ {_number(self.max)} {self.unit}"
        return self.unit

    @property
    def condition(self) -> str:
        """When the limit applies (``particles = visible``), or empty when always."""
        return ", ".join(f"{key} = {value}" for key, value in sorted(self.when.items()) if key != "step")


@dataclasses.dataclass(frozen=True, slots=True)
class CheckForm:
    """A station check (daily UV-A, TAM panel…) and the readings it records."""

    name: str
    every: str
    readings: tuple[Quantity, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class StationForms:
    """Everything the kiosk's forms offer, for the revisions in force."""

    steps: tuple[str, ...] = ()
    step_readings: Mapping[str, tuple[Quantity, ...]] = dataclasses.field(default_factory=dict)
    start_readings: tuple[Quantity, ...] = ()
    checks: tuple[CheckForm, ...] = ()
    ppe_required: tuple[str, ...] = ()
    ppe_prohibited: tuple[str, ...] = ()
    #: Part or job attributes the rules read (``part-finish``) → the values the station knows of.
    attributes: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    #: Dwell rules in words, by step: the operator sees the minimum before timing it.
    dwell_notes: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def readings_for(self, step: str) -> tuple[Quantity, ...]:
        return self.step_readings.get(step, ())


def _number(value: float) -> str:
    return f"{value:g}"


def _dedupe(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def parse_rules(bundles: Iterable[Mapping[str, Any]]) -> list[rules.RuleBase]:
    """The rules of ``bundles`` as models; a rule this code cannot read is left out of the forms.

    The bundles are verified before they are stored, so an unreadable rule
    means a newer contract schema than this station's code: the modules
    still judge what they can, and the kiosk simply does not offer a field.
    """
    parsed: list[rules.RuleBase] = []
    for bundle in bundles:
        for raw in bundle.get("rules", ()):
            try:
                parsed.append(_RULE.validate_python(raw))
            except ValidationError:
                continue
    return parsed


def station_forms(bundles: Iterable[Mapping[str, Any]], facts: f.Facts) -> StationForms:
    """Read the forms from the bundles in force and the station's records (for attribute values)."""
    parsed = parse_rules(bundles)
    steps: list[str] = []
    by_step: dict[str, list[Quantity]] = {}
    every_step: list[Quantity] = []
    start: list[Quantity] = []
    checks: dict[str, CheckForm] = {}
    check_readings: dict[str, list[Quantity]] = {}
    required: list[str] = []
    prohibited: list[str] = []
    attributes: dict[str, list[str]] = {}
    dwell: dict[str, str] = {}

    for rule in parsed:
        if isinstance(rule, rules.StepOrderRule):
            steps.extend(rule.steps)
        elif isinstance(rule, rules.CheckRule):
            checks.setdefault(rule.check, CheckForm(rule.check, rule.every))
        elif isinstance(rule, rules.MeasurementRule):
            quantity = Quantity(
                rule.quantity, rule.unit, rule.limits.min, rule.limits.max, rule.id, dict(rule.when)
            )
            for key in rule.when:
                if key != "step":
                    attributes.setdefault(key, []).append(rule.when[key])
            if rule.check is not None:
                check_readings.setdefault(rule.check, []).append(quantity)
            elif "step" in rule.when:
                by_step.setdefault(rule.when["step"], []).append(quantity)
            elif "step" in rule.actions:
                every_step.append(quantity)
            elif _GATE_ACTIONS & set(rule.actions):
                start.append(quantity)
        elif isinstance(rule, rules.DwellRule):
            by_step.setdefault(rule.step, []).extend(
                [
                    Quantity(rule.temperature_quantity, rule.temperature_unit, rule=rule.id),
                    Quantity(rule.duration_quantity, "min", rule.base_minutes, rule=rule.id),
                ]
            )
            dwell[rule.step] = f"at least {_number(rule.base_minutes)} min in the normal band" + "".join(
                f"; {_number(b.min)}–{_number(b.max)} {rule.temperature_unit}: × {_number(b.factor)}"
                + (f" (never under {_number(b.floor_minutes)} min)" if b.floor_minutes else "")
                for b in rule.bands
                if b.factor != 1
            )
        elif isinstance(rule, rules.PpeRule):
            required.extend(rule.required)
            prohibited.extend(rule.prohibited)
        elif isinstance(rule, rules.MatchRule):
            known = [
                value
                for equipment in facts.equipment.values()
                if equipment.kind == rule.equipment_kind
                for key, value in equipment.attributes.items()
                if key == rule.attribute
            ]
            attributes.setdefault(rule.event_attribute, []).extend(known)

    for name, readings in check_readings.items():
        form = checks.get(name) or CheckForm(name, "")
        checks[name] = dataclasses.replace(form, readings=(*form.readings, *readings))
    ordered_steps = _dedupe([*steps, *by_step])
    step_readings = {
        step: _unique_quantities([*by_step.get(step, ()), *(q for q in every_step)]) for step in ordered_steps
    }
    return StationForms(
        steps=ordered_steps,
        step_readings=step_readings,
        start_readings=_unique_quantities(start),
        checks=tuple(checks.values()),
        ppe_required=_dedupe(required),
        ppe_prohibited=_dedupe(prohibited),
        attributes={key: _dedupe(values) for key, values in attributes.items()},
        dwell_notes=dwell,
    )


def _unique_quantities(quantities: Iterable[Quantity]) -> tuple[Quantity, ...]:
    """One field per quantity and condition: two rules on one reading show both limits, once."""
    seen: dict[tuple[str, tuple[tuple[str, str], ...]], Quantity] = {}
    for quantity in quantities:
        key = (quantity.name, tuple(sorted(quantity.when.items())))
        held = seen.get(key)
        if held is None or (held.min is None and held.max is None):
            seen[key] = quantity
    return tuple(seen.values())
