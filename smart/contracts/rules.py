"""The vocabulary of rules a contract may state: a small set of typed rule kinds.

Every rule of the shop (DOMAIN.md rules 1–34) is one of these kinds with its
numbers as data: a certification with method and level, an exam renewed
every N months, a measurement within limits in a known unit, a check done
within an interval, a calibration that is current, PPE worn, a traveler
authorised, steps in order, a lot in date, a record complete before
release, a station's role. There are no expressions and no code in a
contract: a new kind of rule is a reviewed change (a file in
``smart/contracts/families/`` and its line here), never a string a contract
author writes.

Each kind names the station module that enforces it (``module``) and the
events it applies to by default (``default_on``), so the reconcile core can
check that a contract asks for the modules its rules need.

Each family (``smart/contracts/families/<family>.py``) holds its model, its
compiler and its registration (``FAMILY``); this file lists them, in the
order the CRD's schema shows them, and re-exports every model so callers
write ``rules.CheckRule``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from smart.contracts.families import (
    calibration,
    check,
    credential,
    dwell,
    exam,
    furnace_class,
    judging,
    lot,
    match,
    measurement,
    ppe,
    procedure,
    quantity,
    record_complete,
    station_role,
    step_order,
    survey,
    traveler,
)
from smart.contracts.families.calibration import CalibrationRule
from smart.contracts.families.check import CheckRule
from smart.contracts.families.credential import CredentialRule, PracticalExam, SupervisorRequirement
from smart.contracts.families.dwell import DwellBand, DwellRule
from smart.contracts.families.exam import ExamRule
from smart.contracts.families.furnace_class import FurnaceClassRule
from smart.contracts.families.lot import LotRule
from smart.contracts.families.match import MatchRule
from smart.contracts.families.measurement import MeasurementRule
from smart.contracts.families.ppe import PpeRule
from smart.contracts.families.procedure import ProcedureRule
from smart.contracts.families.quantity import QuantityRule
from smart.contracts.families.record_complete import RecordCompleteRule
from smart.contracts.families.station_role import StationRoleRule
from smart.contracts.families.step_order import StepOrderRule
from smart.contracts.families.survey import SurveyInterval, SurveyRule
from smart.contracts.families.traveler import TravelerRule
from smart.contracts.families.vocabulary import (
    Action,
    Citation,
    IntervalText,
    Level,
    Limits,
    Model,
    Name,
    RuleBase,
    UnitText,
)

__all__ = [
    "FAMILIES",
    "FAMILY_OF",
    "RULE_KINDS",
    "Action",
    "CalibrationRule",
    "CheckRule",
    "Citation",
    "CredentialRule",
    "DwellBand",
    "DwellRule",
    "ExamRule",
    "FurnaceClassRule",
    "IntervalText",
    "Level",
    "Limits",
    "LotRule",
    "MatchRule",
    "MeasurementRule",
    "Model",
    "Name",
    "PpeRule",
    "PracticalExam",
    "ProcedureRule",
    "QuantityRule",
    "RecordCompleteRule",
    "Rule",
    "RuleBase",
    "StationRoleRule",
    "StepOrderRule",
    "SupervisorRequirement",
    "SurveyInterval",
    "SurveyRule",
    "TravelerRule",
    "UnitText",
    "dump",
]

Rule = Annotated[
    CredentialRule
    | ExamRule
    | MeasurementRule
    | CheckRule
    | CalibrationRule
    | FurnaceClassRule
    | SurveyRule
    | PpeRule
    | TravelerRule
    | StepOrderRule
    | DwellRule
    | LotRule
    | QuantityRule
    | RecordCompleteRule
    | StationRoleRule
    | ProcedureRule
    | MatchRule,
    Field(discriminator="kind"),
]

#: Every family's registration, in the order above.
FAMILIES: tuple[judging.Family[Any], ...] = (
    credential.FAMILY,
    exam.FAMILY,
    measurement.FAMILY,
    check.FAMILY,
    calibration.FAMILY,
    furnace_class.FAMILY,
    survey.FAMILY,
    ppe.FAMILY,
    traveler.FAMILY,
    step_order.FAMILY,
    dwell.FAMILY,
    lot.FAMILY,
    quantity.FAMILY,
    record_complete.FAMILY,
    station_role.FAMILY,
    procedure.FAMILY,
    match.FAMILY,
)

RULE_KINDS: dict[str, type[RuleBase]] = {family.kind: family.model for family in FAMILIES}

#: Each model's family: its compiler, fast path and contract-wide checks.
FAMILY_OF: dict[type[RuleBase], judging.Family[Any]] = {family.model: family for family in FAMILIES}


def dump(rule: RuleBase) -> dict[str, Any]:
    """A rule as a contract would write it (camelCase, defaults included), for bundles and diffs."""
    return rule.model_dump(mode="json", by_alias=True, exclude_none=True)
