"""Inventory: consumables from known lots, in date and within their opened shelf life.

- ``use``: the event's lots judged by the contract's lot rules.
- ``lot``: body ``lot`` opened now (the first opening is kept), written to
  the station's records, then judged like ``use``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from smart.contracts import facts as f
from smart.modules import framework, rulebound


class InventoryModule(rulebound.RuleBoundModule):
    name = "inventory"

    async def before(self, event: framework.ModuleEvent) -> Mapping[str, Any] | framework.ModuleDecision:
        if event.verb != "lot":
            return {}
        lot_id = str(event.body.get("lot") or "")
        keeper = rulebound.keeper(self.station)
        held = keeper.held("lot", lot_id) if keeper is not None else None
        if keeper is None or not isinstance(held, f.Lot):
            return rulebound.refusal(
                self.name, "lot.unknown", f"lot {lot_id!r} is not known here", lot=lot_id
            )
        if held.opened is None:
            actor = event.event.person or self.station.station
            keeper.keep("lot", dataclasses.replace(held, opened=event.event.at), actor=actor)
        return {"lot": lot_id, "opened": (held.opened or event.event.at).isoformat()}
