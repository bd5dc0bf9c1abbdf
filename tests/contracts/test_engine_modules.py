"""A decision restricted to one module judges exactly the rules that module enforces."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from smart.contracts import bundle, engine, manifests
from smart.contracts import facts as f
from smart.contracts.models import SmartContract, Station
from smart.node.enforcement import NO_VALID_CONTRACT_RULE, StationEnforcer
from tests.contracts.test_reference_penetrant import AT, ROOT, badge_in, shop


def _penetrant(*, enforcement: str = "enforce") -> engine.Evaluator:
    loaded = [item.manifest for item in manifests.load([ROOT / "contracts"])]
    contract = next(m for m in loaded if isinstance(m, SmartContract) and m.metadata.name == "penetrant")
    station = next(m for m in loaded if isinstance(m, Station) and m.spec.station_id == "pt-1")
    compiled = bundle.compile_bundle(contract, station)
    compiled["enforcement"] = enforcement
    return engine.evaluator(compiled, bundle.revision_of(compiled))


def _everything_wrong() -> tuple[f.Event, f.Facts]:
    """A badge-in that breaks a rule of several modules at once."""
    world = shop()
    operator = world.people["op-7"]
    stale = dataclasses.replace(
        operator, exams=(f.Exam("near-vision", AT - timedelta(days=400), "jaeger-1-12in"),)
    )
    lots = {"PEN-2291": f.Lot("PEN-2291", "penetrant", AT - timedelta(days=1))}
    world = dataclasses.replace(world, people={**world.people, "op-7": stale}, lots=lots)
    event = badge_in(ppe=frozenset({"nitrile-gloves", "sunglasses"}))
    return event, world


def _rules(decision: engine.Decision) -> set[str]:
    return {reason.rule for reason in decision.reasons}


def test_each_module_sees_only_the_reasons_of_its_own_rule_kinds() -> None:
    evaluator = _penetrant()
    event, world = _everything_wrong()
    everything = evaluator.evaluate(event, world)
    assert {"pt-near-vision", "pt-color-contrast", "pt-penetrant-lot", "pt-no-tinted-lenses"} <= _rules(
        everything
    )

    assert _rules(evaluator.evaluate(event, world, module="gatekeeper")) == {
        "pt-near-vision",
        "pt-color-contrast",
    }
    assert _rules(evaluator.evaluate(event, world, module="inventory")) == {"pt-penetrant-lot"}
    assert _rules(evaluator.evaluate(event, world, module="safety")) == {"pt-no-tinted-lenses"}
    assert evaluator.evaluate(event, world, module="maintenance").outcome == "allow"
    assert evaluator.evaluate(event, world, module="no-such-module").outcome == "allow"
    per_module = set().union(*(_rules(evaluator.evaluate(event, world, module=m)) for m in evaluator.modules))
    assert per_module == _rules(everything)


def test_the_modules_of_a_revision_are_the_enforcers_of_its_rule_kinds() -> None:
    assert _penetrant().modules == {
        "gatekeeper",
        "standards",
        "maintenance",
        "qa",
        "inventory",
        "safety",
        "compliance",
        "guardian",
    }


def test_a_module_restricted_decision_in_audit_mode_allows_and_keeps_the_would_be_denial() -> None:
    event, world = _everything_wrong()
    decision = _penetrant(enforcement="audit").evaluate(event, world, module="inventory")
    assert decision.outcome == "warn" and decision.allowed
    (reason,) = decision.reasons
    assert reason.rule == "pt-penetrant-lot" and reason.audit
    assert reason.message.startswith("audit: would have denied:")


def test_the_contract_window_binds_every_module() -> None:
    late = badge_in(at=AT.replace(year=2028))
    decision = _penetrant().evaluate(late, shop(), module="safety")
    assert decision.outcome == "deny" and _rules(decision) == {"contract.window"}


def test_station_enforcer_restricts_to_a_module_and_still_fails_closed_with_no_contract() -> None:
    enforcer = StationEnforcer("pt-1")
    event, world = _everything_wrong()
    empty = enforcer.decide(event, world, module="safety")
    assert empty.outcome == "deny" and empty.reasons[0].rule == NO_VALID_CONTRACT_RULE
    enforcer.activate(_penetrant())
    decision = enforcer.decide(event, world, module="safety")
    assert decision.outcome == "deny" and {r.rule for r in decision.reasons} == {"pt-no-tinted-lenses"}
    assert set(decision.revisions) == {"penetrant"}


def test_a_decision_restricted_to_rule_kinds_judges_only_those_kinds() -> None:
    event, world = _everything_wrong()
    decision = _penetrant().evaluate(event, world, kinds=("exam",))
    assert _rules(decision) == {"pt-near-vision", "pt-color-contrast"}
    assert _penetrant().evaluate(event, world, kinds=("credential", "lot")).outcome == "deny"
    assert _penetrant().evaluate(event, world, kinds=()).outcome == "allow"
