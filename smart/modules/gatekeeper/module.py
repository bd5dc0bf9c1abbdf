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

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar

from smart.contracts import engine
from smart.modules import framework, rulebound

#: The verbs at which the badge (and a supervisor's) must hold a signed access credential.
_SIGNED_BADGE_VERBS = ("badge", "start")


class GatekeeperModule(rulebound.RuleBoundModule):
    async def _known(
        self, event: framework.ModuleEvent, decision: framework.ModuleDecision
    ) -> framework.ModuleDecision:
        """The decision, refused for a badge (or supervisor's) the station holds no record of."""
        happened, people = event.event, (await self.station.facts()).people
        badges = [b for b in (happened.person, happened.supervisor) if b]
        strangers = [_no_access(b, self.station.station) for b in badges if b not in people]
        if not strangers:
            return decision
        return framework.ModuleDecision(
            module=decision.module,
            outcome="deny",
            reasons=(*strangers, *decision.reasons),
            revisions=decision.revisions,
            effects=decision.effects,
        )

    name = "gatekeeper"
    verb_kinds: ClassVar[Mapping[str, tuple[str, ...]]] = MappingProxyType({"badge": ("credential", "exam")})

    async def handle(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        decision = await super().handle(event)
        if event.verb in _SIGNED_BADGE_VERBS:
            decision = await self._known(event, decision)
        if event.verb not in _SIGNED_BADGE_VERBS:
            return decision
        happened = event.event
        refused = [*await self.station.badge_refusals(happened.person, happened.at)]
        if happened.supervisor:
            refused += await self.station.badge_refusals(happened.supervisor, happened.at)
        if not refused:
            return decision
        return framework.ModuleDecision(
            module=decision.module,
            outcome="deny",
            reasons=(*refused, *decision.reasons),
            revisions=decision.revisions,
            effects=decision.effects,
        )


def _no_access(badge: str, station: str) -> engine.Reason:
    return engine.Reason(
        "gatekeeper.no-access",
        f"badge {badge} has no access to {station}: the station holds no record of it",
        MappingProxyType({"badge": badge, "station": station}),
    )
