"""The job's class and temperature inside the furnace's qualified class and range (AMS2750, rule 21)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import ConfigDict, Field

from smart.contracts import facts as f
from smart.contracts import units
from smart.contracts.families import judging, vocabulary


class FurnaceClassRule(vocabulary.RuleBase):
    """The job's class and temperature fall inside the furnace's qualified class and range (rule 21)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.kind != 'furnaceClass' || !has(self.unit) || self.unit in ['Δ°C', 'Δ°F']",
                    "message": "uniformity unit must be Δ°C or Δ°F",
                }
            ]
        }
    )

    kind: Literal["furnaceClass"] = "furnaceClass"
    module: ClassVar[str] = "standards"

    uniformity: dict[str, float] = Field(
        min_length=1, description="Furnace class → temperature uniformity tolerance, ± in the unit."
    )
    unit: vocabulary.UnitText = Field(default="Δ°C", description="Unit of the tolerances.")
    temperature_quantity: vocabulary.Name = Field(
        default="setpoint", description="The event reading of the setpoint."
    )


def furnaces_in_use(event: f.Event, facts: f.Facts) -> list[f.EquipmentRecord]:
    found = [facts.equipment.get(e) for e in event.equipment]
    return [e for e in found if e is not None and e.kind == "furnace"]


def compile_rule(rule: FurnaceClassRule, ctx: judging.Context) -> judging.Check:
    fail = judging.failer(rule)
    tolerance = dict(rule.uniformity)
    quantity = rule.temperature_quantity

    def check(event: f.Event, facts: f.Facts) -> judging.Reason | None:
        job_class = event.attributes.get("class")
        furnaces = furnaces_in_use(event, facts)
        if not furnaces:
            return fail("no furnace named in the event")
        for furnace in furnaces:
            furnace_class = furnace.attributes.get("class")
            if job_class not in tolerance or furnace_class not in tolerance:
                return fail(
                    f"unknown furnace class (job {job_class!r}, furnace {furnace_class!r})",
                    job_class=job_class,
                    furnace_class=furnace_class,
                )
            if tolerance[furnace_class] > tolerance[job_class]:
                return fail(
                    f"job class {job_class} (±{tolerance[job_class]:g}) is tighter than "
                    f"{furnace.id}'s class {furnace_class} (±{tolerance[furnace_class]:g})",
                    furnace=furnace.id,
                    job_class=job_class,
                    furnace_class=furnace_class,
                )
            reading = event.readings.get(quantity)
            if reading is None:
                return fail(f"no {quantity} reading", quantity=quantity)
            ranges = furnace.ranges()
            if not ranges:
                return fail(f"{furnace.id} has no qualified range on record", furnace=furnace.id)
            try:
                inside = any(
                    round(units.convert(reading.value, reading.unit, r.min.unit), 9) >= r.min.value
                    and round(units.convert(reading.value, reading.unit, r.max.unit), 9) <= r.max.value
                    for r in ranges
                )
            except units.UnitError as err:
                return fail(str(err), quantity=quantity)
            if not inside:
                qualified = ", ".join(
                    f"{r.min.value:g} {r.min.unit} – {r.max.value:g} {r.max.unit}" for r in ranges
                )
                return fail(
                    f"{quantity} {reading.value:g} {reading.unit} outside {furnace.id}'s qualified range "
                    f"{qualified}",
                    furnace=furnace.id,
                    value=reading.value,
                    unit=reading.unit,
                )
        return None

    return check


FAMILY = judging.Family(FurnaceClassRule, compile_rule)
