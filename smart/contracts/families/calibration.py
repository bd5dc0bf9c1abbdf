"""Equipment in use calibrated, in tolerance, not overdue, with the attributes required (rules 16, 24, 27)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from smart import intervals
from smart.contracts import facts as f
from smart.contracts.families import judging, vocabulary


class CalibrationRule(vocabulary.RuleBase):
    """Equipment of these kinds in use is calibrated, in tolerance and not overdue (rules 16, 24, 27)."""

    kind: Literal["calibration"] = "calibration"
    module: ClassVar[str] = "maintenance"
    default_on: ClassVar[tuple[str, ...]] = ("operate", "measure", "survey")

    equipment_kinds: list[vocabulary.Name] = Field(min_length=1, description="Equipment kinds, e.g. ammeter.")
    every: vocabulary.IntervalText = Field(description="Calibration interval.")
    requires: dict[str, str] = Field(
        default_factory=dict, description="Equipment attributes that must hold, e.g. grade: special-limits."
    )


def compile_rule(rule: CalibrationRule, ctx: judging.Context) -> judging.Check:
    fail = judging.failer(rule)
    kinds, every, zone = frozenset(rule.equipment_kinds), intervals.parse(rule.every), ctx.zone
    requires = tuple(rule.requires.items())

    def check(event: f.Event, facts: f.Facts) -> judging.Reason | None:
        for equipment_id in event.equipment:
            equipment = facts.equipment.get(equipment_id)
            if equipment is None or equipment.kind not in kinds:
                continue
            calibration = equipment.calibration_by(event.at)
            if calibration is None:
                return fail(
                    f"{equipment.id} has no calibration on record before {event.at.isoformat()}",
                    equipment=equipment.id,
                )
            if not calibration.in_tolerance:
                return fail(
                    f"{equipment.id} was found out of tolerance at {calibration.at.isoformat()}",
                    equipment=equipment.id,
                    calibrated=calibration.at,
                )
            if not intervals.current(calibration.at, every, event.at, zone):
                return fail(
                    f"{equipment.id} calibration of {calibration.at.date()} is overdue ({every})",
                    equipment=equipment.id,
                    calibrated=calibration.at,
                    every=str(every),
                )
            if calibration.due is not None and event.at >= calibration.due:
                return fail(
                    f"{equipment.id} calibration of {calibration.at.date()} is overdue "
                    f"(current until {calibration.due.isoformat()})",
                    equipment=equipment.id,
                    calibrated=calibration.at,
                    due=calibration.due,
                )
            for key, wanted in requires:
                if equipment.attributes.get(key) != wanted:
                    return fail(
                        f"{equipment.id} {key} is {equipment.attributes.get(key)!r}, {wanted!r} required",
                        equipment=equipment.id,
                        attribute=key,
                    )
        return None

    return check


FAMILY = judging.Family(CalibrationRule, compile_rule)
