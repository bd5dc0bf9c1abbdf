"""Units a contract may state its limits in, and the arithmetic to compare readings across them.

A lamp meter may read in µW/cm² while a contract states W/m²; a furnace
recorder may read in °F while the job card says °C. Every known unit belongs
to one dimension and converts linearly (``base = value * scale + offset``) to
that dimension's base unit, so a reading in any unit of the same dimension is
compared with a limit without loss of meaning. A unit not listed here is an
error in the contract, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Unit:
    symbol: str
    dimension: str
    scale: float
    offset: float = 0.0


_UNITS: tuple[Unit, ...] = (
    Unit("µW/cm²", "irradiance", 1.0),
    Unit("uW/cm2", "irradiance", 1.0),
    Unit("W/m²", "irradiance", 100.0),
    Unit("lx", "illuminance", 1.0),
    Unit("fc", "illuminance", 10.76391),
    Unit("°C", "temperature", 1.0),
    Unit("°F", "temperature", 5.0 / 9.0, -160.0 / 9.0),
    Unit("Δ°C", "temperature-difference", 1.0),
    Unit("Δ°F", "temperature-difference", 5.0 / 9.0),
    Unit("mm", "length", 1.0),
    Unit("cm", "length", 10.0),
    Unit("in", "length", 25.4),
    Unit("m", "length", 1000.0),
    Unit("s", "time", 1.0),
    Unit("min", "time", 60.0),
    Unit("h", "time", 3600.0),
    Unit("mL/100mL", "concentration", 1.0),
    Unit("%", "fraction", 1.0),
    Unit("g", "mass", 1.0),
    Unit("kg", "mass", 1000.0),
    Unit("lb", "mass", 453.59237),
    Unit("A", "current", 1.0),
    Unit("G", "magnetic-flux-density", 1.0),
    Unit("mT", "magnetic-flux-density", 10.0),
    Unit("count", "count", 1.0),
)

UNITS: dict[str, Unit] = {unit.symbol: unit for unit in _UNITS}

#: The symbols a contract may use, in a stable order (the CRD's CEL rule lists them).
KNOWN_UNITS: tuple[str, ...] = tuple(unit.symbol for unit in _UNITS)


class UnitError(ValueError):
    """A unit is unknown, or two units measure different things."""


def conversion(source: str, target: str) -> tuple[float, float]:
    """``(scale, offset)`` so that ``value_in_target = value_in_source * scale + offset``."""
    try:
        src, dst = UNITS[source], UNITS[target]
    except KeyError as err:
        raise UnitError(f"unknown unit {err.args[0]!r}; expected one of {', '.join(KNOWN_UNITS)}") from err
    if src.dimension != dst.dimension:
        raise UnitError(f"cannot compare {source} ({src.dimension}) with {target} ({dst.dimension})")
    scale = src.scale / dst.scale
    offset = (src.offset - dst.offset) / dst.scale
    return scale, offset


def convert(value: float, source: str, target: str) -> float:
    if source == target:
        return value
    scale, offset = conversion(source, target)
    return value * scale + offset
