"""The vocabulary of rules a contract may state: a small set of typed rule kinds.

Every rule of the shop (DOMAIN.md rules 1–34) is one of these kinds with its
numbers as data: a certification with method and level, an exam renewed
every N months, a measurement within limits in a known unit, a check done
within an interval, a calibration that is current, PPE worn, a traveler
authorised, steps in order, a lot in date, a record complete before
release, a station's role. There are no expressions and no code in a
contract: a new kind of rule is a reviewed change to this file, the engine
and the CRD, never a string a contract author writes.

Each kind names the station module that enforces it (``module``) and the
events it applies to by default (``default_on``), so the reconcile core can
check that a contract asks for the modules its rules need.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from smart import intervals
from smart.contracts import units

#: The events a station raises; a rule applies to some of them.
Action = Literal["operate", "measure", "step", "release", "receive", "ship", "open", "close", "survey"]


class Level(StrEnum):
    """Qualification levels of NAS410/EN4179, lowest first (DOMAIN rule 1)."""

    TRAINEE = "trainee"
    LEVEL_1_LIMITED = "level-1-limited"
    LEVEL_1 = "level-1"
    LEVEL_2 = "level-2"
    LEVEL_3 = "level-3"

    @property
    def rank(self) -> int:
        return _LEVEL_RANK[self]


_LEVEL_RANK = {level: rank for rank, level in enumerate(Level)}

IntervalText = Annotated[
    str,
    Field(
        pattern=intervals.PATTERN,
        description="How often, e.g. '1 day', '7 days', '8 hours', '12 months' (see docs/intervals).",
        examples=["12 months"],
    ),
]
Name = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/ -]*$")]
UnitText = Annotated[str, Field(min_length=1, max_length=16, description="A known unit symbol, e.g. µW/cm².")]

_UNITS_CEL = "[" + ", ".join(f"'{symbol}'" for symbol in units.KNOWN_UNITS) + "]"


class Model(BaseModel):
    """camelCase in YAML, snake_case in Python; unknown fields refused; values immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, use_enum_values=False
    )


class Citation(Model):
    """Where a rule comes from: a standard named in ``spec.standards`` and its clause."""

    standard: Name = Field(description="The id of an entry in spec.standards.")
    clause: str | None = Field(default=None, max_length=80, description="Clause or table, e.g. '8.4'.")
    note: str | None = Field(default=None, max_length=400, description="Source and caveats.")


class Limits(Model):
    """Inclusive bounds; at least one of min and max."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.min) || !has(self.max) || self.min <= self.max",
                    "message": "limits.min must be less than or equal to limits.max",
                },
                {"rule": "has(self.min) || has(self.max)", "message": "limits need a min, a max or both"},
            ]
        }
    )

    min: float | None = Field(default=None, description="Lowest acceptable value, inclusive.")
    max: float | None = Field(default=None, description="Highest acceptable value, inclusive.")

    @model_validator(mode="after")
    def _ordered(self) -> Limits:
        if self.min is None and self.max is None:
            raise ValueError("limits need a min, a max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self


def _check_unit(unit: str) -> str:
    if unit not in units.UNITS:
        raise ValueError(f"unknown unit {unit!r}; expected one of {', '.join(units.KNOWN_UNITS)}")
    return unit


class RuleBase(Model):
    """What every rule has: an id, a message, citations, a severity and the events it applies to."""

    kind: str
    module: ClassVar[str]
    default_on: ClassVar[tuple[str, ...]] = ("operate",)

    id: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Unique within the contract; reasons and ledger entries name it.",
    )
    message: str | None = Field(default=None, max_length=400, description="What the operator is told.")
    cites: list[Citation] = Field(default_factory=list, description="Standard clauses this rule implements.")
    severity: Literal["deny", "warn"] = Field(
        default="deny", description="deny blocks the action; warn lets it go and records why."
    )
    applies_to: list[Action] | None = Field(
        default=None, description="Events the rule applies to; the kind's default when absent."
    )

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(self.applies_to) if self.applies_to else self.default_on


class SupervisorRequirement(Model):
    """Who must badge in beside a trainee: same method, at least this level, or an instructor."""

    min_level: Level = Field(default=Level.LEVEL_2, description="Lowest level a supervisor may hold.")
    instructor_allowed: bool = Field(default=True, description="An instructor in the method may supervise.")


class PracticalExam(Model):
    """The Level 2 practical: samples of different configuration (DOMAIN rule 8)."""

    min_samples: int = Field(default=2, ge=1, description="Samples per method.")
    min_per_technique: int = Field(default=1, ge=1, description="Samples per technique.")


class CredentialRule(RuleBase):
    """The operator holds a current certification in the method at or above a level (rules 1, 5, 6, 8)."""

    kind: Literal["credential"] = "credential"
    module: ClassVar[str] = "gatekeeper"

    method: Name = Field(description="NDT method or process, e.g. PT, MT, UT, HT.")
    technique: Name | None = Field(default=None, description="Technique the certification must cover.")
    min_level: Level = Field(description="Lowest level that may work alone.")
    supervisor: SupervisorRequirement | None = Field(
        default=None, description="When set, a trainee may work only beside such a supervisor."
    )
    recertify_every: IntervalText | None = Field(
        default=None, description="Certification older than this (from issue) is not current."
    )
    lapse_if_not_performed_for: IntervalText | None = Field(
        default=None, description="Certification lapses when the method was not performed this long."
    )
    accepted_basis: list[Name] = Field(
        default_factory=lambda: ["initial-exam", "recertification-exam"],
        description="What a certification may rest on; e.g. never 'rehire' (NAS410 8.4).",
    )
    practical_exam: PracticalExam | None = Field(default=None, description="Practical exam record required.")


class ExamRule(RuleBase):
    """A periodic exam of the person is current and of an accepted test (rules 2, 3, 4)."""

    kind: Literal["exam"] = "exam"
    module: ClassVar[str] = "gatekeeper"

    exam: Literal["near-vision", "color-contrast"] = Field(description="Which exam.")
    every: IntervalText = Field(description="How often it is retaken.")
    accepted_tests: list[Name] = Field(
        default_factory=list, description="Tests the record may name, e.g. jaeger-1-12in; empty: any."
    )


class MeasurementRule(RuleBase):
    """A reading is within limits in a stated unit (rules 9–11, 14, 15, 19, 24–26)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"self.kind != 'measurement' || self.unit in {_UNITS_CEL}",
                    "message": "unknown unit",
                }
            ]
        }
    )
    kind: Literal["measurement"] = "measurement"
    module: ClassVar[str] = "qa"
    default_on: ClassVar[tuple[str, ...]] = ("operate", "measure")

    quantity: Name = Field(description="What is read, e.g. uv-a-intensity, ambient-white-light.")
    unit: UnitText = Field(description="The unit of the limits; readings in other units are converted.")
    limits: Limits
    check: Name | None = Field(
        default=None, description="Read the value from the last record of this check instead of the event."
    )
    when: dict[str, str] = Field(
        default_factory=dict, description="Applies only when the event's attributes have these values."
    )

    @model_validator(mode="after")
    def _known_unit(self) -> MeasurementRule:
        _check_unit(self.unit)
        return self


class CheckRule(RuleBase):
    """A check was done, passed, and is current (rules 9, 12, 14, 15, 17, 30)."""

    kind: Literal["check"] = "check"
    module: ClassVar[str] = "maintenance"

    check: Name = Field(description="Check name, e.g. tam-panel, uv-a-intensity, fod.")
    every: IntervalText = Field(description="How long a passed check stays current.")
    after_maintenance: bool = Field(
        default=False, description="The check must be newer than the last maintenance of its equipment."
    )
    exempt_material_forms: list[Name] = Field(
        default_factory=list,
        description="Does not apply when every lot in use has one of these forms (e.g. aerosol, rule 17).",
    )


class CalibrationRule(RuleBase):
    """Equipment of these kinds in use is calibrated, in tolerance and not overdue (rules 16, 24, 27)."""

    kind: Literal["calibration"] = "calibration"
    module: ClassVar[str] = "maintenance"
    default_on: ClassVar[tuple[str, ...]] = ("operate", "measure", "survey")

    equipment_kinds: list[Name] = Field(min_length=1, description="Equipment kinds, e.g. ammeter.")
    every: IntervalText = Field(description="Calibration interval.")
    requires: dict[str, str] = Field(
        default_factory=dict, description="Equipment attributes that must hold, e.g. grade: special-limits."
    )


class FurnaceClassRule(RuleBase):
    """The job's class and temperature fall inside the furnace's qualified class and range (rule 21)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.kind != 'furnaceClass' || !has(self.unit) || self.unit in ['Δ°C', 'Δ°F']",
                    "message": "uniformity unit must be Δ°C or Δ°F",
                }
            ]
        }
    )

    kind: Literal["furnaceClass"] = "furnaceClass"
    module: ClassVar[str] = "standards"

    uniformity: dict[str, float] = Field(
        min_length=1, description="Furnace class → temperature uniformity tolerance, ± in the unit."
    )
    unit: UnitText = Field(default="Δ°C", description="Unit of the tolerances.")
    temperature_quantity: Name = Field(default="setpoint", description="The event reading of the setpoint.")


class SurveyInterval(Model):
    classes: list[str] = Field(min_length=1, description="Furnace classes, e.g. ['1', '2'].")
    instrumentation: list[Literal["A", "B", "C", "D", "D+", "E"]] = Field(
        min_length=1, description="Instrumentation types."
    )
    every: IntervalText


class SurveyRule(RuleBase):
    """The furnace's last TUS or SAT is within its interval by class × instrumentation (rule 22)."""

    kind: Literal["survey"] = "survey"
    module: ClassVar[str] = "maintenance"

    survey: Literal["TUS", "SAT"]
    intervals: list[SurveyInterval] = Field(min_length=1, description="The standard's table, as rows.")


class PpeRule(RuleBase):
    """Required PPE is seen and prohibited items are not (rule 20)."""

    kind: Literal["ppe"] = "ppe"
    module: ClassVar[str] = "safety"

    required: list[Name] = Field(default_factory=list, description="Items that must be seen.")
    prohibited: list[Name] = Field(default_factory=list, description="Items that must not be seen.")


class TravelerRule(RuleBase):
    """The scanned PO line and traveler operation are released and authorise this process (rules 33, 34)."""

    kind: Literal["traveler"] = "traveler"
    module: ClassVar[str] = "gatekeeper"

    process: Name = Field(description="The operation the traveler must route here, e.g. penetrant.")
    require_contract_review: bool = Field(default=True, description="The PO was contract-reviewed.")
    match: list[Literal["part", "serial"]] = Field(
        default_factory=lambda: ["part", "serial"],  # type: ignore[arg-type]
        description="Scanned fields that must match the PO.",
    )
    required_po_fields: list[Name] = Field(
        default_factory=list, description="Flowdowns the PO line must carry, e.g. retention, spec."
    )


class StepOrderRule(RuleBase):
    """A step runs only after every step before it on the job (process sequence)."""

    kind: Literal["stepOrder"] = "stepOrder"
    module: ClassVar[str] = "compliance"
    default_on: ClassVar[tuple[str, ...]] = ("step",)

    steps: list[Name] = Field(min_length=2, description="Steps in the order they must run.")


class DwellBand(Model):
    """A temperature band and how the base dwell changes in it (rule 18)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self.min < self.max", "message": "band min must be below band max"}
            ]
        }
    )
    min: float = Field(description="Lowest temperature of the band, inclusive.")
    max: float = Field(description="Highest temperature of the band, inclusive.")
    factor: float = Field(gt=0, description="Multiplies the base dwell.")
    floor_minutes: float | None = Field(default=None, ge=0, description="Never shorter than this.")

    @model_validator(mode="after")
    def _ordered(self) -> DwellBand:
        if self.min >= self.max:
            raise ValueError(f"band min {self.min} must be below band max {self.max}")
        return self


class DwellRule(RuleBase):
    """A dwell lasted long enough for the part temperature (rule 18)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.kind != 'dwell' || !has(self.temperatureUnit) || self.temperatureUnit in "
                    "['°F', '°C']",
                    "message": "temperatureUnit must be °F or °C",
                }
            ]
        }
    )

    kind: Literal["dwell"] = "dwell"
    module: ClassVar[str] = "qa"
    default_on: ClassVar[tuple[str, ...]] = ("step",)

    step: Name = Field(description="The step whose duration is checked, e.g. penetrant-dwell.")
    temperature_quantity: Name = Field(default="part-temperature", description="Reading of the part.")
    duration_quantity: Name = Field(default="dwell-time", description="Reading of the dwell, any time unit.")
    base_minutes: float = Field(gt=0, description="Dwell in the normal band (per the procedure).")
    temperature_unit: UnitText = Field(default="°F")
    bands: list[DwellBand] = Field(min_length=1)
    service_induced_minutes: float | None = Field(
        default=None, description="At least this when the job looks for service-induced flaws."
    )

    @model_validator(mode="after")
    def _known_unit(self) -> DwellRule:
        if self.temperature_unit not in ("°F", "°C"):
            raise ValueError(f"temperatureUnit {self.temperature_unit!r}: expected °F or °C")
        return self


class LotRule(RuleBase):
    """A material in use comes from a known lot within its shelf life (rules 17, consumables)."""

    kind: Literal["lot"] = "lot"
    module: ClassVar[str] = "inventory"

    material: Name = Field(description="Material, e.g. penetrant, developer, magnetic-particles.")
    lot_required: bool = Field(default=True, description="The event must name a lot of this material.")
    opened_shelf_life: IntervalText | None = Field(
        default=None, description="Usable this long after opening."
    )


class QuantityRule(RuleBase):
    """Every part is accounted for: received = accepted + rejected + scrapped + split (rule 29)."""

    kind: Literal["quantity"] = "quantity"
    module: ClassVar[str] = "logistics"
    default_on: ClassVar[tuple[str, ...]] = ("ship", "release")


class RecordCompleteRule(RuleBase):
    """A job record is complete and signed before release or shipping (rules 31, 32, release)."""

    kind: Literal["recordComplete"] = "recordComplete"
    module: ClassVar[str] = "guardian"
    default_on: ClassVar[tuple[str, ...]] = ("release",)

    required_steps: list[Name] = Field(default_factory=list)
    required_measurements: list[Name] = Field(default_factory=list)
    signer_method: Name | None = Field(default=None, description="The signer's certification method.")
    signer_min_level: Level | None = Field(default=None)
    no_open_ncr: bool = Field(default=True, description="No nonconformance report is open.")
    dispositions_need_design_authority: list[Name] = Field(
        default_factory=lambda: ["use-as-is", "repair"],
        description="NCR dispositions valid only with design-authority approval (rule 32).",
    )
    require_coc: bool = Field(default=False, description="A certificate of conformance is signed.")
    coc_signer_authority: Name | None = Field(default=None, description="Authority the C of C signer holds.")


class StationRoleRule(RuleBase):
    """These actions happen only at a station with one of these roles (e.g. shipping on sr-1)."""

    kind: Literal["stationRole"] = "stationRole"
    module: ClassVar[str] = "gatekeeper"
    default_on: ClassVar[tuple[str, ...]] = ("ship", "receive")

    roles: list[Name] = Field(min_length=1)


class ProcedureRule(RuleBase):
    """The procedure revision in use is approved by a Level 3 in the method and validated (rules 7, 28)."""

    kind: Literal["procedure"] = "procedure"
    module: ClassVar[str] = "standards"

    method: Name
    require_validated: bool = Field(default=True, description="Special process validated (8.5.1 f).")


class MatchRule(RuleBase):
    """An attribute of equipment in use equals the same attribute of the part (TAM finish, rule 13)."""

    kind: Literal["match"] = "match"
    module: ClassVar[str] = "standards"

    equipment_kind: Name = Field(description="Equipment kind, e.g. tam-panel.")
    attribute: Name = Field(description="Attribute compared, e.g. finish.")
    event_attribute: Name = Field(description="Event attribute with the part's value, e.g. part-finish.")


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

RULE_KINDS: dict[str, type[RuleBase]] = {
    cls.model_fields["kind"].default: cls
    for cls in (
        CredentialRule,
        ExamRule,
        MeasurementRule,
        CheckRule,
        CalibrationRule,
        FurnaceClassRule,
        SurveyRule,
        PpeRule,
        TravelerRule,
        StepOrderRule,
        DwellRule,
        LotRule,
        QuantityRule,
        RecordCompleteRule,
        StationRoleRule,
        ProcedureRule,
        MatchRule,
    )
}


def dump(rule: RuleBase) -> dict[str, Any]:
    """A rule as a contract would write it (camelCase, defaults included), for bundles and diffs."""
    return rule.model_dump(mode="json", by_alias=True, exclude_none=True)
