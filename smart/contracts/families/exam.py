"""Periodic exams of the person: near vision, colour contrast, current, of an accepted test (rules 2–4)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from smart import intervals
from smart.contracts import facts as f
from smart.contracts.families import judging, vocabulary


class ExamRule(vocabulary.RuleBase):
    """A periodic exam of the person is current and of an accepted test (rules 2, 3, 4)."""

    kind: Literal["exam"] = "exam"
    module: ClassVar[str] = "gatekeeper"

    exam: Literal["near-vision", "color-contrast"] = Field(description="Which exam.")
    every: vocabulary.IntervalText = Field(description="How often it is retaken.")
    accepted_tests: list[vocabulary.Name] = Field(
        default_factory=list, description="Tests the record may name, e.g. jaeger-1-12in; empty: any."
    )


def compile_rule(rule: ExamRule, ctx: judging.Context) -> judging.Check:
    fail = judging.failer(rule)
    name, every, accepted, zone = (
        rule.exam,
        intervals.parse(rule.every),
        frozenset(rule.accepted_tests),
        ctx.zone,
    )

    def check(event: f.Event, facts: f.Facts) -> judging.Reason | None:
        person = facts.people.get(event.person) if event.person else None
        if person is None:
            return fail(f"no known person for the {name} exam", person=event.person)
        latest: f.Exam | None = None
        for exam in person.exams:
            if exam.exam == name and exam.passed and exam.taken <= event.at:
                if latest is None or exam.taken > latest.taken:
                    latest = exam
        if latest is None:
            return fail(f"{person.id} has no passed {name} exam on file", person=person.id)
        if not intervals.current(latest.taken, every, event.at, zone):
            return fail(
                f"{person.id}'s {name} exam of {latest.taken.date()} is older than {every}",
                person=person.id,
                taken=latest.taken,
                every=str(every),
            )
        if accepted and latest.test not in accepted:
            return fail(
                f"{person.id}'s {name} exam record names test {latest.test!r}, not an accepted one",
                person=person.id,
                test=latest.test,
                accepted=sorted(accepted),
            )
        return None

    return check


FAMILY = judging.Family(ExamRule, compile_rule)
