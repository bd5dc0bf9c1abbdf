"""TUS and SAT current by class × instrumentation, per furnace type and range (AMS2750, rules 22, 26)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from smart import intervals
from smart.contracts import facts as f
from smart.contracts.families import furnace_class, judging, vocabulary


class SurveyInterval(vocabulary.Model):
    classes: list[str] = Field(min_length=1, description="Furnace classes, e.g. ['1', '2'].")
    instrumentation: list[Literal["A", "B", "C", "D", "D+", "E"]] = Field(
        min_length=1, description="Instrumentation types."
    )
    every: vocabulary.IntervalText


class SurveyRule(vocabulary.RuleBase):
    """The furnace's last TUS or SAT is within its interval by class × instrumentation (rule 22).

    A rule is about one survey (TUS or SAT); ``furnaceTypes`` limits it to furnaces of some types
    (e.g. vacuum) and ``perQualifiedRange`` asks for a survey in each range the furnace is
    qualified for (rule 26: vacuum furnaces, a SAT in each qualified range at least yearly).
    """

    kind: Literal["survey"] = "survey"
    module: ClassVar[str] = "maintenance"

    survey: Literal["TUS", "SAT"]
    intervals: list[SurveyInterval] = Field(min_length=1, description="The standard's table, as rows.")
    furnace_types: list[vocabulary.Name] = Field(
        default_factory=list,
        description="Applies only to furnaces whose 'type' attribute is one of these (e.g. vacuum); "
        "empty: every furnace. A furnace with no type on record is refused.",
    )
    per_qualified_range: bool = Field(
        default=False, description="A survey is due in each qualified range of the furnace, not once."
    )


def compile_rule(rule: SurveyRule, ctx: judging.Context) -> judging.Check:
    fail = judging.failer(rule)
    survey, zone = rule.survey, ctx.zone
    types, per_range = frozenset(rule.furnace_types), rule.per_qualified_range
    table: dict[tuple[str, str], intervals.Interval] = {
        (cls, instr): intervals.parse(row.every)
        for row in rule.intervals
        for cls in row.classes
        for instr in row.instrumentation
    }

    def check(event: f.Event, facts: f.Facts) -> judging.Reason | None:
        for furnace in furnace_class.furnaces_in_use(event, facts):
            if types:
                kind = furnace.attributes.get("type")
                if kind is None:
                    return fail(
                        judging.unknown(f"furnace type of {furnace.id}", f"{survey} rule"),
                        furnace=furnace.id,
                        attribute="type",
                    )
                if kind not in types:
                    continue
            cls = furnace.attributes.get("class", "")
            instr = furnace.attributes.get("instrumentation", "")
            every = table.get((cls, instr))
            if every is None:
                return fail(
                    f"no {survey} interval for class {cls} type {instr}",
                    furnace=furnace.id,
                    furnace_class=cls,
                    instrumentation=instr,
                )
            if per_range:
                ranges = furnace.ranges()
                if not ranges:
                    return fail(f"{furnace.id} has no qualified range on record", furnace=furnace.id)
                range_ids: tuple[str | None, ...] = tuple(r.id for r in ranges)
            else:
                range_ids = (None,)
            for range_id in range_ids:
                last = furnace.surveyed_by(survey, event.at, range_id)
                if last is None or not intervals.current(last.at, every, event.at, zone):
                    where = f" in range {range_id}" if range_id else ""
                    return fail(
                        f"{furnace.id} {survey}{where} overdue (class {cls} type {instr}: every {every})",
                        furnace=furnace.id,
                        last=last.at if last is not None else None,
                        every=str(every),
                        **({"range": range_id} if range_id is not None else {}),
                    )
        return None

    return check


def problems(rule: SurveyRule, where: str) -> list[tuple[str, str]]:
    """The table's rows tile the class × instrumentation grid they name: each cell in exactly one row.

    Two rows giving the same cell would leave the interval to the order of the rows; a cell no row
    gives (a class and a type both named in the table) would refuse that furnace at the station
    with no word at validation.
    """
    found: list[tuple[str, str]] = []
    owner: dict[tuple[str, str], int] = {}
    for i, row in enumerate(rule.intervals):
        for cls in row.classes:
            for instr in row.instrumentation:
                first = owner.setdefault((cls, instr), i)
                if first != i:
                    found.append(
                        (
                            f"{where}.intervals[{i}]",
                            f"{where}.intervals[{first}] ({rule.intervals[first].every}) and "
                            f"{where}.intervals[{i}] ({row.every}) overlap: "
                            f"both give class {cls} type {instr}",
                        )
                    )
    classes = sorted({c for row in rule.intervals for c in row.classes})
    types = sorted({t for row in rule.intervals for t in row.instrumentation})
    missing = [f"class {c} type {t}" for c in classes for t in types if (c, t) not in owner]
    if missing:
        found.append(
            (f"{where}.intervals", f"the {rule.survey} table leaves a gap: no row gives {', '.join(missing)}")
        )
    return found


FAMILY = judging.Family(SurveyRule, compile_rule, problems=problems)
