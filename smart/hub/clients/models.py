"""What comes into ClientManager (pages, ``/api/v1``, the CLI, spreadsheets) and what it hands out.

Inputs are pydantic models: a bad value is refused at the edge with the
path of the field that is wrong (``lines[0].flowdowns``), before anything is
written. What ClientManager keeps and hands back are the ``*View`` models,
built from the rows (``from_attributes``), which the API publishes in its
OpenAPI document.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

#: A code a person types and a station key can carry (``PO-4411``, ``BRK-220``, ``SN-002``).
Code = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
    ),
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Notes = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]


class Unit(enum.StrEnum):
    """The units a PO line's quantity is counted in; serialised parts are counted each."""

    EACH = "ea"
    SET = "set"
    LOT = "lot"


class Outcome(enum.StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClientIn(_In):
    code: Code
    name: Text
    retention: Text = Field(
        description="The client's record retention rule, e.g. '10 years after final payment'."
    )
    nadcap_required: bool
    quality_clauses: tuple[Text, ...] = ()


class FlowdownIn(_In):
    spec: Text
    spec_revision: Code
    class_: Code = Field(alias="class", description="The spec's class or type (e.g. 'Type I Method A').")
    acceptance_criteria: Text
    nadcap_required: bool
    retention: Text | None = Field(None, description="The record retention; the client's rule when left out.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class LineIn(_In):
    line: Code
    part: Code
    part_revision: Code
    quantity: int = Field(gt=0)
    unit: Unit = Unit.EACH
    serials: tuple[Code, ...] = ()
    lot: Code | None = None
    unit_price: Decimal = Field(ge=0, max_digits=14, decimal_places=2)
    due_date: date
    flowdowns: tuple[FlowdownIn, ...] = Field(
        description="At least one: what the client requires of the work."
    )

    @model_validator(mode="after")
    def _reconciles(self) -> Self:
        if not self.flowdowns:
            raise ValueError("flowdowns: a PO line needs at least one flowdown (spec, class, acceptance)")
        if not self.serials and self.lot is None:
            raise ValueError("serials: a PO line names its parts' serials or their lot")
        if self.serials:
            if len(set(self.serials)) != len(self.serials):
                raise ValueError("serials: a serial is listed twice")
            if len(self.serials) != self.quantity:
                raise ValueError(
                    f"quantity: {self.quantity} does not reconcile with {len(self.serials)} serials"
                )
            if self.unit is not Unit.EACH:
                raise ValueError(f"unit: serialised parts are counted each (ea), not {self.unit.value}")
        return self


class PurchaseOrderIn(_In):
    po: Code
    client: Code
    received_on: date
    lines: tuple[LineIn, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _lines_unique(self) -> Self:
        numbers = [line.line for line in self.lines]
        if len(set(numbers)) != len(numbers):
            raise ValueError("lines: a line number is used twice")
        return self


class ReviewIn(_In):
    outcome: Outcome
    notes: Notes = ""


# -- what ClientManager hands out -------------------------------------------------------------------


class _View(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True, populate_by_name=True)


class ClientView(_View):
    code: str
    name: str
    retention: str
    nadcap_required: bool
    quality_clauses: tuple[str, ...]
    version: int


class FlowdownView(_View):
    spec: str
    spec_revision: str
    class_: str = Field(alias="class", serialization_alias="class")
    acceptance_criteria: str
    nadcap_required: bool
    retention: str


class ReviewView(_View):
    line_version: int
    reviewer: str
    reviewed_at: datetime
    outcome: Outcome
    notes: str


class LineView(_View):
    po: str
    line: str
    client: str
    part: str
    part_revision: str
    quantity: int
    unit: Unit
    serials: tuple[str, ...]
    lot: str | None
    unit_price: Decimal
    due_date: date
    version: int
    reviewed: bool = Field(description="True when an accepted review holds for the line as it is now.")
    released_version: int | None
    released_at: datetime | None
    flowdowns: tuple[FlowdownView, ...]
    reviews: tuple[ReviewView, ...] = ()


class PurchaseOrderView(_View):
    po: str
    client: str
    received_on: date
    lines: tuple[LineView, ...]


class Problem(_View):
    """One thing wrong with an input: where (row and column for files, a field path otherwise) and what."""

    field: str
    message: str
    row: int | None = None
    column: str | None = None
