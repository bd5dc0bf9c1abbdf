"""Every part accounted for: received = accepted + rejected + scrapped + split (rule 29)."""

from __future__ import annotations

from typing import ClassVar, Literal

from smart.contracts import facts as f
from smart.contracts.families import judging, vocabulary


class QuantityRule(vocabulary.RuleBase):
    """Every part is accounted for: received = accepted + rejected + scrapped + split (rule 29)."""

    kind: Literal["quantity"] = "quantity"
    module: ClassVar[str] = "logistics"
    default_on: ClassVar[tuple[str, ...]] = ("ship", "release")


def compile_rule(rule: QuantityRule, ctx: judging.Context) -> judging.Check:
    fail = judging.failer(rule)
    parts = ("accepted", "rejected", "scrapped", "split")

    def check(event: f.Event, facts: f.Facts) -> judging.Reason | None:
        job = facts.jobs.get(event.job) if event.job else None
        if job is None:
            return fail("no job record", job=event.job)
        received = job.quantities.get("received")
        accounted = sum(job.quantities.get(part, 0) for part in parts)
        if received is None or received != accounted:
            return fail(
                f"job {job.id}: received {received}, accounted for {accounted}",
                job=job.id,
                received=received,
                accounted=accounted,
            )
        return None

    return check


FAMILY = judging.Family(QuantityRule, compile_rule)
