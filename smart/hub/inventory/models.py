"""InventoryHub's edge models: materials and lots as the API, pages, CLI and imports take them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from smart import intervals

#: Units a lot or a material is counted in (a lot in an unknown unit is refused, naming the field).
UNITS = frozenset({"L", "mL", "kg", "g", "gal", "qt", "can", "ea"})


class _In(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


def _unit(value: str) -> str:
    if value not in UNITS:
        raise ValueError(f"unknown unit {value!r}; expected one of {', '.join(sorted(UNITS))}")
    return value


class MaterialIn(_In):
    """A consumable (penetrant, developer, particles): its form decides whether in-use checks apply."""

    id: str = Field(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9-]*$")
    form: Literal["bulk", "aerosol"]
    unit: str
    shelf_life: str | None = Field(default=None, description="Usable this long after opening, e.g. 6 months.")
    in_use_checks: tuple[str, ...] = ()
    supplier: str = Field(min_length=1, max_length=120)
    min_stock: float = Field(ge=0)
    lead_time_days: float = Field(gt=0)
    pack_size: float = Field(default=0, ge=0)
    stations: tuple[str, ...] = Field(min_length=1)

    _check_unit = field_validator("unit")(_unit)

    @field_validator("shelf_life")
    @classmethod
    def _shelf(cls, value: str | None) -> str | None:
        if value is not None:
            intervals.parse(value)
        return value

    @model_validator(mode="after")
    def _aerosol(self) -> MaterialIn:
        # DOMAIN rule 17: ready-to-use, non-reused materials (aerosols) have no in-use checks.
        if self.form == "aerosol" and self.in_use_checks:
            raise ValueError("in_use_checks: an aerosol is used once as supplied; in-use checks do not apply")
        return self


class MaterialView(MaterialIn):
    added_by: str
    added_at: datetime


class LotIn(_In):
    """A lot as received: the supplier's certificate, when it came, when it expires, how much."""

    id: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    material: str
    supplier: str = Field(min_length=1, max_length=120)
    certificate: str = Field(min_length=1, max_length=120, description="The supplier's certificate number.")
    received_on: date
    expires_on: date
    quantity: float = Field(gt=0)
    unit: str
    stations: tuple[str, ...] = Field(min_length=1)

    _check_unit = field_validator("unit")(_unit)

    @model_validator(mode="after")
    def _dates(self) -> LotIn:
        if self.expires_on <= self.received_on:
            raise ValueError(
                f"expires_on: lot {self.id} expires {self.expires_on}, "
                f"not after its receipt {self.received_on}"
            )
        return self


class LotView(LotIn):
    withdrawn_on: date | None
    withdrawn_why: str | None
    added_by: str
    added_at: datetime


_FOR_BUSINESS = {"id", "station", "material", "supplier", "quantity", "unit", "raised_at"}


class PurchaseRequest(BaseModel):
    id: int
    station: str
    material: str
    supplier: str
    quantity: float
    unit: str
    signal_idx: int
    raised_at: datetime
    #: Its place on the one-way feed to the Business hub (``None`` until it is published there).
    published_seq: int | None = None

    def for_business(self, pack_size: float = 0) -> dict[str, object]:
        """What the buyers on the Business hub see: what to buy, from whom, how many of the material's
        packs (``pack_size``; the quantity is whole packs), for which station; not the ledger's place
        of the station's signal (Business has no ledger to look it up in)."""
        body = self.model_dump(mode="json", include=_FOR_BUSINESS)
        if pack_size > 0:
            body["pack_size"] = pack_size
            body["packs"] = max(1, round(self.quantity / pack_size))
        return body
