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
    when: dict[str, str] = Field(
        default_factory=dict,
        description="Applies only when the event's attributes have these values (e.g. carrier: water); "
        "an event lacking one is refused.",
    )
    equipment_kinds: list[vocabulary.Name] = Field(
        default_factory=list,
        description="Applies only when equipment of one of these kinds is in use; empty: always.",
    )
    materials: list[vocabulary.Name] = Field(
        default_factory=list,
        description="Applies only when a lot of one of these materials is in use; empty: always.",
    )


def compile_rule(rule: CheckRule, ctx: judging.Context) -> judging.Check:
    fail = judging.failer(rule)
    name, every, zone = rule.check, intervals.parse(rule.every), ctx.zone
    exempt, after_maintenance = frozenset(rule.exempt_material_forms), rule.after_maintenance
    applies = judging.scope(rule.when)
    kinds, materials = frozenset(rule.equipment_kinds), frozenset(rule.materials)
    scope_of = f"{name} check's scope"

    def in_scope(event: f.Event, facts: f.Facts) -> bool | judging.Reason:
        """Whether the check applies to this event; a reason when the station cannot tell."""
        scoped = applies(event)
        if scoped is False:
            return False
        if scoped is not True:
            return fail(judging.unknown(scoped, scope_of), check=name, attribute=scoped)
        if kinds:
            known = [facts.equipment[e] for e in event.equipment if e in facts.equipment]
            if not any(equipment.kind in kinds for equipment in known):
                unknown = [e for e in event.equipment if e not in facts.equipment]
                if unknown:
                    return fail(
                        judging.unknown(f"equipment {', '.join(unknown)}", scope_of), equipment=unknown
                    )
                return False
        if materials:
            lots = [facts.lots[lot] for lot in event.lots if lot in facts.lots]
            if not any(lot.material in materials for lot in lots):
                unknown = [lot for lot in event.lots if lot not in facts.lots]
                if unknown:
                    return fail(judging.unknown(f"lot {', '.join(unknown)}", scope_of), lots=unknown)
                return False
        return True

    scoped_by = in_scope if rule.when or kinds or materials else None

    def check(event: f.Event, facts: f.Facts) -> judging.Reason | None:
        if scoped_by is not None:
            scoped = scoped_by(event, facts)
            if scoped is False:
                return None
            if scoped is not True:
                return scoped
        if exempt and event.lots:
            forms = [facts.lots[lot].form for lot in event.lots if lot in facts.lots]
            if forms and all(form in exempt for form in forms):
                return None
        record = facts.check_by(name, event.at)
        if record is None:
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
            maintained = equipment.maintained_by(event.at) if equipment is not None else None
            if equipment is not None and maintained is not None and maintained > record.at:
                return fail(
                    f"{name} check predates maintenance of {equipment.id}",
                    check=name,
                    at=record.at,
                    maintained_at=maintained,
                )
        return None

    return check


FAMILY = judging.Family(CheckRule, compile_rule)
