"""The station's decision point: every active contract revision, judged together, from local state only.

A station may hold several contracts (its process contract, a safety
contract, a customer flowdown); an action is allowed only if no active
revision denies it. With no active revision at all, the station cannot prove
anything is allowed, so it denies with the reason "no valid contract" (fail
closed). Activation swaps an immutable mapping, so a decision that started
on the old revision finishes on it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import MappingProxyType

from smart.contracts import engine
from smart.contracts import facts as f
from smart.contracts.decisions import StationDecision

NO_VALID_CONTRACT = "no valid contract"
NO_VALID_CONTRACT_RULE = "station.no-valid-contract"

__all__ = ["NO_VALID_CONTRACT", "NO_VALID_CONTRACT_RULE", "StationDecision", "StationEnforcer"]


class StationEnforcer:
    """Holds the compiled, active revision of each contract and decides against all of them."""

    def __init__(self, station: str) -> None:
        self.station = station
        self._evaluators: Mapping[str, engine.Evaluator] = MappingProxyType({})

    @property
    def revisions(self) -> dict[str, str]:
        return {name: ev.revision for name, ev in self._evaluators.items()}

    def activate(self, evaluator: engine.Evaluator) -> str | None:
        """Put ``evaluator`` in force for its contract; returns the revision it replaces."""
        current = dict(self._evaluators)
        previous = current.get(evaluator.contract)
        current[evaluator.contract] = evaluator
        self._evaluators = MappingProxyType(current)
        return None if previous is None else previous.revision

    def retire(self, contract: str) -> str | None:
        current = dict(self._evaluators)
        previous = current.pop(contract, None)
        self._evaluators = MappingProxyType(current)
        return None if previous is None else previous.revision

    def decide(
        self,
        event: f.Event,
        facts: f.Facts,
        *,
        module: str | None = None,
        kinds: Collection[str] | None = None,
    ) -> StationDecision:
        """Judge ``event`` by every active revision; with ``module`` (or ``kinds``) by those rules only."""
        evaluators = self._evaluators  # one snapshot for the whole decision
        if not evaluators:
            reason = engine.Reason(
                NO_VALID_CONTRACT_RULE,
                f"{NO_VALID_CONTRACT}: station {self.station} holds no verified, active contract revision",
                MappingProxyType({"station": self.station}),
            )
            return StationDecision(self.station, "deny", (reason,), MappingProxyType({}))
        outcomes: list[engine.Outcome] = []
        reasons: list[engine.Reason] = []
        for evaluator in evaluators.values():
            decision = evaluator.evaluate(event, facts, module=module, kinds=kinds)
            outcomes.append(decision.outcome)
            reasons.extend(decision.reasons)
        outcome: engine.Outcome = "deny" if "deny" in outcomes else "warn" if "warn" in outcomes else "allow"
        revisions = MappingProxyType({name: ev.revision for name, ev in evaluators.items()})
        return StationDecision(self.station, outcome, tuple(reasons), revisions)
