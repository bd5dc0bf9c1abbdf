"""Gatekeeper: may this person, with this part and PO, run this process on this equipment now?

``badge`` judges the person alone (the credential and exam rules: level,
supervisor of a trainee, recertification, lapse, vision and colour-contrast
exams) when someone badges in and no traveler is scanned yet; ``start``
judges every Gatekeeper rule, the traveler and the station's role included.

Both also verify the badge's SMART-ID signed access credential for this
station, offline, where the station holds SMART-ID's keys
(through the station's badge port): a badge without a good one is refused whatever
its records say, and so is a supervisor's.

A badge with no record at the station is refused at both (rule
``gatekeeper.no-access``): a station holds the records of exactly the badges
with access to it (SMART-ID publishes one per badge allowed there), so a
stranger's badge, or a pt-1 operator's at the shipping station, is no one
this station may let in, even where its contract asks for no certification.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar

from smart.contracts import engine
from smart.modules import framework, rulebound

#: The verbs at which the badge (and a supervisor's) must hold a signed access credential.
_SIGNED_BADGE_VERBS = ("badge", "start")


class GatekeeperModule(rulebound.RuleBoundModule):
    name = "gatekeeper"
    verb_kinds: ClassVar[Mapping[str, tuple[str, ...]]] = MappingProxyType({"badge": ("credential", "exam")})

    async def handle(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        if event.verb not in _SIGNED_BADGE_VERBS:
            return await super().handle(event)
        happened = event.event
        badges = [b for b in (happened.person, happened.supervisor) if b]
        asked = [happened.person, *([happened.supervisor] if happened.supervisor else [])]
        # The rules' verdict, each badge's record and each badge's signed credential are asked at
        # once: in a module's own process each is a round trip to the agent, and none needs another.
        judged = asyncio.ensure_future(super().handle(event))
        try:
            held, refusals = await asyncio.gather(
                asyncio.gather(*(self.station.held("person", b) for b in badges)),
                asyncio.gather(*(self.station.badge_refusals(b, happened.at) for b in asked)),
            )
        except BaseException:
            judged.cancel()  # a port that failed fails the decision (closed); the verdict is not awaited
            raise
        decision: framework.ModuleDecision = await judged
        strangers = [
            _no_access(b, self.station.station)
            for b, person in zip(badges, held, strict=True)
            if person is None
        ]
        refused = [reason for found in refusals for reason in found]
        if not strangers and not refused:
            return decision
        return framework.ModuleDecision(
            module=decision.module,
            outcome="deny",
            reasons=(*refused, *strangers, *decision.reasons),
            revisions=decision.revisions,
            effects=decision.effects,
        )


def _no_access(badge: str, station: str) -> engine.Reason:
    return engine.Reason(
        "gatekeeper.no-access",
        f"badge {badge} has no access to {station}: the station holds no record of it",
        MappingProxyType({"badge": badge, "station": station}),
    )
