"""A decision's reasons as the operator reads them: the words, the rule, and the standard behind it.

A refusal the operator cannot act on stops the line twice. So every reason
the kiosk shows carries the module's message in plain words, the rule's id
(what the quality manager looks up) and, for a contract rule, the standard,
revision and clause it cites, read from the same verified bundle the
station decided with. Reasons that come from the station itself (a module
not answering, a verb in the wrong state) say so instead of citing a
standard they do not come from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from smart.modules.policy_node_storage.module import rule_text

#: Rule ids the station makes up itself, by prefix, and who stands behind them.
_STATION_RULES = {
    "job.": "the station's job sequence",
    "station.": "the station itself (fail closed)",
    "policy.": "the station's contract store",
    "alert.": "the station's alerts",
    "vision.": "the station's camera",
    "no-contract": "the station itself (fail closed)",
    "contract.": "the station's contract store",
    "access.": "SMART-ID's signed credentials, verified at the station",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Source:
    standard: str
    title: str | None
    revision: str | None
    clause: str | None
    note: str | None

    @property
    def text(self) -> str:
        """``ASTM E1417/E1417M rev. 21, clause 7.3`` — what an auditor would look up."""
        name = self.title or self.standard
        parts = [f"{name} rev. {self.revision}" if self.revision else name]
        if self.clause:
            parts.append(f"clause {self.clause}")
        return ", ".join(parts)


@dataclasses.dataclass(frozen=True, slots=True)
class ShownReason:
    """One reason on the kiosk: ``message`` first, then where it comes from."""

    rule: str
    message: str
    severity: str
    audit: bool
    module: str | None
    sources: tuple[Source, ...]
    #: Who stands behind a rule that is not a contract's (the station's own checks), else None.
    station_rule: str | None

    @property
    def blocking(self) -> bool:
        return self.severity == "deny" and not self.audit


def explain(
    decisions: Sequence[Mapping[str, Any]],
    reasons: Iterable[Mapping[str, Any]],
    bundles: Sequence[Mapping[str, Any]],
) -> list[ShownReason]:
    """``reasons`` of a job reply, each with its module (from ``decisions``) and its citations."""
    by_rule = {
        str(reason.get("rule")): str(decision.get("module"))
        for decision in decisions
        for reason in decision.get("reasons", ()) or ()
        if isinstance(reason, Mapping)
    }
    shown: list[ShownReason] = []
    for reason in reasons:
        rule = str(reason.get("rule") or "")
        sources: tuple[Source, ...] = ()
        for bundle in bundles:
            text = rule_text(bundle, rule)
            if text is not None:
                sources = tuple(
                    Source(
                        standard=str(c.get("standard")),
                        title=c.get("title"),
                        revision=c.get("revision"),
                        clause=c.get("clause"),
                        note=c.get("note"),
                    )
                    for c in text["citations"]
                )
                break
        station_rule = None
        if not sources:
            station_rule = next(
                (who for prefix, who in _STATION_RULES.items() if rule.startswith(prefix)), None
            )
        shown.append(
            ShownReason(
                rule=rule,
                message=str(reason.get("message") or rule),
                severity=str(reason.get("severity") or "deny"),
                audit=bool(reason.get("audit")),
                module=by_rule.get(rule),
                sources=sources,
                station_rule=station_rule,
            )
        )
    return shown
