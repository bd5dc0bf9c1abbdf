"""A reading within limits in a known unit, from the event or a check (rules 9–11, 14, 15, 19, 24–26)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import ConfigDict, Field, model_validator

from smart.contracts import facts as f
from smart.contracts import units
from smart.contracts.families import judging, vocabulary


class MeasurementRule(vocabulary.RuleBase):
    """A reading is within limits in a stated unit (rules 9–11, 14, 15, 19, 24–26)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"self.kind != 'measurement' || self.unit in {vocabulary.UNITS_CEL}",
                    "message": "unknown unit",
                }
            ]
        }
    )
    kind: Literal["measurement"] = "measurement"
    module: ClassVar[str] = "qa"
    default_on: ClassVar[tuple[str, ...]] = ("operate", "measure")

    quantity: vocabulary.Name = Field(description="What is read, e.g. uv-a-intensity, ambient-white-light.")
    unit: vocabulary.UnitText = Field(
        description="The unit of the limits; readings in other units are converted."
    )
    limits: vocabulary.Limits
    check: vocabulary.Name | None = Field(
        default=None, description="Read the value from the last record of this check instead of the event."
    )
    when: dict[str, str] = Field(
        default_factory=dict,
        description="Applies only when the event's attributes have these values; an event lacking one "
        "is refused (the limits cannot be chosen).",
    )

    @model_validator(mode="after")
    def _known_unit(self) -> MeasurementRule:
        vocabulary.check_unit(self.unit)
        return self


def compile_rule(rule: MeasurementRule, ctx: judging.Context) -> judging.Check:
    fail = judging.failer(rule)
    quantity, unit, source = rule.quantity, rule.unit, rule.check
    lo = rule.limits.min if rule.limits.min is not None else float("-inf")
    hi = rule.limits.max if rule.limits.max is not None else float("inf")
    applies = judging.scope(rule.when)
    value_of = judging.scaler(unit)

    def check(event: f.Event, facts: f.Facts) -> judging.Reason | None:
        scoped = applies(event)
        if scoped is False:
            return None
        if scoped is not True:
            return fail(judging.unknown(scoped, f"{quantity} limits"), quantity=quantity, attribute=scoped)
        if source is None:
            reading = event.readings.get(quantity)
        else:
            record = facts.check_by(source, event.at)
            reading = record.readings.get(quantity) if record is not None else None
        if reading is None:
            return fail(f"no {quantity} reading", quantity=quantity)
        try:
            value = value_of(reading)
        except units.UnitError as err:
            return fail(str(err), quantity=quantity, unit=reading.unit)
        if lo <= value <= hi:
            return None
        return fail(
            f"{quantity} {reading.value:g} {reading.unit} outside {_range(rule.limits)} {unit}",
            quantity=quantity,
            value=reading.value,
            unit=reading.unit,
            min=rule.limits.min,
            max=rule.limits.max,
            limit_unit=unit,
        )

    return check


def _range(limits: vocabulary.Limits) -> str:
    if limits.min is not None and limits.max is not None:
        return f"{limits.min:g}–{limits.max:g}"
    return f"≥ {limits.min:g}" if limits.min is not None else f"≤ {limits.max:g}"


def fast_row(rule: MeasurementRule) -> judging.FastRow | None:
    """A reading taken from the event with no ``when``: the engine scans it inline."""
    if rule.when or rule.check is not None:
        return None
    low = rule.limits.min if rule.limits.min is not None else float("-inf")
    high = rule.limits.max if rule.limits.max is not None else float("inf")
    return (rule.quantity, low, high, rule.unit)


FAMILY = judging.Family(MeasurementRule, compile_rule, fast=fast_row)
