"""Steps of the process in the procedure's order."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from smart.contracts import facts as f
from smart.contracts.families import judging, vocabulary


class StepOrderRule(vocabulary.RuleBase):
    """A step runs only after every step before it on the job (process sequence)."""

    kind: Literal["stepOrder"] = "stepOrder"
    module: ClassVar[str] = "compliance"
    default_on: ClassVar[tuple[str, ...]] = ("step",)

    steps: list[vocabulary.Name] = Field(min_length=2, description="Steps in the order they must run.")


def compile_rule(rule: StepOrderRule, ctx: judging.Context) -> judging.Check:
    fail = judging.failer(rule)
    position = {step: i for i, step in enumerate(rule.steps)}
    steps = tuple(rule.steps)

    def check(event: f.Event, facts: f.Facts) -> judging.Reason | None:
        index = position.get(event.step) if event.step else None
        if index is None:
            return None
        job = facts.jobs.get(event.job) if event.job else None
        done = job.steps if job is not None else ()
        missing = [step for step in steps[:index] if step not in done]
        if missing:
            return fail(f"{event.step} before {', '.join(missing)}", step=event.step, missing=missing)
        return None

    return check


FAMILY = judging.Family(StepOrderRule, compile_rule)
