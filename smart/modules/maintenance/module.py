"""Maintenance: equipment checks, calibrations and furnace surveys, judged when they are used.

- ``check``: a daily or shift check done now (body ``check``, ``passed``,
  ``equipment``, ``readings`` or the event's readings). The check is judged
  first (the meter used must itself be calibrated: the event names it), then
  written to the station's records and the ledger; a check taken with
  equipment the contract refuses is written as failed, so the line stays
  locked until a rerun passes (rule 12). So is a check whose readings fail
  the limits of the contract's measurement rules that read that check (UV-A
  940 µW/cm² against ≥ 1000), whatever button was pressed: a check recorded
  as passed has passed (:meth:`MaintenanceModule._limits_failed`).
- ``calibration``: a calibration of ``equipment`` with ``inTolerance``,
  written to that equipment's record, then judged (an out-of-tolerance find
  is refused, rule 27). An out-of-tolerance find also lists, for impact
  review, every job the equipment served since its last good calibration
  (``maintenance.recall`` on the ledger, ``recall`` in the effects).
- ``use``: the equipment in the event may be used now (checks current,
  calibrations and surveys not overdue, and no usage counter overdue).
- ``count``: the equipment (body ``equipment`` or the event's) was used: each
  of its ``cycles`` counters counts one, each ``hours`` counter the body's
  ``hours`` (an hour meter's reading since the last count). The job machine
  asks it once the gate has allowed, so a refused start counts nothing.
- ``service``: body ``equipment`` and ``task`` were serviced now by the
  event's person: the counter starts again from zero (its lifetime total
  stays), the record names who did it and when, and ``maintenance.serviced``
  on the ledger says so with the count it was reset from.

**Usage counters.** Thresholds come from the equipment record
(``usage_limits``: task, ``cycles`` or ``hours``, ``every``, ``due_within``),
which the hub's maintenance schedule owns, because they belong to the
machine (this lamp's bulb, that furnace's door seal), not to a customer's
contract. The counts are kept in the station's records (kind ``usage``,
SQLite beside the ledger, each change also on the ledger as
``record.usage``), so they survive a restart and need no hub. At ``use`` a
counter at or past its threshold denies (``maintenance.usage-overdue``,
naming equipment, task, count and threshold) whatever the contract's
enforcement mode, and one within its margin warns
(``maintenance.usage-due``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import structlog
from pydantic import TypeAdapter, ValidationError

from smart.contracts import engine
from smart.contracts import facts as f
from smart.contracts import rules as contract_rules
from smart.contracts.families import judging
from smart.modules import framework, rulebound
from smart.modules.maintenance import usage

log = structlog.get_logger("smart.modules.maintenance")

_READINGS = TypeAdapter(dict[str, f.Reading])
_RULE: TypeAdapter[Any] = TypeAdapter(contract_rules.Rule)


class MaintenanceModule(rulebound.RuleBoundModule):
    name = "maintenance"

    async def handle(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        if event.verb == "check":
            return await self._check(event)
        if event.verb == "count":
            return await self._count(event)
        if event.verb == "service":
            return await self._service(event)
        decision = await super().handle(event)
        return await self._with_counters(event, decision) if event.verb == "use" else decision

    # -- usage counters ----------------------------------------------------------------------

    async def _counters(self, equipment: f.EquipmentRecord) -> list[usage.Counter]:
        """The equipment's counters now: its limits with the counts the station keeps (zero if none)."""
        found = []
        for limit in equipment.usage_limits:
            held = await self.station.held("usage", f.usage_key(equipment.id, limit.task))
            kept = (
                held
                if isinstance(held, f.UsageCount)
                else f.UsageCount(
                    id=f.usage_key(equipment.id, limit.task), equipment=equipment.id, task=limit.task
                )
            )
            found.append(
                usage.Counter(
                    equipment.id,
                    limit.task,
                    limit.unit,
                    service_every=limit.every,
                    due_within=limit.due_within,
                    since_service=kept.since_service,
                    total=kept.total,
                    last_service_at=kept.last_service_at,
                )
            )
        return found

    async def _used_equipment(self, event: framework.ModuleEvent) -> list[f.EquipmentRecord] | str:
        """The equipment records a count or use names, or what is wrong with the request."""
        raw = event.body.get("equipment", list(event.event.equipment))
        names = [raw] if isinstance(raw, str) else raw
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            return "body.equipment: expected an equipment id or a list of them"
        known = (await self.station.facts()).equipment
        unknown = [n for n in names if n not in known]
        if unknown:
            return f"no equipment {', '.join(unknown)} at {self.station.station}"
        return [known[n] for n in names]

    async def _with_counters(
        self, event: framework.ModuleEvent, decision: framework.ModuleDecision
    ) -> framework.ModuleDecision:
        """The ``use`` decision with every counter of the event's equipment: overdue denies, due warns."""
        known = (await self.station.facts()).equipment
        reasons = list(decision.reasons)
        shown = []
        try:
            counters = [
                c for e in event.event.equipment if e in known for c in await self._counters(known[e])
            ]
        except usage.CounterError as err:
            return rulebound.refusal(self.name, "usage.limit", str(err))
        for counter in counters:
            shown.append(_counter_json(counter))
            if counter.status == "ok":
                continue
            overdue = counter.status == "overdue"
            reasons.append(
                engine.Reason(
                    f"{self.name}.usage-{counter.status}",
                    (f"{counter.describe()}; service it before use" if overdue else counter.describe()),
                    {
                        "equipment": counter.equipment,
                        "task": counter.task,
                        "count": counter.since_service,
                        "threshold": counter.service_every,
                        "unit": counter.unit,
                    },
                    severity="deny" if overdue else "warn",
                )
            )
        if not shown:
            return decision
        severities = {r.severity for r in reasons if not r.audit}
        outcome: engine.Outcome = decision.outcome
        if "deny" in severities:
            outcome = "deny"
        elif outcome == "allow" and reasons:
            outcome = "warn"
        return framework.ModuleDecision(
            module=self.name,
            outcome=outcome,
            reasons=tuple(reasons),
            revisions=decision.revisions,
            effects={**decision.effects, "counters": shown},
        )

    async def _count(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        used = await self._used_equipment(event)
        if isinstance(used, str):
            return rulebound.refusal(self.name, "count.equipment", used)
        hours = event.body.get("hours", 0.0)
        if isinstance(hours, bool) or not isinstance(hours, int | float) or hours < 0:
            return rulebound.refusal(
                self.name, "count.hours", f"body.hours: expected a number of hours >= 0, got {hours!r}"
            )
        try:
            counters = [c for equipment in used for c in await self._counters(equipment)]
        except usage.CounterError as err:
            return rulebound.refusal(self.name, "usage.limit", str(err))
        actor = event.event.person or self.station.station
        counted = []
        for counter in counters:
            amount = 1.0 if counter.unit == "cycles" else float(hours)
            after = usage.count(counter, amount)
            if amount:
                held = await self.station.held("usage", f.usage_key(after.equipment, after.task))
                by = held.last_service_by if isinstance(held, f.UsageCount) else None
                await self.station.keep("usage", _kept(after, by=by), actor=actor)
            counted.append(_counter_json(after))
            if after.status != "ok" and counter.status == "ok":
                log.warning(
                    "maintenance.usage_due",
                    station=self.station.station,
                    equipment=after.equipment,
                    task=after.task,
                    status=after.status,
                    count=after.since_service,
                    threshold=after.service_every,
                )
        return framework.ModuleDecision(module=self.name, outcome="allow", effects={"counters": counted})

    async def _service(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        equipment_id, task = event.body.get("equipment"), event.body.get("task")
        held = (await self.station.facts()).equipment.get(str(equipment_id))
        if held is None:
            return rulebound.refusal(
                self.name, "service.equipment", f"no equipment {equipment_id!r} at {self.station.station}"
            )
        tasks = [limit.task for limit in held.usage_limits]
        if task not in tasks:
            return rulebound.refusal(
                self.name,
                "service.task",
                f"{held.id} counts no task {task!r}; it counts {', '.join(tasks) or 'nothing'}",
                equipment=held.id,
            )
        person = event.event.person
        if not person:
            return rulebound.refusal(
                self.name, "service.person", "a service names who did it (the event's person)"
            )
        try:
            (counter,) = [c for c in await self._counters(held) if c.task == task]
        except usage.CounterError as err:
            return rulebound.refusal(self.name, "usage.limit", str(err))
        after = usage.serviced(counter, at=event.event.at)
        await self.station.keep("usage", _kept(after, by=person), actor=person)
        entry = await self.station.record(
            kind="maintenance.serviced",
            subject=f.usage_key(held.id, task),
            data={
                "equipment": held.id,
                "task": task,
                "unit": counter.unit,
                "countBefore": counter.since_service,
                "threshold": counter.service_every,
                "total": counter.total,
                "by": person,
                "at": event.event.at.isoformat(),
            },
            actor=person,
        )
        log.info(
            "maintenance.serviced",
            station=self.station.station,
            equipment=held.id,
            task=task,
            by=person,
            count_before=counter.since_service,
            entry=entry.node_seq,
            revision=entry.contract,
        )
        return framework.ModuleDecision(
            module=self.name,
            outcome="allow",
            effects={
                **_counter_json(after),
                "before": counter.since_service,
                "servicedBy": person,
                "entry": entry.node_seq,
            },
        )

    async def _check(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
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
        decision = await self.judge(event)
        equipment = body.get("equipment") or (happened.equipment[0] if happened.equipment else None)
        record = f.CheckRecord(
            check=name,
            at=happened.at,
            passed=bool(body.get("passed", True)) and decision.allowed,
            equipment=equipment,
            readings=dict(readings),
        )
        out_of_limits = await self._limits_failed(record, happened)
        if out_of_limits:
            record = dataclasses.replace(record, passed=False)
            denied = any(not r.audit for r in out_of_limits)
            decision = dataclasses.replace(
                decision,
                outcome="deny" if denied else "warn" if decision.outcome == "allow" else decision.outcome,
                reasons=(*out_of_limits, *decision.reasons),
            )
        passed = record.passed
        await self.station.keep("check", record, actor=happened.person or self.station.station)
        return framework.ModuleDecision(
            module=self.name,
            outcome=decision.outcome,
            reasons=decision.reasons,
            revisions=decision.revisions,
            effects={"check": name, "passed": passed},
        )

    async def _limits_failed(self, record: f.CheckRecord, happened: f.Event) -> tuple[engine.Reason, ...]:
        """The contract's measurement rules that read ``record``'s check, judged on its own readings.

        The gate reads a check's readings through these same rules (``check:`` in a measurement
        rule), so they are compiled by the engine here, not re-implemented: a reading the gate
        would refuse makes the check failed now, with the rule's own reason. A missing reading
        the rule needs fails the check too.
        """
        facts = await self.station.facts()
        trial = dataclasses.replace(facts, checks={**facts.checks, record.check: record})
        probe = f.Event(
            action="operate",
            at=record.at,
            station=happened.station,
            person=happened.person,
            attributes=happened.attributes,
        )
        found: list[engine.Reason] = []
        for active in await self.station.active_revisions():
            bundle = json.loads(active.envelope)["bundle"]
            reading_rules = []
            for raw in bundle.get("rules", ()):
                rule = _RULE.validate_python(raw)
                if not isinstance(rule, contract_rules.MeasurementRule) or rule.check != record.check:
                    continue
                # A rule scoped to what the check does not say (which particles, which carrier) is
                # the gate's to judge, where the job carries it, and fails closed there if it does not.
                if any(judging.attribute(probe, key) is None for key in rule.when):
                    continue
                reading_rules.append(rule)
            if not reading_rules:
                continue
            checks, fast = engine.compile_rules(
                reading_rules,
                station=bundle["station"],
                labels=bundle.get("stationLabels", {}),
                zone=bundle["timezone"],
            )
            closures = {closure for row in checks.values() for closure in row}
            closures |= {fast_row[4] for row in fast.values() for fast_row in row}
            audit = bundle.get("enforcement") == "audit"
            for closure in closures:
                failed = closure(probe, trial)
                if failed is None or failed.severity != "deny":
                    continue
                if audit:  # the record still says failed; audit mode only records the would-be deny
                    failed = dataclasses.replace(
                        failed,
                        message=f"audit: would have denied: {failed.message}",
                        severity="warn",
                        audit=True,
                    )
                found.append(failed)
        return tuple(sorted(found, key=lambda r: r.rule))

    async def before(self, event: framework.ModuleEvent) -> Mapping[str, Any] | framework.ModuleDecision:
        if event.verb != "calibration":
            return {}
        equipment_id = event.body.get("equipment")
        held = await self.station.held("equipment", str(equipment_id))
        if not isinstance(held, f.EquipmentRecord):
            return rulebound.refusal(
                self.name, "calibration.equipment", f"no equipment {equipment_id!r} at this station"
            )
        in_tolerance = bool(event.body.get("inTolerance", True))
        calibration = f.Calibration(at=event.event.at, in_tolerance=in_tolerance)
        actor = event.event.person or self.station.station
        await self.station.keep("equipment", dataclasses.replace(held, calibration=calibration), actor=actor)
        effects: dict[str, Any] = {"equipment": held.id, "inTolerance": in_tolerance}
        if not in_tolerance:
            good = (
                held.calibration if held.calibration is not None and held.calibration.in_tolerance else None
            )
            recall = await self.station.jobs_served_by(held.id, since=good.at if good else None)
            effects["recall"] = recall
            await self.station.record(
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


def _counter_json(counter: usage.Counter) -> dict[str, Any]:
    return {
        "equipment": counter.equipment,
        "task": counter.task,
        "unit": counter.unit,
        "count": counter.since_service,
        "threshold": counter.service_every,
        "status": counter.status,
    }


def _kept(counter: usage.Counter, *, by: str | None) -> f.UsageCount:
    """The station's record of ``counter``, naming ``by``, who last serviced it."""
    return f.UsageCount(
        id=f.usage_key(counter.equipment, counter.task),
        equipment=counter.equipment,
        task=counter.task,
        since_service=counter.since_service,
        total=counter.total,
        last_service_at=counter.last_service_at,
        last_service_by=by,
    )
