"""Numeric bands that tile: each value of a reading belongs to exactly one band of a rule.

A band states each edge as closed or open (``atLeast`` / ``above`` below it,
``atMost`` / ``below`` above it), so that 40–60 °F and 60–100 °F cannot both
claim 60 °F, and 59.995 °F cannot fall between ``max: 59.99`` and
``min: 60``. :func:`tiling_problems` refuses a rule whose bands leave a gap
or overlap, naming both bands by their field paths; the contract is then
refused by ``smart contract validate`` and by the reconcile core alike.
Readings are converted to the rule's unit before they are placed
(:func:`judging.scaler`).
"""

from __future__ import annotations

import math

from pydantic import ConfigDict, Field, model_validator

from smart.contracts.families import vocabulary

_EDGES_CEL = [
    {
        "rule": "!(has(self.atLeast) && has(self.above))",
        "message": "a band has one lower edge: atLeast or above",
    },
    {
        "rule": "!(has(self.atMost) && has(self.below))",
        "message": "a band has one upper edge: atMost or below",
    },
]


class Band(vocabulary.Model):
    """A numeric band; an edge left out is unbounded on that side."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!(has(self.atLeast) && has(self.above))",
                    "message": "a band has one lower edge: atLeast or above",
                },
                {
                    "rule": "!(has(self.atMost) && has(self.below))",
                    "message": "a band has one upper edge: atMost or below",
                },
            ]
        }
    )

    at_least: float | None = Field(default=None, description="Lower edge, in the band (closed).")
    above: float | None = Field(default=None, description="Lower edge, not in the band (open).")
    at_most: float | None = Field(default=None, description="Upper edge, in the band (closed).")
    below: float | None = Field(default=None, description="Upper edge, not in the band (open).")

    @model_validator(mode="after")
    def _edges(self) -> Band:
        if self.at_least is not None and self.above is not None:
            raise ValueError("a band has one lower edge: atLeast or above, not both")
        if self.at_most is not None and self.below is not None:
            raise ValueError("a band has one upper edge: atMost or below, not both")
        (low, low_closed), (high, high_closed) = self.lower, self.upper
        if low > high or (low == high and not (low_closed and high_closed)):
            raise ValueError(
                f"band {self.words()} holds no value: its lower edge must be below its upper edge"
            )
        return self

    @property
    def lower(self) -> tuple[float, bool]:
        """(value, closed) of the lower edge; -inf when unbounded."""
        if self.at_least is not None:
            return self.at_least, True
        return (self.above, False) if self.above is not None else (-math.inf, False)

    @property
    def upper(self) -> tuple[float, bool]:
        """(value, closed) of the upper edge; +inf when unbounded."""
        if self.at_most is not None:
            return self.at_most, True
        return (self.below, False) if self.below is not None else (math.inf, False)

    @property
    def min(self) -> float:
        """The lower edge's value (for words on a kiosk; whether it is in the band is :attr:`lower`)."""
        return self.lower[0]

    @property
    def max(self) -> float:
        return self.upper[0]

    def contains(self, value: float) -> bool:
        (low, low_closed), (high, high_closed) = self.lower, self.upper
        return (low < value or (low_closed and low == value)) and (
            value < high or (high_closed and value == high)
        )

    def words(self, unit: str = "") -> str:
        """``40 ≤ x < 60 °F``: the band as a Level 3 would write it."""
        (low, low_closed), (high, high_closed) = self.lower, self.upper
        left = f"{low:g} {'≤' if low_closed else '<'} " if low != -math.inf else ""
        right = f" {'≤' if high_closed else '<'} {high:g}" if high != math.inf else ""
        return f"{left}x{right}" + (f" {unit}" if unit else "")


def tiling_problems(bands: list[Band], path: str, unit: str = "") -> list[tuple[str, str]]:
    """Gaps and overlaps between ``bands`` (at ``path``, e.g. ``spec.rules[12].bands``), as (path, message).

    Bands are taken in the order of their lower edges; each must begin exactly where the bands
    before it reach, with that edge in exactly one of the two.
    """
    order = sorted(range(len(bands)), key=lambda i: (bands[i].lower[0], not bands[i].lower[1]))
    found: list[tuple[str, str]] = []
    suffix = f" {unit}" if unit else ""
    reach = order[0] if order else 0  # the band reaching highest so far
    for b in order[1:]:
        first, second = bands[reach], bands[b]
        (high, high_closed), (low, low_closed) = first.upper, second.lower
        names = f"{path}[{reach}] ({first.words(unit)}) and {path}[{b}] ({second.words(unit)})"
        if high < low or (high == low and not high_closed and not low_closed):
            between = f"{high:g}" if high == low else f"{high:g} … {low:g}"
            found.append((f"{path}[{b}]", f"{names} leave a gap: {between}{suffix} is in no band"))
        elif high > low or (high == low and high_closed and low_closed):
            top = min(high, second.upper[0])
            at = f"{low:g}" if top == low else f"{low:g} … {top:g}"
            found.append((f"{path}[{b}]", f"{names} overlap: {at}{suffix} is in both"))
        upper, current = second.upper, first.upper
        if upper[0] > current[0] or (upper[0] == current[0] and upper[1] and not current[1]):
            reach = b
    return found
