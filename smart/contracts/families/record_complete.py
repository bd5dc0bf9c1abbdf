"""A job record complete and signed before release or shipping (rules 31, 32, release)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from smart.contracts import facts as f
from smart.contracts.families import credential, judging, vocabulary


class RecordCompleteRule(vocabulary.RuleBase):
    """A job record is complete and signed before release or shipping (rules 31, 32, release)."""

    kind: Literal["recordComplete"] = "recordComplete"
    module: ClassVar[str] = "guardian"
    default_on: ClassVar[tuple[str, ...]] = ("release",)

    required_steps: list[vocabulary.Name] = Field(default_factory=list)
    required_measurements: list[vocabulary.Name] = Field(default_factory=list)
    signer_method: vocabulary.Name | None = Field(
        default=None, description="The signer's certification method."
    )
    signer_min_level: vocabulary.Level | None = Field(default=None)
    no_open_ncr: bool = Field(default=True, description="No nonconformance report is open.")
    dispositions_need_design_authority: list[vocabulary.Name] = Field(
        default_factory=lambda: ["use-as-is", "repair"],
        description="NCR dispositions valid only with design-authority approval (rule 32).",
    )
    require_coc: bool = Field(default=False, description="A certificate of conformance is signed.")
    coc_signer_authority: vocabulary.Name | None = Field(
        default=None, description="Authority the C of C signer holds."
    )


def compile_rule(rule: RecordCompleteRule, ctx: judging.Context) -> judging.Check:
    fail = judging.failer(rule)
    steps, measurements = tuple(rule.required_steps), tuple(rule.required_measurements)
    needs_authority = frozenset(rule.dispositions_need_design_authority)

    def check(event: f.Event, facts: f.Facts) -> judging.Reason | None:
        job = facts.jobs.get(event.job) if event.job else None
        if job is None:
            return fail("no job record", job=event.job)
        missing = [step for step in steps if step not in job.steps]
        if missing:
            return fail(f"job {job.id} lacks steps {', '.join(missing)}", job=job.id, missing=missing)
        absent = [m for m in measurements if m not in job.measurements]
        if absent:
            return fail(f"job {job.id} lacks measurements {', '.join(absent)}", job=job.id, missing=absent)
        if rule.signer_method is not None:
            signer = facts.people.get(job.signed_by) if job.signed_by else None
            cert = credential.current_certification(signer, rule.signer_method, event.at) if signer else None
            min_rank = rule.signer_min_level.rank if rule.signer_min_level else 0
            if cert is None or cert.level.rank < min_rank:
                return fail(
                    f"job {job.id} is not signed by a credentialed person",
                    job=job.id,
                    signed_by=job.signed_by,
                )
        for ncr in job.ncrs:
            if rule.no_open_ncr and ncr.open:
                return fail(f"NCR {ncr.id} is open", job=job.id, ncr=ncr.id)
            if ncr.disposition in needs_authority and not ncr.design_authority_approval:
                return fail(
                    f"NCR {ncr.id} {ncr.disposition} lacks design-authority approval",
                    ncr=ncr.id,
                    disposition=ncr.disposition,
                )
        if rule.require_coc:
            signer = facts.people.get(job.coc_signed_by) if job.coc_signed_by else None
            if signer is None:
                return fail(f"job {job.id} has no signed certificate of conformance", job=job.id)
            if rule.coc_signer_authority and rule.coc_signer_authority not in signer.authorities:
                return fail(
                    f"C of C signer {signer.id} lacks {rule.coc_signer_authority}",
                    job=job.id,
                    signer=signer.id,
                )
        return None

    return check


FAMILY = judging.Family(RecordCompleteRule, compile_rule)
