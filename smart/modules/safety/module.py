"""Safety: PPE seen and prohibited items absent, and the e-stop.

- ``ppe``: the event's PPE (from the vision module or the operator) judged by
  the contract's PPE rules (rule 20: no tinted lenses under UV-A).
- ``estop``: body ``pressed`` true or false. While the e-stop is pressed
  every Safety decision is a deny naming it; the interlock stays open.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smart.modules import framework, rulebound


class SafetyModule(rulebound.RuleBoundModule):
    name = "safety"

    def __init__(self, station: framework.StationContext, manifest: framework.ModuleManifest) -> None:
        super().__init__(station, manifest)
        self.estop_pressed = False

    async def before(self, event: framework.ModuleEvent) -> Mapping[str, Any] | framework.ModuleDecision:
        if event.verb == "estop":
            self.estop_pressed = bool(event.body.get("pressed", True))
        if self.estop_pressed:
            return rulebound.refusal(
                self.name,
                "estop",
                f"e-stop pressed at {self.station.station}: nothing runs until it is reset",
            )
        return {"estop": False} if event.verb == "estop" else {}
