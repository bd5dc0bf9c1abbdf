"""Checks a contract must pass that its schema cannot express.

The API server (structural schema + CEL) catches shapes and cross-field
bounds; these checks need the whole contract or the module catalog: rule ids
unique, cited standards declared, every rule's enforcing module asked for,
modules known, the time zone real, dwell steps in the step order, and what
each rule family checks of its own rules (bands that tile, ``Family.problems``). The
reconcile core runs them before it compiles anything, so an invalid
contract never replaces the revision a station enforces.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from smart.contracts import catalog, rules, units
from smart.contracts.models import SmartContractSpec


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong, with the path inside the manifest (``spec.rules[3].cites[0].standard``)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ContractInvalid(ValueError):
    """A contract failed validation; ``problems`` says where and why."""

    def __init__(self, contract: str, problems: list[Problem]) -> None:
        self.contract = contract
        self.problems = problems
        super().__init__(f"contract {contract}: " + "; ".join(str(p) for p in problems))


def problems(spec: SmartContractSpec) -> list[Problem]:
    found: list[Problem] = []
    try:
        ZoneInfo(spec.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        found.append(Problem("spec.timezone", f"unknown time zone {spec.timezone!r}; expected an IANA name"))
    for i, module in enumerate(spec.modules):
        if module not in catalog.MODULES:
            found.append(
                Problem(
                    f"spec.modules[{i}]",
                    f"unknown module {module!r}; expected one of " + ", ".join(sorted(catalog.MODULES)),
                )
            )
    standards = {standard.id for standard in spec.standards}
    seen: dict[str, int] = {}
    step_orders = [rule for rule in spec.rules if isinstance(rule, rules.StepOrderRule)]
    ordered_steps = {step for rule in step_orders for step in rule.steps}
    for i, rule in enumerate(spec.rules):
        where = f"spec.rules[{i}]"
        if rule.id in seen:
            found.append(
                Problem(
                    f"{where}.id", f"duplicate rule id {rule.id!r} (first at spec.rules[{seen[rule.id]}])"
                )
            )
        seen.setdefault(rule.id, i)
        if rule.module not in spec.modules:
            found.append(
                Problem(
                    where,
                    f"a {rule.kind} rule is enforced by module {rule.module!r}, "
                    "which spec.modules does not list",
                )
            )
        for j, cite in enumerate(rule.cites):
            if cite.standard not in standards:
                found.append(
                    Problem(
                        f"{where}.cites[{j}].standard", f"standard {cite.standard!r} is not in spec.standards"
                    )
                )
        family = rules.FAMILY_OF[type(rule)]
        if family.problems is not None:
            found.extend(Problem(path, message) for path, message in family.problems(rule, where))
        if isinstance(rule, rules.DwellRule) and step_orders and rule.step not in ordered_steps:
            found.append(Problem(f"{where}.step", f"step {rule.step!r} is in no stepOrder rule"))
        if isinstance(rule, rules.FurnaceClassRule):
            unit = units.UNITS.get(rule.unit)
            if unit is None or unit.dimension != "temperature-difference":
                found.append(
                    Problem(f"{where}.unit", f"{rule.unit!r} is not a temperature difference (Δ°C, Δ°F)")
                )
    return found


def check(name: str, spec: SmartContractSpec) -> None:
    """Raise :class:`ContractInvalid` naming every problem of contract ``name``."""
    found = problems(spec)
    if found:
        raise ContractInvalid(name, found)
