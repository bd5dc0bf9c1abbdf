"""QANode: a measurement judged against the contract, a reject turned into an NCR, every reading charted.

The contract decides (``station.judge``); this module adds what a quality
engineer adds at the bench. A measurement the contract refuses opens a
nonconformance record, recorded on the ledger, so the job cannot be released
until someone with the authority dispositions it (:mod:`.ncr`). Every reading
is plotted on its characteristic's control chart (:mod:`smart.contracts.spc`), and a
Western Electric finding comes back as a *warning* reason: SPC advises, it
never turns an allow into a deny nor a deny into an allow, only an allow
into a warn.

The decisions are pure (:func:`assess`, :func:`dispose`); the class only
holds the station's charts and open NCRs, and writes to the ledger.

**Who dispositions.** A disposition (or closure) is made by the person badged
in at the station now, whose badge verifies like any badge and whose record
gives the authority (:mod:`smart.contracts.authority`: a Level 3 in the station's
method or the quality manager). A request naming anyone else is refused,
whatever name it carries: the job machine's ``disposition`` verb is the way
in, for the kiosk or any client, and it names the badged-in person itself.
The station's open NCRs are read back from its ledger when QA starts, so a
restart never leaves an NCR that cannot be closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

import structlog

from smart.contracts import authority, engine, spc
from smart.contracts import facts as f
from smart.modules import framework
from smart.modules.qa import ncr

log = structlog.get_logger("smart.modules.qa")

#: Readings plotted before a new characteristic's chart has limits (Phase I baseline).
BASELINE_POINTS = 20


@dataclass(frozen=True, slots=True)
class Assessment:
    """What QA makes of one measurement: outcome, reasons, the NCRs to open, the charts after plotting."""

    outcome: engine.Outcome
    reasons: tuple[engine.Reason, ...]
    opened: tuple[ncr.Nonconformance, ...]
    findings: tuple[spc.Finding, ...]
    charts: Mapping[str, spc.Chart] = field(default_factory=lambda: MappingProxyType({}))


def is_measurement_reject(reason: engine.Reason) -> bool:
    """A measurement rule's refusal of a value it read (not a missing reading, not an audit-mode warning)."""
    return (
        reason.severity == "deny"
        and not reason.audit
        and "quantity" in reason.values
        and "value" in reason.values
    )


def new_chart(characteristic: str, unit: str) -> spc.Chart:
    """A characteristic seen for the first time: an I-MR chart that sets its limits from its baseline."""
    return spc.Chart.individuals(characteristic, unit=unit, baseline_size=BASELINE_POINTS)


def assess(
    decision_outcome: engine.Outcome,
    decision_reasons: tuple[engine.Reason, ...],
    event: f.Event,
    charts: Mapping[str, spc.Chart],
    *,
    cites: Mapping[str, tuple[str, ...]] | None = None,
) -> Assessment:
    """Open an NCR per measurement reject of a job, plot every reading, add SPC findings as warnings.

    ``cites`` maps a rule id to the standard clauses it cites, for the NCR's record.
    """
    # A reject with no job in hand is the equipment's (a daily check judged at the gate): the line
    # locks on it (rule 12); an NCR is about a part, so it needs the job the part belongs to.
    opened = tuple(
        ncr.open_from_reason(reason, event, cites=(cites or {}).get(reason.rule, ()))
        for reason in decision_reasons
        if event.job is not None and is_measurement_reject(reason)
    )
    updated = dict(charts)
    findings: list[spc.Finding] = []
    at = event.at.isoformat()
    for quantity, reading in event.readings.items():
        chart = updated.get(quantity) or new_chart(quantity, reading.unit)
        try:
            chart, found = chart.add(reading.value, unit=reading.unit, at=at)
        except ValueError as err:  # a reading in a unit the chart cannot take: say so, never block on it
            unit_reason = engine.Reason(
                f"spc.unit.{quantity}",
                f"{quantity} reading in {reading.unit} not charted: {err}",
                MappingProxyType({"quantity": quantity, "unit": reading.unit}),
                "warn",
            )
            decision_reasons = (*decision_reasons, unit_reason)
            continue
        updated[quantity] = chart
        findings.extend(found)
    warnings = tuple(
        engine.Reason(
            finding.rule_id,
            finding.message,
            MappingProxyType(
                {
                    "characteristic": finding.characteristic,
                    "weRule": finding.rule,
                    "chart": finding.chart,
                    "points": [point.index for point in finding.points],
                    "values": [point.value for point in finding.points],
                }
            ),
            "warn",
        )
        for finding in findings
    )
    reasons = (*decision_reasons, *warnings)
    outcome: engine.Outcome = decision_outcome
    if outcome == "allow" and any(r.severity == "warn" for r in reasons):
        outcome = "warn"
    return Assessment(outcome, reasons, opened, tuple(findings), MappingProxyType(updated))


def dispose(
    record: ncr.Nonconformance, body: Mapping[str, Any], *, by: str, at: datetime
) -> ncr.Nonconformance:
    """Apply a ``disposition`` or ``close`` request body to an NCR (raises :class:`ncr.NcrRefused`)."""
    if body.get("close"):
        return ncr.close(record, by=by, at=at, evidence=str(body.get("evidence") or ""))
    return ncr.dispose(
        record,
        disposition=str(body.get("disposition") or ""),
        by=by,
        at=at,
        design_authority_approval=body.get("designAuthorityApproval"),
    )


class QaModule(framework.StationModule):
    """QA at one station.

    - ``measure``: the event carries the readings; body ``cites`` (optional) maps a rule id to the
      standard clauses it cites, copied into any NCR opened.
    - ``inspect``: body ``result`` (accept or reject) and ``indications`` (what was seen: needed for
      a reject), recorded as ``qa.inspection``; a reject of a job opens an NCR.
    - ``disposition``: body ``ncr`` (its id) and either ``disposition`` (use-as-is, repair, rework,
      scrap) with ``designAuthorityApproval`` where needed, or ``close: true`` with ``evidence``;
      the event's person decides.
    """

    name = "qa"

    def __init__(self, station: framework.StationContext, manifest: framework.ModuleManifest) -> None:
        super().__init__(station, manifest)
        self.charts: dict[str, spc.Chart] = {}
        self.ncrs: dict[str, ncr.Nonconformance] = {}

    async def start(self) -> None:
        """Read the station's NCRs back from its ledger: the latest entry of each is where it stands."""
        for entry in await self.station.entries(0):
            if entry.kind.startswith("qa.ncr."):
                try:
                    record = ncr.Nonconformance.from_json(entry.data)
                except (KeyError, ValueError, TypeError):
                    log.error("qa.ncr_unreadable", station=self.station.station, entry=entry.node_seq)
                    continue
                self.ncrs[record.id] = record
        # a decision the hub sent while QA was not running is applied now
        for record in self.open_ncrs():
            if await self.station.held("ncr-decision", record.id) is not None:
                await self._apply_hub_decision(record.id)

    def open_ncrs(self) -> list[ncr.Nonconformance]:
        """The NCRs still open here, oldest first (the kiosk shows them with who may decide)."""
        return sorted((n for n in self.ncrs.values() if n.open), key=lambda n: (n.opened_at, n.id))

    async def handle(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        if event.verb == "measure":
            return await self._measure(event)
        if event.verb == "disposition":
            return await self._disposition(event)
        if event.verb == "inspect":
            return await self._inspect(event)
        if event.verb == "hub-decision":
            return await self._hub_decision(event)
        reason = engine.Reason(
            "qa.verb",
            f"qa does not answer {event.verb!r}; it answers measure, inspect, disposition, hub-decision",
        )
        return framework.ModuleDecision(module=self.name, outcome="deny", reasons=(reason,))

    async def _measure(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        decision = await self.station.judge(event.event, module=self.name)
        cites = {str(rule): tuple(clauses) for rule, clauses in dict(event.body.get("cites") or {}).items()}
        result = assess(decision.outcome, decision.reasons, event.event, self.charts, cites=cites)
        self.charts = dict(result.charts)
        actor = event.event.person or self.station.station
        for record in result.opened:
            self.ncrs[record.id] = record
            await self.station.record(
                kind="qa.ncr.opened", subject=record.job or record.id, data=record.to_json(), actor=actor
            )
            log.info("qa.ncr_opened", station=self.station.station, ncr=record.id, job=record.job)
        for finding in result.findings:
            log.info(
                "qa.spc_finding",
                station=self.station.station,
                rule=finding.rule_id,
                points=len(finding.points),
            )
        return framework.ModuleDecision(
            module=self.name,
            outcome=result.outcome,
            reasons=result.reasons,
            revisions=decision.revisions,
            effects={
                "ncrs": [record.id for record in result.opened],
                "spc": [finding.to_json() for finding in result.findings],
            },
        )

    async def _inspect(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        """The inspector's finding: the indications seen and accept or reject; a reject opens an NCR."""
        happened = event.event
        result = event.body.get("result")
        indications = str(event.body.get("indications") or "").strip()
        if result not in ("accept", "reject"):
            reason = engine.Reason("qa.inspection", f"an inspection is accept or reject, not {result!r}")
            return framework.ModuleDecision(module=self.name, outcome="deny", reasons=(reason,))
        if result == "reject" and not indications:
            reason = engine.Reason(
                "qa.inspection", "a reject says which indications were found (what, size, where)"
            )
            return framework.ModuleDecision(module=self.name, outcome="deny", reasons=(reason,))
        actor = happened.person or self.station.station
        found = {"job": happened.job, "step": happened.step, "result": result, "indications": indications}
        await self.station.record(
            kind="qa.inspection", subject=happened.job or actor, data=found, actor=actor
        )
        opened: list[str] = []
        if result == "reject" and happened.job is not None:
            rejected = engine.Reason(
                "qa.inspection-reject",
                f"rejected at inspection: {indications}",
                MappingProxyType({"quantity": "inspection"}),
            )
            record = ncr.open_from_reason(rejected, happened)
            self.ncrs[record.id] = record
            await self.station.record(
                kind="qa.ncr.opened", subject=record.job or record.id, data=record.to_json(), actor=actor
            )
            opened.append(record.id)
            log.info("qa.ncr_opened", station=self.station.station, ncr=record.id, job=record.job)
        return framework.ModuleDecision(
            module=self.name, outcome="allow", effects={"inspection": found, "ncrs": opened}
        )

    async def _disposition(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        ncr_id = str(event.body.get("ncr") or "")
        record = self.ncrs.get(ncr_id)
        if record is None:
            reason = engine.Reason("ncr.unknown", f"no NCR {ncr_id!r} at {self.station.station}")
            return framework.ModuleDecision(module=self.name, outcome="deny", reasons=(reason,))
        by = event.event.person
        unauthorised = await self._authority(record, by, event.event.at)
        if unauthorised:
            return framework.ModuleDecision(module=self.name, outcome="deny", reasons=unauthorised)
        assert by is not None
        try:
            updated = dispose(record, event.body, by=by, at=event.event.at)
        except ncr.NcrRefused as refused:
            return framework.ModuleDecision(module=self.name, outcome="deny", reasons=(refused.reason,))
        self.ncrs[ncr_id] = updated
        kind = "qa.ncr.closed" if not updated.open else "qa.ncr.dispositioned"
        await self.station.record(
            kind=kind, subject=updated.job or updated.id, data=updated.to_json(), actor=by
        )
        log.info("qa.ncr_updated", station=self.station.station, ncr=ncr_id, open=updated.open)
        return framework.ModuleDecision(
            module=self.name, outcome="allow", effects={"ncr": ncr_id, "open": updated.open}
        )

    async def _hub_decision(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        """Apply the hub's decision on an NCR of this station (its ``ncr-decision`` record).

        QACentral verified the signer's credential at the hub; the record comes only from the hub's
        ``station-records``, which only the hub writes. The rules of a disposition are the same as at
        the kiosk (use-as-is and repair need the design authority's approval); the ledger entry names
        the hub's signer and says the decision came from the hub.
        """
        return await self._apply_hub_decision(str(event.body.get("ncr") or ""))

    async def _apply_hub_decision(self, ncr_id: str) -> framework.ModuleDecision:
        record = self.ncrs.get(ncr_id)
        decision = await self.station.held("ncr-decision", ncr_id)
        if record is None or not isinstance(decision, f.NcrDecision):
            reason = engine.Reason(
                "ncr.unknown", f"no NCR {ncr_id!r} with a hub decision at {self.station.station}"
            )
            return framework.ModuleDecision(module=self.name, outcome="deny", reasons=(reason,))
        updated = record
        try:
            if decision.disposition is not None and updated.disposition is None:
                updated = ncr.dispose(
                    updated,
                    disposition=decision.disposition,
                    by=decision.decided_by,
                    at=decision.decided_at,
                    design_authority_approval=decision.design_authority_approval,
                )
            if decision.close and updated.open:
                updated = ncr.close(
                    updated, by=decision.decided_by, at=decision.decided_at, evidence=decision.evidence or ""
                )
        except ncr.NcrRefused as refused:
            return framework.ModuleDecision(module=self.name, outcome="deny", reasons=(refused.reason,))
        if updated == record:
            return framework.ModuleDecision(
                module=self.name,
                outcome="allow",
                effects={"ncr": ncr_id, "open": updated.open, "changed": False},
            )
        self.ncrs[ncr_id] = updated
        kind = "qa.ncr.closed" if not updated.open else "qa.ncr.dispositioned"
        await self.station.record(
            kind=kind,
            subject=updated.job or updated.id,
            data={**updated.to_json(), "decidedAt": "hub"},
            actor=decision.decided_by,
        )
        log.info("qa.ncr_hub_decision", station=self.station.station, ncr=ncr_id, open=updated.open)
        return framework.ModuleDecision(
            module=self.name, outcome="allow", effects={"ncr": ncr_id, "open": updated.open, "changed": True}
        )

    async def _authority(
        self, record: ncr.Nonconformance, by: str | None, at: datetime
    ) -> tuple[engine.Reason, ...]:
        """Why ``by`` may not decide ``record`` now: not the badge at the station, or no authority."""
        station = self.station
        here = await station.badged_in()
        if by is None or by != here:
            reason = engine.Reason(
                "ncr.badge",
                f"a disposition of {record.id} is made by the person badged in at {station.station}"
                f" ({here or 'nobody'}), never by a name in a request",
                MappingProxyType({"ncr": record.id, "named": by, "badgedIn": here}),
            )
            return (reason,)
        facts = await station.facts()
        return authority.judge(
            by,
            what=f"disposition {record.id}",
            facts=facts,
            refused=await station.badge_refusals(by, at),
            at=at,
            methods=authority.methods_of(facts),
        )

    def job_ncrs(self, job: str) -> tuple[f.Ncr, ...]:
        """The NCR facts of ``job`` for ``facts.Job.ncrs`` (the Guardian blocks release on open ones)."""
        return ncr.job_facts(tuple(self.ncrs.values()), job)

    def state(self) -> dict[str, Any]:
        """Charts and NCRs as JSON, for the station to persist."""
        return {
            "charts": {name: chart.to_json() for name, chart in self.charts.items()},
            "ncrs": [record.to_json() for record in self.ncrs.values()],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back what :meth:`state` saved (after a restart)."""
        self.charts = {
            name: spc.Chart.from_json(raw) for name, raw in dict(state.get("charts") or {}).items()
        }
        records = (ncr.Nonconformance.from_json(raw) for raw in state.get("ncrs") or ())
        self.ncrs = {record.id: record for record in records}
