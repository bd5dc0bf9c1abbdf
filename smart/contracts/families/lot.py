"""Material from a known lot within its shelf life (rule 17, consumables)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from smart import intervals
from smart.contracts import facts as f
from smart.contracts.families import judging, vocabulary


class LotRule(vocabulary.RuleBase):
    """A material in use comes from a known lot within its shelf life (rules 17, consumables)."""

    kind: Literal["lot"] = "lot"
    module: ClassVar[str] = "inventory"

    material: vocabulary.Name = Field(description="Material, e.g. penetrant, developer, magnetic-particles.")
    lot_required: bool = Field(default=True, description="The event must name a lot of this material.")
    opened_shelf_life: vocabulary.IntervalText | None = Field(
        default=None, description="Usable this long after opening."
    )


def compile_rule(rule: LotRule, ctx: judging.Context) -> judging.Check:
    fail = judging.failer(rule)
    material, required, zone = rule.material, rule.lot_required, ctx.zone
    shelf = intervals.parse(rule.opened_shelf_life) if rule.opened_shelf_life else None

    def check(event: f.Event, facts: f.Facts) -> judging.Reason | None:
        used = False
        for lot_id in event.lots:
            lot = facts.lots.get(lot_id)
            if lot is None:
                return fail(f"lot {lot_id} is unknown", lot=lot_id)
            if lot.material != material:
                continue
            used = True
            if event.at >= lot.expires:
                return fail(
                    f"{material} lot {lot.id} expired {lot.expires.date()}", lot=lot.id, expires=lot.expires
                )
            if (
                shelf is not None
                and lot.opened is not None
                and not intervals.current(lot.opened, shelf, event.at, zone)
            ):
                return fail(
                    f"{material} lot {lot.id} opened more than {shelf} ago", lot=lot.id, opened=lot.opened
                )
        if required and not used:
            return fail(f"no {material} lot recorded", material=material)
        return None

    return check


FAMILY = judging.Family(LotRule, compile_rule)
