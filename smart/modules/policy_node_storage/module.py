"""PolicyNodeStorage: the station's contract store, read back: what is in force, since when, and why.

- ``active``: each contract's revision in force and since when.
- ``history`` (body ``contract``, optional): each change of a contract's
  active revision, oldest first, and the revisions the station refused
  (from the ledger's ``contract.refused`` entries, with the reason).
- ``why`` (body ``rule``, optional ``entry``): a rule's text — kind,
  parameters, message, severity, the events it applies to, and each
  citation with the standard's title, revision and clause. With ``entry``
  (the ``node_seq`` of a ``module.decision`` or ``gate.decision``) the rule
  is read from the revision that decision was judged under, even one
  replaced since, and the decision's reasons under that rule come along.

- ``at`` (body ``time``, RFC 3339): each contract's revision that was in
  force at that moment, since when, and its rule ids — the station's own
  answer to "what rules judged pt-1 at 10:00 on 30 Nov", which the hub's
  PolicyCentral answers the same from the shipped ``contract.activated``
  entries.

Everything comes from the station's own store and ledger; nothing asks the
hub. These are questions, not decisions: the answer is an ``allow`` with
the data in its effects (a rule not found says so, ``found: false``); the
runtime still records each one as a ``module.decision``, as it does every
request a module answers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from smart import ledger
from smart.contracts import engine, history
from smart.modules import framework

#: Ledger kinds that carry a decision with the revisions it was judged under.
DECISION_KINDS = ("module.decision", "gate.decision")
_RULE_FIELDS = ("id", "kind", "message", "severity", "appliesTo", "cites")


def rule_text(bundle: Mapping[str, Any], rule_id: str) -> dict[str, Any] | None:
    """The rule ``rule_id`` of ``bundle`` in words and numbers, its citations resolved, or None."""
    raw = next((r for r in bundle.get("rules", ()) if isinstance(r, dict) and r.get("id") == rule_id), None)
    if raw is None:
        return None
    standards = {str(s.get("id")): s for s in bundle.get("standards", ()) if isinstance(s, dict)}
    citations = []
    for cite in raw.get("cites") or ():
        standard = standards.get(str(cite.get("standard")), {})
        citations.append(
            {
                "standard": cite.get("standard"),
                "title": standard.get("title"),
                "revision": standard.get("revision"),
                "clause": cite.get("clause"),
                "note": cite.get("note"),
            }
        )
    return {
        "rule": rule_id,
        "kind": raw.get("kind"),
        "message": raw.get("message"),
        "severity": raw.get("severity", "deny"),
        "appliesTo": raw.get("appliesTo"),
        "parameters": {k: v for k, v in raw.items() if k not in _RULE_FIELDS},
        "citations": citations,
    }


class PolicyNodeStorageModule(framework.StationModule):
    """Verbs ``active``, ``history`` and ``why`` (see the module docstring)."""

    name = "policy-node-storage"

    async def handle(self, event: framework.ModuleEvent) -> framework.ModuleDecision:
        if event.verb == "active":
            return self._answer(active=await self._active())
        if event.verb == "history":
            contract = event.body.get("contract")
            if contract is not None and not isinstance(contract, str):
                return self._refuse("request", "body.contract: expected a contract name")
            return self._answer(**await self._history(contract))
        if event.verb == "why":
            return await self._why(event.body)
        if event.verb == "at":
            return await self._at(event.body)
        answers = ", ".join(self.manifest.subjects)
        return self._refuse("verb", f"{self.name} does not answer {event.verb!r}; it answers {answers}")

    def _refuse(self, rule: str, message: str) -> framework.ModuleDecision:
        reason = engine.Reason(f"policy.{rule}", message)
        return framework.ModuleDecision(module=self.name, outcome="deny", reasons=(reason,))

    def _answer(self, **effects: Any) -> framework.ModuleDecision:
        return framework.ModuleDecision(module=self.name, outcome="allow", effects=effects)

    async def _active(self) -> list[dict[str, str]]:
        return [
            {"contract": a.contract, "revision": a.revision, "since": a.activated_at}
            for a in await self.station.active_revisions()
        ]

    async def _history(self, contract: str | None) -> dict[str, Any]:
        changes = [
            {"contract": a.contract, "revision": a.revision, "previous": a.previous, "at": a.at}
            for a in await self.station.revision_history(contract)
        ]
        refused = [
            {
                "contract": e.data.get("contract"),
                "revision": e.data.get("revision"),
                "reason": e.data.get("reason"),
                "at": e.ts,
                "entry": e.node_seq,
            }
            for e in await self.station.entries(0)
            if e.kind == "contract.refused" and (contract is None or e.data.get("contract") == contract)
        ]
        return {"contract": contract, "history": changes, "refused": refused}

    async def _at(self, body: Mapping[str, Any]) -> framework.ModuleDecision:
        text = body.get("time")
        if not isinstance(text, str):
            return self._refuse("request", "body.time: expected a time, e.g. 2026-11-30T10:00:00Z")
        try:
            moment = history.parse_time(text, field_name="body.time")
        except history.HistoryError as err:
            return self._refuse("request", str(err))
        changes = [
            history.Activation(self.station.station, c.contract, c.revision, history.parse_time(c.at))
            for c in await self.station.revision_history(None)
        ]
        found = []
        for held in history.in_force_at(changes, self.station.station, moment):
            envelope = await self.station.envelope(held.contract, held.revision)
            rules = json.loads(envelope)["bundle"].get("rules", []) if envelope else []
            found.append({**held.json(), "rules": [str(r.get("id")) for r in rules if isinstance(r, dict)]})
        return self._answer(station=self.station.station, time=moment.isoformat(), inForce=found)

    async def _why(self, body: Mapping[str, Any]) -> framework.ModuleDecision:
        rule_id, seq = body.get("rule"), body.get("entry")
        if not isinstance(rule_id, str) or not rule_id:
            return self._refuse("request", "body.rule: expected the id of a rule")
        if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool) or seq < 0):
            return self._refuse("request", "body.entry: expected a ledger entry number")
        decided: ledger.Entry | None = None
        if seq is not None:
            found = await self.station.entries(seq, seq + 1)
            if not found or found[0].kind not in DECISION_KINDS:
                return self._refuse("entry", f"ledger entry {seq} is not a module or gate decision")
            decided = found[0]
            revisions = decided.data.get("revisions") or {}
            candidates = [(str(c), str(r)) for c, r in sorted(revisions.items())]
        else:
            candidates = [(a.contract, a.revision) for a in await self.station.active_revisions()]
        in_force = {a.contract: a.revision for a in await self.station.active_revisions()}
        for contract, revision in candidates:
            envelope = await self.station.envelope(contract, revision)
            if envelope is None:
                continue
            text = rule_text(json.loads(envelope)["bundle"], rule_id)
            if text is None:
                continue
            effects: dict[str, Any] = {
                "found": True,
                **text,
                "contract": contract,
                "revision": revision,
                "inForce": in_force.get(contract) == revision,
            }
            if decided is not None:
                effects["entry"] = decided.node_seq
                effects["outcome"] = decided.data.get("outcome")
                effects["reasons"] = [
                    r
                    for r in decided.data.get("reasons", ())
                    if isinstance(r, dict) and r.get("rule") == rule_id
                ]
            return self._answer(**effects)
        where = f"the revisions of ledger entry {seq}" if seq is not None else "the contracts in force"
        return self._answer(found=False, rule=rule_id, message=f"no rule {rule_id} in {where}")
