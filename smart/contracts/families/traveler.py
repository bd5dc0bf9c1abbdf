"""The scanned PO line and traveler operation authorise this process here (rules 33, 34)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from smart.contracts import facts as f
from smart.contracts.families import judging, vocabulary


class TravelerRule(vocabulary.RuleBase):
    """The scanned PO line and traveler operation are released and authorise this process (rules 33, 34)."""

    kind: Literal["traveler"] = "traveler"
    module: ClassVar[str] = "gatekeeper"

    process: vocabulary.Name = Field(
        description="The operation the traveler must route here, e.g. penetrant."
    )
    require_contract_review: bool = Field(default=True, description="The PO was contract-reviewed.")
    match: list[Literal["part", "serial"]] = Field(
        default_factory=lambda: ["part", "serial"],  # type: ignore[arg-type]
        description="Scanned fields that must match the PO.",
    )
    required_po_fields: list[vocabulary.Name] = Field(
        default_factory=list, description="Flowdowns the PO line must carry, e.g. retention, spec."
    )


def compile_rule(rule: TravelerRule, ctx: judging.Context) -> judging.Check:
    fail = judging.failer(rule)
    process, review = rule.process, rule.require_contract_review
    match_part, match_serial = "part" in rule.match, "serial" in rule.match
    required_fields = tuple(rule.required_po_fields)

    def check(event: f.Event, facts: f.Facts) -> judging.Reason | None:
        scan = event.scan
        if scan is None:
            return fail("no PO or traveler scanned")
        line = facts.po_lines.get(f.po_key(scan.po, scan.line))
        if line is None:
            return fail(f"PO {scan.po} line {scan.line} is unknown", po=scan.po, line=scan.line)
        if not line.released:
            return fail(f"PO {scan.po} line {scan.line} is not released", po=scan.po, line=scan.line)
        if review and not line.contract_reviewed_by:
            return fail(f"PO {scan.po} was not contract-reviewed", po=scan.po)
        if process not in line.operations:
            return fail(
                f"traveler of PO {scan.po} line {scan.line} has no {process} operation",
                po=scan.po,
                operations=line.operations,
            )
        if match_part and scan.part != line.part:
            return fail(
                f"part {scan.part} is not PO {scan.po}'s part {line.part}", part=scan.part, expected=line.part
            )
        if match_serial and scan.serial not in line.serials:
            return fail(
                f"serial {scan.serial} is not on PO {scan.po} line {scan.line}",
                serial=scan.serial,
                po=scan.po,
            )
        missing = [name for name in required_fields if not line.flowdowns.get(name)]
        if missing:
            return fail(f"PO {scan.po} line {scan.line} lacks {', '.join(missing)}", missing=missing)
        return None

    return check


FAMILY = judging.Family(TravelerRule, compile_rule)
