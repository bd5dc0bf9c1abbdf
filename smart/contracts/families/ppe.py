"""Personal protective equipment seen and prohibited items not (rule 20)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from smart.contracts import facts as f
from smart.contracts.families import judging, vocabulary


class PpeRule(vocabulary.RuleBase):
    """Required PPE is seen and prohibited items are not (rule 20)."""

    kind: Literal["ppe"] = "ppe"
    module: ClassVar[str] = "safety"

    required: list[vocabulary.Name] = Field(default_factory=list, description="Items that must be seen.")
    prohibited: list[vocabulary.Name] = Field(
        default_factory=list, description="Items that must not be seen."
    )


def compile_rule(rule: PpeRule, ctx: judging.Context) -> judging.Check:
    fail = judging.failer(rule)
    required, prohibited = frozenset(rule.required), frozenset(rule.prohibited)

    def check(event: f.Event, facts: f.Facts) -> judging.Reason | None:
        missing = required - event.ppe
        if missing:
            return fail(f"PPE missing: {', '.join(sorted(missing))}", missing=missing)
        seen = prohibited & event.ppe
        if seen:
            return fail(f"prohibited: {', '.join(sorted(seen))}", prohibited=seen)
        return None

    return check


FAMILY = judging.Family(PpeRule, compile_rule)
