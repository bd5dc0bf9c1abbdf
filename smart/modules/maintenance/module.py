"""Maintenance: equipment checks, calibrations and furnace surveys, judged when they are used.

- ``check``: a daily or shift check done now (body ``check``, ``passed``,
  ``equipment``, ``readings`` or the event's readings). The check is judged
  first (the meter used must itself be calibrated: the event names it), then
  written to the station's records and the ledger; a check taken with
  equipment the contract refuses is written as failed, so the line stays
  locked until a rerun passes (rule 12).
- ``calibration``: a calibration of ``equipment`` with ``inTolerance``,
  written to that equipment's record, then judged (an out-of-tolerance find
  is refused, rule 27). An out-of-tolerance find also lists, for impact
  review, every job the equipment served since its last good calibration
  (``maintenance.recall`` on the ledger, ``recall`` in the effects).
- ``use``: the equipment in the event may be used now (checks current,
  calibrations and surveys not overdue).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from smart.contracts import facts as f
from smart.modules import framework, rulebound

_READINGS = TypeAdapter(dict[str, f.Reading])


class MaintenanceModule(rulebound.RuleBoundModule):
    name = "maintenance"

    async def handle(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        if event.verb == "check":
            return self._check(event)
        return await super().handle(event)

    def _check(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        body, happened = event.body, event.event
        name = body.get("check")
        if not isinstance(name, str) or not name:
            return rulebound.refusal(self.name, "check.name", "a check names which check it is (body.check)")
        try:
            readings = (
                _READINGS.validate_python(body["readings"]) if "readings" in body else happened.readings
            )
        except ValidationError as err:
            return rulebound.refusal(self.name, "check.readings", f"readings of {name}: {err}", check=name)
        decision = self.judge(event)
        equipment = body.get("equipment") or (happened.equipment[0] if happened.equipment else None)
        passed = bool(body.get("passed", True)) and decision.allowed
        record = f.CheckRecord(
            check=name, at=happened.at, passed=passed, equipment=equipment, readings=dict(readings)
        )
        keeper = rulebound.keeper(self.station)
        actor = happened.person or self.station.station
        if keeper is not None:
            keeper.keep("check", record, actor=actor)
        else:
            self.station.record(
                kind="maintenance.check", subject=name, data={"check": name, "passed": passed}, actor=actor
            )
        return framework.ModuleDecision(
            module=self.name,
            outcome=decision.outcome,
            reasons=decision.reasons,
            revisions=decision.revisions,
            effects={"check": name, "passed": passed},
        )

    async def before(self, event: framework.ModuleEvent) -> Mapping[str, Any] | framework.ModuleDecision:
        if event.verb != "calibration":
            return {}
        equipment_id = event.body.get("equipment")
        keeper = rulebound.keeper(self.station)
        held = keeper.held("equipment", str(equipment_id)) if keeper is not None else None
        if keeper is None or not isinstance(held, f.EquipmentRecord):
            return rulebound.refusal(
                self.name, "calibration.equipment", f"no equipment {equipment_id!r} at this station"
            )
        in_tolerance = bool(event.body.get("inTolerance", True))
        calibration = f.Calibration(at=event.event.at, in_tolerance=in_tolerance)
        actor = event.event.person or self.station.station
        keeper.keep("equipment", dataclasses.replace(held, calibration=calibration), actor=actor)
        effects: dict[str, Any] = {"equipment": held.id, "inTolerance": in_tolerance}
        if not in_tolerance and isinstance(self.station, rulebound.RecallsJobs):
            good = (
                held.calibration if held.calibration is not None and held.calibration.in_tolerance else None
            )
            recall = self.station.jobs_served_by(held.id, since=good.at if good else None)
            effects["recall"] = recall
            self.station.record(
                kind="maintenance.recall",
                subject=held.id,
                data={
                    "equipment": held.id,
                    "foundAt": event.event.at.isoformat(),
                    "since": good.at.isoformat() if good else None,
                    "jobs": recall,
                },
                actor=actor,
            )
        return effects
