"""Guardian: is the job record complete, within limits and signed before it leaves the station?

``release`` judges the job as the station's records hold it (steps,
measurements, the signer's certification, open NCRs, a signed C of C where
the contract asks) by the contract's ``recordComplete`` rules.
"""

from __future__ import annotations

from smart.modules import rulebound


class GuardianModule(rulebound.RuleBoundModule):
    name = "guardian"
