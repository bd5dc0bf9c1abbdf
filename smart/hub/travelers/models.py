"""A traveler's route as it comes in (pages, ``/api/v1``, the CLI) and as the hub hands it out."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from smart.hub.clients.models import Code, Notes, Text


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class OperationIn(_In):
    """One operation of the route: where (station) and what (process), by which procedure revision."""

    station: Code = Field(description="The station that does the operation (e.g. pt-1).")
    process: Code = Field(description="The process the station's contract names (penetrant, shipping).")
    procedure: Code
    procedure_revision: Code
    spec: Text
    class_: Code = Field(alias="class")
    acceptance_criteria: Text


class RouteIn(_In):
    operations: tuple[OperationIn, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_process_per_station(self) -> Self:
        seen: set[tuple[str, str]] = set()
        for index, operation in enumerate(self.operations):
            key = (operation.station, operation.process)
            if key in seen:
                raise ValueError(
                    f"operations[{index}]: {operation.station} already does {operation.process} on this route"
                )
            seen.add(key)
        return self


class TravelerIn(RouteIn):
    """A line's traveler: its own route, or a template's (``template``) when no operations are given."""

    operations: tuple[OperationIn, ...] = ()
    template: Code | None = None
    reason: Notes = ""

    @model_validator(mode="after")
    def _route_or_template(self) -> Self:
        if not self.operations and self.template is None:
            raise ValueError("operations: a traveler needs its operations or a template to take them from")
        return self


class TemplateIn(RouteIn):
    name: Code
    part: Code | None = None
    process: Code | None = None

    @model_validator(mode="after")
    def _for_part_or_process(self) -> Self:
        if self.part is None and self.process is None:
            raise ValueError("part: a template is for a part or for a process")
        return self


class ProcedureIn(_In):
    id: Code
    revision: Code
    method: Code
    approved_by: Code = Field(description="The Level 3 who approved this revision (their station person id).")
    validated: bool


class Status(enum.StrEnum):
    DRAFT = "draft"
    RELEASED = "released"


class _View(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True, populate_by_name=True)


class OperationView(_View):
    seq: int
    station: str
    process: str
    procedure: str
    procedure_revision: str
    spec: str
    class_: str = Field(alias="class", serialization_alias="class")
    acceptance_criteria: str


class TravelerView(_View):
    po: str
    line: str
    revision: int
    status: Status
    reason: str
    template: str | None
    operations: tuple[OperationView, ...]
    created_by: str
    created_at: datetime
    released_by: str | None
    released_at: datetime | None

    def stations(self) -> list[str]:
        """The stations on the route, in route order, each once."""
        return list(dict.fromkeys(op.station for op in self.operations))


class TemplateView(_View):
    name: str
    part: str | None
    process: str | None
    operations: tuple[OperationView, ...]
    version: int


class ProcedureView(_View):
    id: str
    revision: str
    method: str
    approved_by: str
    validated: bool
    approved_at: datetime
    current: bool
