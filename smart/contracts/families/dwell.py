"""A dwell long enough for the part temperature: bands of temperature, a factor, a floor (rule 18)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import ConfigDict, Field, model_validator

from smart.contracts import facts as f
from smart.contracts.families import bands, judging, vocabulary


class DwellBand(bands.Band):
    """A temperature band and how the base dwell changes in it (rule 18)."""

    factor: float = Field(gt=0, description="Multiplies the base dwell.")
    floor_minutes: float | None = Field(default=None, ge=0, description="Never shorter than this.")


class DwellRule(vocabulary.RuleBase):
    """A dwell lasted long enough for the part temperature (rule 18)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.kind != 'dwell' || !has(self.temperatureUnit) || self.temperatureUnit in "
                    "['°F', '°C']",
                    "message": "temperatureUnit must be °F or °C",
                }
            ]
        }
    )

    kind: Literal["dwell"] = "dwell"
    module: ClassVar[str] = "qa"
    default_on: ClassVar[tuple[str, ...]] = ("step",)

    step: vocabulary.Name = Field(description="The step whose duration is checked, e.g. penetrant-dwell.")
    temperature_quantity: vocabulary.Name = Field(
        default="part-temperature", description="Reading of the part."
    )
    duration_quantity: vocabulary.Name = Field(
        default="dwell-time", description="Reading of the dwell, any time unit."
    )
    base_minutes: float = Field(gt=0, description="Dwell in the normal band (per the procedure).")
    temperature_unit: vocabulary.UnitText = Field(default="°F")
    bands: list[DwellBand] = Field(
        min_length=1,
        description="Temperature bands in temperatureUnit; together they tile (no gap, no overlap).",
    )
    service_induced_minutes: float | None = Field(
        default=None, description="At least this when the job looks for service-induced flaws."
    )

    @model_validator(mode="after")
    def _known_unit(self) -> DwellRule:
        if self.temperature_unit not in ("°F", "°C"):
            raise ValueError(f"temperatureUnit {self.temperature_unit!r}: expected °F or °C")
        return self


def compile_rule(rule: DwellRule, ctx: judging.Context) -> judging.Check:
    fail = judging.failer(rule)
    temp_of = judging.scaler(rule.temperature_unit)
    minutes_of = judging.scaler("min")
    placed = tuple((b.contains, b.factor, b.floor_minutes or 0.0) for b in rule.bands)
    base, service = rule.base_minutes, rule.service_induced_minutes

    def check(event: f.Event, facts: f.Facts) -> judging.Reason | None:
        if event.step != rule.step:
            return None
        temperature = event.readings.get(rule.temperature_quantity)
        dwell = event.readings.get(rule.duration_quantity)
        if temperature is None or dwell is None:
            return fail(f"{rule.step} needs {rule.temperature_quantity} and {rule.duration_quantity}")
        temp = temp_of(temperature)
        for contains, factor, floor in placed:
            if contains(temp):
                required = max(base * factor, floor)
                break
        else:
            return fail(
                f"part at {temperature.value:g} {temperature.unit} is outside every dwell band",
                temperature=temperature.value,
            )
        if service is not None and event.attributes.get("flaws") == "service-induced":
            required = max(required, service)
        minutes = minutes_of(dwell)
        if minutes < required:
            return fail(
                f"{rule.step} {minutes:g} min < {required:g} min at {temperature.value:g} {temperature.unit}",
                minutes=minutes,
                required=required,
                temperature=temperature.value,
            )
        return None

    return check


def problems(rule: DwellRule, where: str) -> list[tuple[str, str]]:
    """The rule's bands must tile: every temperature in at most one band, no gap between them."""
    return bands.tiling_problems(list(rule.bands), f"{where}.bands", rule.temperature_unit)


FAMILY = judging.Family(DwellRule, compile_rule, problems=problems)
