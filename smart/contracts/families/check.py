"""A named check done, passed, current, newer than the last maintenance (rules 9, 12, 14, 15, 17, 30)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from smart import intervals
from smart.contracts import facts as f
from smart.contracts.families import judging, vocabulary


class CheckRule(vocabulary.RuleBase):
    """A check was done, passed, and is current (rules 9, 12, 14, 15, 17, 30)."""

    kind: Literal["check"] = "check"
    module: ClassVar[str] = "maintenance"

    check: vocabulary.Name = Field(description="Check name, e.g. tam-panel, uv-a-intensity, fod.")
    every: vocabulary.IntervalText = Field(description="How long a passed check stays current.")
    after_maintenance: bool = Field(
        default=False, description="The check must be newer than the last maintenance of its equipment."
    )
    exempt_material_forms: list[vocabulary.Name] = Field(
        default_factory=list,
        description="Does not apply when every lot in use has one of these forms (e.g. aerosol, rule 17).",
    )


def compile_rule(rule: CheckRule, ctx: judging.Context) -> judging.Check:
    fail = judging.failer(rule)
    name, every, zone = rule.check, intervals.parse(rule.every), ctx.zone
    exempt, after_maintenance = frozenset(rule.exempt_material_forms), rule.after_maintenance

    def check(event: f.Event, facts: f.Facts) -> judging.Reason | None:
        if exempt and event.lots:
            forms = [facts.lots[lot].form for lot in event.lots if lot in facts.lots]
            if forms and all(form in exempt for form in forms):
                return None
        record = facts.checks.get(name)
        if record is None or record.at > event.at:
            return fail(f"{name} check not done", check=name)
        if not record.passed:
            return fail(
                f"{name} check failed at {record.at.isoformat()}; locked until a rerun passes",
                check=name,
                at=record.at,
            )
        if not intervals.current(record.at, every, event.at, zone):
            return fail(
                f"{name} check of {record.at.isoformat()} is not current ({every})",
                check=name,
                at=record.at,
                every=str(every),
            )
        if after_maintenance and record.equipment is not None:
            equipment = facts.equipment.get(record.equipment)
            if equipment is not None and equipment.maintained_at is not None:
                if equipment.maintained_at > record.at:
                    return fail(
                        f"{name} check predates maintenance of {equipment.id}",
                        check=name,
                        at=record.at,
                        maintained_at=equipment.maintained_at,
                    )
        return None

    return check


FAMILY = judging.Family(CheckRule, compile_rule)
