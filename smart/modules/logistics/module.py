"""Logistics: shipping and receiving, on a station labelled for it; every part accounted for.

- ``receive``: body ``job`` and ``received`` (the count) and optionally
  ``serials``: the job's record starts with what arrived, then the receipt
  is judged (the station's role, the PO line).
- ``ship``: body may carry the final ``quantities`` (accepted, rejected,
  scrapped, split); the job is judged by the quantity rule (rule 29). The C
  of C's signer (the person badged in, who signed it) is told in plain words
  when their record lacks the authority the contract names for it
  (``cocSignerAuthority``), beside the Guardian's reason.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from smart.contracts import engine
from smart.contracts import facts as f
from smart.modules import framework, rulebound

_COUNTED = ("received", "accepted", "rejected", "scrapped", "split")


class LogisticsModule(rulebound.RuleBoundModule):
    name = "logistics"

    async def handle(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        decision = await super().handle(event)
        if event.verb != "ship":
            return decision
        lacking = await self._coc_authority(event)
        if not lacking:
            return decision
        return dataclasses.replace(decision, outcome="deny", reasons=(*decision.reasons, *lacking))

    async def _coc_authority(self, event: framework.ModuleEvent) -> tuple[engine.Reason, ...]:
        """The C of C signer's missing authority, in the words the signer is told."""
        facts = await self.station.facts()
        job = facts.jobs.get(event.event.job or "")
        signer = job.coc_signed_by if job is not None else None
        if signer is None:
            return ()
        held = facts.people.get(signer)
        needed = set()
        for active in await self.station.active_revisions():
            for rule in json.loads(active.envelope)["bundle"].get("rules", ()):
                if rule.get("kind") == "recordComplete" and rule.get("cocSignerAuthority"):
                    needed.add(str(rule["cocSignerAuthority"]))
        missing = sorted(a for a in needed if held is None or a not in held.authorities)
        if not missing:
            return ()
        reason = engine.Reason(
            f"{self.name}.coc-authority",
            f"{signer} does not have the authority to sign the C of C (needs {', '.join(missing)})",
            {"signer": signer, "needs": missing},
        )
        return (reason,)

    async def before(self, event: framework.ModuleEvent) -> Mapping[str, Any] | framework.ModuleDecision:
        body = event.body
        job_id = body.get("job") or event.event.job
        counts = dict(body.get("quantities") or {})
        if event.verb == "receive" and "received" in body:
            counts["received"] = body["received"]
        if not counts:
            return {}
        if not isinstance(job_id, str) or not job_id:
            return rulebound.refusal(self.name, "job", "quantities need the job they count")
        if any(name not in _COUNTED or not isinstance(n, int) or n < 0 for name, n in counts.items()):
            return rulebound.refusal(
                self.name, "quantities", f"quantities are counts of {', '.join(_COUNTED)}", job=job_id
            )
        held = await self.station.held("job", job_id)
        job = held if isinstance(held, f.Job) else f.Job(id=job_id)
        serials = tuple(body.get("serials") or job.serials)
        updated = dataclasses.replace(job, quantities={**job.quantities, **counts}, serials=serials)
        await self.station.keep("job", updated, actor=event.event.person or self.station.station)
        return {"job": job_id, "quantities": dict(updated.quantities)}
