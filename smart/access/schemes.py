"""Certification schemes (NAS410, EN4179) and courses, loaded from data and applied to records.

A scheme is data: its levels in order, its methods, the exams a certification
must rest on, and the currency rules that keep it valid (recertification,
annual near-vision, colour vision, lapse after a year without performing).
Derivation is one generic walk over those rules, so a new standard or a new
revision is a new YAML file, never a new branch in code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BeforeValidator, ConfigDict, TypeAdapter, ValidationError

from smart import intervals
from smart.access.credential import Kind

DATA = Path(__file__).parent / "data"
_STRICT = ConfigDict(extra="forbid")


class SchemeError(ValueError):
    """A scheme or course file that does not say what it must; the message names file and field."""


def _period(value: Any) -> Any:
    """A scheme's period as its YAML writes it (``{years: 5}``, ``{months: 12}``, ``{days: 30}``).

    Read into the shop's one :class:`smart.intervals.Interval`, so schemes and contracts count
    alike: years and months add up to calendar months; calendar days stand alone.
    """
    if not isinstance(value, Mapping):
        return value
    unknown = sorted(set(value) - {"years", "months", "days"})
    if unknown:
        raise ValueError(f"a period is {{years: N}}, {{months: N}} or {{days: N}}; not {unknown}")
    counts = {key: value.get(key, 0) for key in ("years", "months", "days")}
    if not all(isinstance(n, int) and n >= 0 for n in counts.values()):
        raise ValueError(f"a period counts whole units, not {dict(value)}")
    years, months, days = counts["years"], counts["months"], counts["days"]
    if (years or months) and days:
        raise ValueError(f"a period counts calendar months or calendar days, not both: {dict(value)}")
    if years and not months:
        return intervals.Interval(years, "year")
    if months or years:
        return intervals.Interval(years * 12 + months, "month")
    return intervals.Interval(days, "day")  # 0 days: Interval refuses it by name


#: A period in a scheme or course file, e.g. ``every: {months: 12}``.
Period = Annotated[intervals.Interval, BeforeValidator(_period)]


@dataclass(frozen=True, slots=True)
class Level:
    __pydantic_config__ = _STRICT
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class ExamRule:
    __pydantic_config__ = _STRICT
    exam: str
    min_score: float
    levels: tuple[str, ...]
    min_samples: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CertificationRule:
    __pydantic_config__ = _STRICT
    exams: tuple[ExamRule, ...]
    exams_within: Period


@dataclass(frozen=True, slots=True)
class CurrencyRule:
    """Something that must have happened recently enough: the latest matching record + ``every``."""

    __pydantic_config__ = _STRICT
    name: str
    records: tuple[str, ...]
    every: Period
    ends_as: str
    same_method: bool = False
    test: str | None = None
    accepted_tests: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Scheme:
    __pydantic_config__ = _STRICT
    scheme: str
    revision: str
    effective: date
    levels: tuple[Level, ...]
    methods: tuple[str, ...]
    certification: CertificationRule
    currency: tuple[CurrencyRule, ...]
    sources: tuple[str, ...] = ()

    def rank(self, level: str) -> int:
        """Position of ``level`` (trainee lowest); raises naming the scheme and the level."""
        for index, known in enumerate(self.levels):
            if known.code == level:
                return index
        raise SchemeError(
            f"{self.scheme}: unknown level {level!r}; levels are {[lv.code for lv in self.levels]}"
        )

    def level_name(self, level: str) -> str:
        return self.levels[self.rank(level)].name


@dataclass(frozen=True, slots=True)
class Course:
    __pydantic_config__ = _STRICT
    course: str
    kind: Kind
    title: str
    valid_for: Period
    scope: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Courses:
    __pydantic_config__ = _STRICT
    courses: tuple[Course, ...]


def load_yaml(path: Path, shape: type[Any]) -> Any:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise SchemeError(f"cannot read {path}: {err}") from err
    try:
        return TypeAdapter(shape).validate_python(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SchemeError(f"{path}: {where}: {first['msg']}") from err


def load_scheme(path: Path) -> Scheme:
    scheme: Scheme = load_yaml(path, Scheme)
    for rule in scheme.certification.exams:
        for level in (*rule.levels, *rule.min_samples):
            scheme.rank(level)
    for currency in scheme.currency:
        if currency.ends_as not in ("expired", "suspended", "lapsed"):
            raise SchemeError(
                f"{path}: currency {currency.name!r}: ends_as must be expired, suspended or lapsed"
            )
    return scheme


def load_courses(path: Path) -> dict[str, Course]:
    courses: _Courses = load_yaml(path, _Courses)
    for course in courses.courses:
        if course.kind not in (Kind.TRAINING, Kind.SAFETY):
            raise SchemeError(
                f"{path}: course {course.course!r} grants {course.kind}, not training or safety"
            )
    return {course.course: course for course in courses.courses}


@cache
def shop_schemes() -> dict[str, Scheme]:
    """The schemes shipped with SMART, by name (``NAS410``, ``EN4179``)."""
    schemes = [load_scheme(DATA / name) for name in ("nas410.yaml", "en4179.yaml")]
    return {scheme.scheme: scheme for scheme in schemes}


@cache
def shop_courses() -> dict[str, Course]:
    return load_courses(DATA / "education.yaml")
