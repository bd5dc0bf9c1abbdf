"""The shop's codes: parsed into typed values, checked against the PO line, turned into Gatekeeper events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from smart.contracts import engine
from smart.contracts import facts as f
from smart.modules.vision import codes

AT = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
LINE = f.PoLine(
    po="PO-4411",
    line="1",
    released=True,
    part="BRK-220",
    serials=("SN-001", "SN-002", "SN-003"),
    operations=("penetrant",),
    contract_reviewed_by="q-7",
)


def rules_of(reasons: tuple[engine.Reason, ...]) -> list[str]:
    return [reason.rule for reason in reasons]


def test_each_kind_of_code_parses_into_its_typed_value() -> None:
    assert codes.parse("SMART:BADGE:B-1042") == codes.Badge("B-1042")
    assert codes.parse("SMART:TRAVELER:J-2026-0117:penetrant") == codes.Traveler("J-2026-0117", "penetrant")
    assert codes.parse("SMART:PART:PO-4411:1:BRK-220:SN-002") == codes.Part(
        "PO-4411", "1", "BRK-220", "SN-002"
    )
    assert codes.parse("SMART:PPE:nitrile-gloves") == codes.PpeTag("nitrile-gloves")
    assert codes.parse("  SMART:badge:B-7\n") == codes.Badge("B-7")  # a scanner's trailing newline


@pytest.mark.parametrize(
    "code", [codes.Badge("B-1"), codes.Traveler("J-1", "etch"), codes.Part("PO-1", "2", "P-3", "S-4")]
)
def test_a_code_printed_from_its_value_reads_back_the_same(code: codes.Code) -> None:
    assert codes.parse(code.text()) == code


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty code"),
        ("https://example.com/B-1042", "not a SMART code"),
        ("SMART:FORKLIFT:7", "unknown code kind 'FORKLIFT'"),
        ("SMART:PART:PO-4411:1:BRK-220", "serial missing"),
        ("SMART:PART:PO-4411:1", "part-number, serial missing"),
        ("SMART:TRAVELER:J-1:penetrant:extra", "1 field(s) too many"),
        ("SMART:BADGE:", "badge is empty"),
        ("SMART:PART:PO-4411::BRK-220:SN-002", "line is empty"),
        ("SMART:BADGE:B 1042", "spaces or control characters"),
    ],
)
def test_a_malformed_code_is_refused_saying_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(codes.CodeError) as caught:
        codes.parse(text)
    assert says in str(caught.value)


def test_a_missing_field_error_shows_the_expected_layout() -> None:
    with pytest.raises(codes.CodeError) as caught:
        codes.parse("SMART:PART:PO-4411:1:BRK-220")
    assert "SMART:PART:<po>:<line>:<part-number>:<serial>" in str(caught.value)


def test_the_right_part_of_a_released_po_line_is_accepted() -> None:
    part = codes.Part("PO-4411", "1", "BRK-220", "SN-002")
    facts = f.Facts(po_lines={f.po_key(LINE.po, LINE.line): LINE})
    assert codes.check_part(part, facts.po_lines.get(part.po_key)) == ()


def test_a_wrong_part_serial_for_the_po_is_refused_with_the_reason() -> None:
    part = codes.parse("SMART:PART:PO-4411:1:BRK-220:SN-999")
    assert isinstance(part, codes.Part)
    reasons = codes.check_part(part, LINE)
    assert rules_of(reasons) == ["vision.serial"]
    assert reasons[0].message == "serial SN-999 is not on PO PO-4411 line 1"
    assert reasons[0].values["serial"] == "SN-999"
    assert reasons[0].severity == "deny"


def test_a_wrong_part_number_is_refused_naming_the_po_lines_part() -> None:
    reasons = codes.check_part(f.Scan("PO-4411", "1", "BRK-221", "SN-002"), LINE)
    assert rules_of(reasons) == ["vision.part-number"]
    assert "BRK-220" in reasons[0].message


def test_a_part_of_an_unreleased_or_unknown_po_line_is_refused() -> None:
    held = f.PoLine(po="PO-4411", line="1", released=False, part="BRK-220", serials=("SN-002",))
    assert rules_of(codes.check_part(f.Scan("PO-4411", "1", "BRK-220", "SN-002"), held)) == [
        "vision.released"
    ]
    unknown = codes.check_part(f.Scan("PO-9", "1", "BRK-220", "SN-002"), None)
    assert rules_of(unknown) == ["vision.po-line"]
    other_line = codes.check_part(f.Scan("PO-4411", "2", "BRK-220", "SN-002"), LINE)
    assert rules_of(other_line) == ["vision.po-line"]


def test_a_part_counted_twice_or_beyond_the_lines_quantity_is_refused() -> None:
    again = codes.check_part(f.Scan("PO-4411", "1", "BRK-220", "SN-002"), LINE, counted={"SN-002"})
    assert rules_of(again) == ["vision.quantity"]
    assert "already counted" in again[0].message
    over = codes.check_part(f.Scan("PO-4411", "1", "BRK-220", "SN-003"), LINE, counted={"SN-001"}, quantity=1)
    assert rules_of(over) == ["vision.quantity"]
    assert codes.check_part(f.Scan("PO-4411", "1", "BRK-220", "SN-003"), LINE, counted={"SN-001"}) == ()


def test_a_traveler_at_an_operation_the_po_line_lacks_is_refused() -> None:
    scan = codes.Part("PO-4411", "1", "BRK-220", "SN-002").scan(operation="plating")
    assert rules_of(codes.check_part(scan, LINE)) == ["vision.operation"]


def test_scanned_codes_become_the_gatekeepers_event() -> None:
    scanned = codes.Scanned()
    for text in (
        "SMART:BADGE:B-1042",
        "SMART:BADGE:B-2001",
        "SMART:TRAVELER:J-2026-0117:penetrant",
        "SMART:PART:PO-4411:1:BRK-220:SN-002",
        "SMART:PPE:nitrile-gloves",
        "SMART:PPE:safety-glasses",
    ):
        scanned = scanned.add(codes.parse(text))
    event = scanned.event(action="operate", at=AT, station="pt-1")
    assert event.person == "B-1042"
    assert event.supervisor == "B-2001"  # a second badge while someone is badged in
    assert event.job == "J-2026-0117"
    assert event.step == "penetrant"
    assert event.scan == f.Scan("PO-4411", "1", "BRK-220", "SN-002", "penetrant")
    assert event.ppe == frozenset({"nitrile-gloves", "safety-glasses"})
    assert scanned.badge_request() == {"person": "B-1042", "supervisor": "B-2001"}
    assert scanned.scan_request() == {
        "job": "J-2026-0117",
        "po": "PO-4411",
        "line": "1",
        "part": "BRK-220",
        "serial": "SN-002",
        "operation": "penetrant",
    }


def test_a_scan_request_waits_for_both_traveler_and_part() -> None:
    only_part = codes.Scanned().add(codes.Part("PO-4411", "1", "BRK-220", "SN-002"))
    assert only_part.scan_request() is None
    assert codes.Scanned().badge_request() is None


def judge_traveler(event: f.Event) -> engine.Decision:
    rule: dict[str, Any] = {
        "kind": "traveler",
        "id": "pt-traveler",
        "process": "penetrant",
        "match": ["part", "serial"],
    }
    bundle = {
        "contract": "pt",
        "station": "pt-1",
        "stationLabels": {},
        "enforcement": "enforce",
        "window": {},
        "timezone": "UTC",
        "rules": [rule],
    }
    facts = f.Facts(po_lines={f.po_key(LINE.po, LINE.line): LINE})
    return engine.evaluator(bundle, "rev-1").evaluate(event, facts)


def test_the_contracts_traveler_rule_refuses_the_event_built_from_a_wrong_serial() -> None:
    base = codes.Scanned().add(codes.Badge("B-1042")).add(codes.Traveler("J-1", "penetrant"))
    wrong = base.add(codes.parse("SMART:PART:PO-4411:1:BRK-220:SN-999"))
    decision = judge_traveler(wrong.event(action="operate", at=AT, station="pt-1"))
    assert decision.outcome == "deny"
    assert "serial SN-999 is not on PO PO-4411 line 1" in decision.reasons[0].message
    right = base.add(codes.parse("SMART:PART:PO-4411:1:BRK-220:SN-002"))
    assert judge_traveler(right.event(action="operate", at=AT, station="pt-1")).outcome == "allow"
