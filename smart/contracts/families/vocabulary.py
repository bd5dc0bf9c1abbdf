"""The words every rule family shares: levels, names, intervals, units, citations, the rule base.

A rule family (``smart/contracts/families/<family>.py``) states its own model
with these, so a contract field means the same thing in every kind of rule:
an interval is ``12 months`` everywhere, a unit is one of :mod:`units`, a
level is NAS410's.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

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

UNITS_CEL = "[" + ", ".join(f"'{symbol}'" for symbol in units.KNOWN_UNITS) + "]"


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


def check_unit(unit: str) -> str:
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
