"""The procedure revision in use approved by a Level 3 in the method and validated (rules 7, 28)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from smart.contracts import facts as f
from smart.contracts.families import credential, judging, vocabulary


class ProcedureRule(vocabulary.RuleBase):
    """The procedure revision in use is approved by a Level 3 in the method and validated (rules 7, 28)."""

    kind: Literal["procedure"] = "procedure"
    module: ClassVar[str] = "standards"

    method: vocabulary.Name
    require_validated: bool = Field(default=True, description="Special process validated (8.5.1 f).")


def compile_rule(rule: ProcedureRule, ctx: judging.Context) -> judging.Check:
    fail = judging.failer(rule)
    method, validated = rule.method, rule.require_validated
    level_3 = vocabulary.Level.LEVEL_3.rank

    def check(event: f.Event, facts: f.Facts) -> judging.Reason | None:
        procedure = facts.procedures.get(event.procedure) if event.procedure else None
        if procedure is None:
            return fail("no approved procedure named", procedure=event.procedure)
        if procedure.revision != event.procedure_revision:
            return fail(
                f"procedure {procedure.id} rev {event.procedure_revision} is not the approved rev "
                f"{procedure.revision}",
                procedure=procedure.id,
                revision=event.procedure_revision,
                approved=procedure.revision,
            )
        approver = facts.people.get(procedure.approved_by) if procedure.approved_by else None
        cert = credential.current_certification(approver, method, event.at) if approver else None
        if cert is None or cert.level.rank < level_3:
            return fail(
                f"procedure {procedure.id} is not approved by a Level 3 in {method}",
                procedure=procedure.id,
                approved_by=procedure.approved_by,
            )
        if validated and not procedure.validated:
            return fail(f"procedure {procedure.id} is not validated", procedure=procedure.id)
        return None

    return check


FAMILY = judging.Family(ProcedureRule, compile_rule)
