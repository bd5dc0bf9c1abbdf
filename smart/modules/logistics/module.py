"""Logistics: shipping and receiving, on a station labelled for it; every part accounted for.

- ``receive``: body ``job`` and ``received`` (the count) and optionally
  ``serials``: the job's record starts with what arrived, then the receipt
  is judged (the station's role, the PO line).
- ``ship``: body may carry the final ``quantities`` (accepted, rejected,
  scrapped, split); the job is judged by the quantity rule (rule 29).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from smart.contracts import facts as f
from smart.modules import framework, rulebound

_COUNTED = ("received", "accepted", "rejected", "scrapped", "split")


class LogisticsModule(rulebound.RuleBoundModule):
    name = "logistics"

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
