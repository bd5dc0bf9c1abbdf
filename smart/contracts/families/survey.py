"""TUS and SAT current by furnace class and instrumentation type (AMS2750, rules 22, 26)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from smart import intervals
from smart.contracts import facts as f
from smart.contracts.families import furnace_class, judging, vocabulary


class SurveyInterval(vocabulary.Model):
    classes: list[str] = Field(min_length=1, description="Furnace classes, e.g. ['1', '2'].")
    instrumentation: list[Literal["A", "B", "C", "D", "D+", "E"]] = Field(
        min_length=1, description="Instrumentation types."
    )
    every: vocabulary.IntervalText


class SurveyRule(vocabulary.RuleBase):
    """The furnace's last TUS or SAT is within its interval by class × instrumentation (rule 22)."""

    kind: Literal["survey"] = "survey"
    module: ClassVar[str] = "maintenance"

    survey: Literal["TUS", "SAT"]
    intervals: list[SurveyInterval] = Field(min_length=1, description="The standard's table, as rows.")


def compile_rule(rule: SurveyRule, ctx: judging.Context) -> judging.Check:
    fail = judging.failer(rule)
    survey, zone = rule.survey, ctx.zone
    table: dict[tuple[str, str], intervals.Interval] = {
        (cls, instr): intervals.parse(row.every)
        for row in rule.intervals
        for cls in row.classes
        for instr in row.instrumentation
    }

    def check(event: f.Event, facts: f.Facts) -> judging.Reason | None:
        for furnace in furnace_class.furnaces_in_use(event, facts):
            cls = furnace.attributes.get("class", "")
            instr = furnace.attributes.get("instrumentation", "")
            every = table.get((cls, instr))
            if every is None:
                return fail(
                    f"no {survey} interval for class {cls} type {instr}",
                    furnace=furnace.id,
                    furnace_class=cls,
                    instrumentation=instr,
                )
            last = furnace.surveys.get(survey)
            if last is None or not intervals.current(last, every, event.at, zone):
                return fail(
                    f"{furnace.id} {survey} overdue (class {cls} type {instr}: every {every})",
                    furnace=furnace.id,
                    last=last,
                    every=str(every),
                )
        return None

    return check


FAMILY = judging.Family(SurveyRule, compile_rule)
