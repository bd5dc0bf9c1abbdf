"""Compliance: the contract's process rules at the point of operation (steps in their order).

``step`` judges a step before it is recorded on the job: a step whose
predecessors are not on the job's record is refused.
"""

from __future__ import annotations

from smart.modules import rulebound


class ComplianceModule(rulebound.RuleBoundModule):
    name = "compliance"
