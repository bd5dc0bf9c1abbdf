"""MaintenanceHub's models at its edges (HTTP, CLI, import rows): what may be entered, and what is shown.

Each check names the field it refuses (``furnace_class``, ``next_due``,
``qualified_ranges[0].unit``) so the API answers 422 with that path and an
import row names its column.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from smart.contracts import units

Instrumentation = Literal["A", "B", "C", "D", "D+", "E"]
FurnaceClass = Literal["1", "2", "3", "4", "5", "6"]
Metal = Literal["base", "noble"]
SurveyKind = Literal["TUS", "SAT"]
Disposition = Literal["no-impact", "re-inspect", "customer-notified", "ncr-opened"]
ASSET_ID = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class RangeIn(_In):
    """A temperature range a furnace is qualified for (a vacuum furnace may hold several)."""

    id: str = Field(default="", max_length=40)
    min: float
    max: float
    unit: str = Field(min_length=1, description="°C or °F")

    @field_validator("unit")
    @classmethod
    def _temperature(cls, unit: str) -> str:
        try:
            units.conversion(unit, "°C")
        except units.UnitError as err:
            raise ValueError(f"unknown temperature unit {unit!r} (expected °C or °F)") from err
        return unit

    @model_validator(mode="after")
    def _ordered(self) -> RangeIn:
        if self.max <= self.min:
            raise ValueError(f"max {self.max:g} must be above min {self.min:g}")
        return self


class UsageLimitIn(_In):
    """Upkeep due by use: a lamp's bulb every 1500 hours, a door seal every 400 cycles."""

    task: str = Field(min_length=1, max_length=60, pattern=r"^[a-z0-9][a-z0-9-]*$")
    unit: Literal["cycles", "hours"]
    every: float = Field(gt=0)
    due_within: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _margin(self) -> UsageLimitIn:
        if self.due_within >= self.every:
            raise ValueError(f"due_within {self.due_within:g} must be below every {self.every:g}")
        return self


class EquipmentIn(_In):
    """One asset of the register; furnaces and thermocouples carry what AMS2750 judges them by."""

    asset_id: str = Field(pattern=ASSET_ID)
    kind: str = Field(min_length=1, max_length=60, pattern=r"^[a-z0-9][a-z0-9-]*$")
    station: str = Field(min_length=1, max_length=40)
    serial: str = Field(min_length=1, max_length=80)
    description: str = Field(default="", max_length=200)
    furnace_class: FurnaceClass | None = Field(default=None, description="AMS2750 furnace class 1–6")
    instrumentation: Instrumentation | None = None
    furnace_type: str | None = Field(default=None, max_length=40, description="e.g. vacuum, air")
    thermocouple_metal: Metal | None = None
    grade: str | None = Field(default=None, max_length=40, description="e.g. special-limits")
    attributes: dict[str, str] = Field(
        default_factory=dict, description="Further attributes the contracts read, e.g. finish: grit-blasted."
    )
    qualified_ranges: tuple[RangeIn, ...] = ()
    usage_limits: tuple[UsageLimitIn, ...] = ()

    @field_validator("attributes")
    @classmethod
    def _own_names(cls, value: dict[str, str]) -> dict[str, str]:
        taken = sorted(set(value) & {"class", "instrumentation", "type", "grade", "metal", "serial"})
        if taken:
            raise ValueError(f"{', '.join(taken)} have fields of their own")
        return value

    @field_validator("furnace_class", mode="before")
    @classmethod
    def _class_text(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and value.strip() not in {"1", "2", "3", "4", "5", "6"}:
            raise ValueError(f"furnace class {value!r} is outside 1–6")
        return value

    @model_validator(mode="after")
    def _by_kind(self) -> EquipmentIn:
        if self.kind == "furnace":
            missing = [n for n in ("furnace_class", "instrumentation") if getattr(self, n) is None]
            if missing:
                raise ValueError(f"a furnace needs {' and '.join(missing)}")
            if not self.qualified_ranges:
                raise ValueError("a furnace needs at least one qualified range")
        elif self.furnace_class is not None or self.instrumentation is not None or self.qualified_ranges:
            raise ValueError(f"furnace class, instrumentation and ranges are for furnaces, not {self.kind}")
        if self.kind.startswith("thermocouple"):
            if self.thermocouple_metal is None:
                raise ValueError("a thermocouple needs thermocouple_metal (base or noble)")
            wanted = f"thermocouple-{self.thermocouple_metal}-metal"
            if self.kind not in ("thermocouple", wanted):
                raise ValueError(f"kind {self.kind} contradicts thermocouple_metal {self.thermocouple_metal}")
        elif self.thermocouple_metal is not None:
            raise ValueError(f"thermocouple_metal is for thermocouples, not {self.kind}")
        return self

    @property
    def station_kind(self) -> str:
        """The kind the contracts' rules name (``thermocouple-base-metal``)."""
        if self.kind == "thermocouple" and self.thermocouple_metal is not None:
            return f"thermocouple-{self.thermocouple_metal}-metal"
        return self.kind


class CertificateIn(_In):
    """The calibration certificate's file (PDF or image), kept with the calibration."""

    name: str = Field(min_length=1, max_length=200)
    content_type: str = Field(default="application/pdf", max_length=100)
    data_base64: str = Field(min_length=4, max_length=14_000_000)


class CalibrationIn(_In):
    """A calibration as its certificate states it; ``next_due`` only if the certificate gives a sooner one."""

    calibrated_at: datetime
    lab: str = Field(min_length=1, max_length=120)
    certificate_number: str = Field(min_length=1, max_length=80)
    traceability: str = Field(min_length=1, max_length=200, description="e.g. NIST, PTB, NPL report no.")
    as_found: str = Field(default="", max_length=400)
    as_left: str = Field(default="", max_length=400)
    in_tolerance: bool
    next_due: date | None = None
    certificate: CertificateIn | None = None

    @field_validator("calibrated_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give the time zone (e.g. 2026-12-01T09:00:00+00:00)")
        return value

    @model_validator(mode="after")
    def _due_after(self) -> CalibrationIn:
        if self.next_due is not None and self.next_due <= self.calibrated_at.date():
            raise ValueError(
                f"next_due {self.next_due} is not after the calibration date {self.calibrated_at.date()}"
            )
        return self


class SurveyIn(_In):
    survey: SurveyKind
    surveyed_at: datetime
    passed: bool
    range_id: str | None = Field(default=None, max_length=40)
    report: str = Field(default="", max_length=200)

    @field_validator("surveyed_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give the time zone")
        return value


class OrderIn(_In):
    task: str = Field(min_length=1, max_length=60)
    reason: str = Field(default="", max_length=400)


class SignedIn(_In):
    """What a person signs with: their SMART-ID credential (the signed token their badge carries)."""

    credential: str = Field(min_length=20, max_length=8000, description="compact JWS from SMART-ID")
    notes: str = Field(default="", max_length=1000)


class DispositionIn(SignedIn):
    disposition: Disposition


class CalibrationView(_View):
    id: int
    asset_id: str
    calibrated_at: datetime
    lab: str
    certificate_number: str
    traceability: str
    as_found: str
    as_left: str
    in_tolerance: bool
    next_due: date
    certificate_name: str | None
    certificate_sha256: str | None
    recorded_by: str


class SurveyView(_View):
    id: int
    asset_id: str
    survey: SurveyKind
    range_id: str | None
    surveyed_at: datetime
    passed: bool
    next_due: date
    recorded_by: str


class OrderView(_View):
    id: int
    asset_id: str
    task: str
    reason: str
    opened_by: str
    opened_at: datetime
    done_at: datetime | None
    done_by: str | None
    credential_id: str | None


class EquipmentView(_View):
    asset_id: str
    kind: str
    station: str
    serial: str
    description: str
    furnace_class: str | None
    instrumentation: str | None
    furnace_type: str | None
    thermocouple_metal: str | None
    grade: str | None
    attributes: dict[str, str]
    qualified_ranges: tuple[RangeIn, ...]
    usage_limits: tuple[UsageLimitIn, ...]
    calibration_due: date | None
    tus_due: date | None
    sat_due: date | None
    version: int
    published_version: int
    blocked: bool = Field(description="last calibration out of tolerance: refused at its station")


class DueItem(_View):
    asset_id: str
    kind: str
    station: str
    what: Literal["calibration", "TUS", "SAT"]
    due: date
    overdue: bool


class ReviewView(_View):
    id: int
    calibration_id: int
    asset_id: str
    job: str
    station: str
    first_use: datetime
    last_use: datetime
    opened_at: datetime
    disposition: str | None
    by_badge: str | None
    notes: str | None


class RecallView(_View):
    """What an out-of-tolerance calibration set off: the jobs to review, since when."""

    calibration_id: int
    asset_id: str
    found_at: datetime
    since: datetime | None
    reviews: tuple[ReviewView, ...]
