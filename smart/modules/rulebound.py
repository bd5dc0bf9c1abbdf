"""A station module whose job is its rule kinds: it asks the contracts in force and answers with that.

Most station modules decide nothing of their own: the Gatekeeper, the
Guardian, Maintenance, Safety, Standards, Compliance, Inventory and
Logistics each enforce the rules of the kinds their manifest names, with the
numbers the contract gives. :class:`RuleBoundModule` is that: ``handle``
judges the event by the module's own rules (``station.judge(event,
module=name)``) and turns the station's verdict into the module's decision.
A subclass may narrow a verb to some of its kinds (``verb_kinds``) and may
write what it must before judging (:meth:`before`), e.g. a daily check
result the next decision reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from smart.contracts import engine
from smart.contracts.decisions import StationDecision
from smart.modules import framework


def refusal(module: str, rule: str, message: str, **values: Any) -> framework.ModuleDecision:
    """A decision the module takes itself (a bad request body, an e-stop), as a deny with its reason."""
    reason = engine.Reason(f"{module}.{rule}", message, MappingProxyType(values))
    return framework.ModuleDecision(module=module, outcome="deny", reasons=(reason,))


class RuleBoundModule(framework.StationModule):
    """Decides by the rules of its kinds; subclasses set ``name`` and, if they need, ``verb_kinds``."""

    #: Verbs answered with a decision by only some of the module's kinds (badge: person rules).
    verb_kinds: ClassVar[Mapping[str, tuple[str, ...]]] = MappingProxyType({})

    def __init__(self, station: framework.StationContext, manifest: framework.ModuleManifest) -> None:
        super().__init__(station, manifest)
        if not getattr(self, "name", None):  # the generic module of a folder with no module.py
            self.name = manifest.name

    async def handle(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        if self.manifest.subjects and event.verb not in self.manifest.subjects:
            answers = ", ".join(self.manifest.subjects)
            return refusal(
                self.name, "verb", f"{self.name} does not answer {event.verb!r}; it answers {answers}"
            )
        effects = await self.before(event)
        if isinstance(effects, framework.ModuleDecision):
            return effects
        decision = await self.judge(event)
        return framework.ModuleDecision(
            module=self.name,
            outcome=decision.outcome,
            reasons=decision.reasons,
            revisions=decision.revisions,
            effects=MappingProxyType(dict(effects)),
        )

    async def judge(self, event: framework.ModuleEvent) -> StationDecision:
        kinds = self.verb_kinds.get(event.verb)
        if kinds is not None:
            return await self.station.judge_kinds(event.event, kinds=kinds)
        return await self.station.judge(event.event, module=self.name)

    async def before(self, event: framework.ModuleEvent) -> Mapping[str, Any] | framework.ModuleDecision:
        """Write what this verb must leave behind before the decision reads the facts.

        Returns the effects to report, or a decision of its own (a refused request body) that ends there.
        """
        return {}
