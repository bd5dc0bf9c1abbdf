"""An attribute of equipment in use equal to the part's (TAM panel finish, rule 13)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from smart.contracts import facts as f
from smart.contracts.families import judging, vocabulary


class MatchRule(vocabulary.RuleBase):
    """An attribute of equipment in use equals the same attribute of the part (TAM finish, rule 13)."""

    kind: Literal["match"] = "match"
    module: ClassVar[str] = "standards"

    equipment_kind: vocabulary.Name = Field(description="Equipment kind, e.g. tam-panel.")
    attribute: vocabulary.Name = Field(description="Attribute compared, e.g. finish.")
    event_attribute: vocabulary.Name = Field(
        description="Event attribute with the part's value, e.g. part-finish."
    )


def compile_rule(rule: MatchRule, ctx: judging.Context) -> judging.Check:
    fail = judging.failer(rule)
    kind, attribute, event_attribute = rule.equipment_kind, rule.attribute, rule.event_attribute

    def check(event: f.Event, facts: f.Facts) -> judging.Reason | None:
        wanted = event.attributes.get(event_attribute)
        for equipment_id in event.equipment:
            equipment = facts.equipment.get(equipment_id)
            if equipment is not None and equipment.kind == kind:
                have = equipment.attributes.get(attribute)
                if have != wanted:
                    return fail(
                        f"{equipment.id} {attribute} {have!r} does not match part {wanted!r}",
                        equipment=equipment.id,
                        have=have,
                        wanted=wanted,
                    )
                return None
        return fail(f"no {kind} in use", equipment_kind=kind)

    return check


FAMILY = judging.Family(MatchRule, compile_rule)
