"""PPE: confirmed by scanned tags; the default image check cannot see PPE; the contract's rule decides."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime

from smart.contracts import engine
from smart.contracts import facts as f
from smart.modules.vision import bench, codes, ppe

AT = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
FRAME = bench.qr_frame("SMART:PPE:nitrile-gloves")


def judge_ppe(worn: frozenset[str]) -> engine.Decision:
    rule = {"kind": "ppe", "id": "pt-ppe", "required": ["nitrile-gloves", "safety-glasses"]}
    bundle = {
        "contract": "pt",
        "station": "pt-1",
        "stationLabels": {},
        "enforcement": "enforce",
        "window": {},
        "timezone": "UTC",
        "rules": [rule],
    }
    event = f.Event(action="operate", at=AT, station="pt-1", person="B-1042", ppe=worn)
    return engine.evaluator(bundle, "rev-1").evaluate(event, f.Facts())


def test_the_default_detector_cannot_see_ppe_and_never_says_present() -> None:
    detector = ppe.NoDetector()
    assert isinstance(detector, ppe.PpeDetector)
    seen = detector.detect(FRAME, items=["nitrile-gloves", "safety-glasses", "respirator"])
    assert dict(seen) == {"nitrile-gloves": "unknown", "safety-glasses": "unknown", "respirator": "unknown"}


def test_with_the_default_detector_only_scanned_tags_count() -> None:
    scanned = [codes.parse("SMART:PPE:nitrile-gloves"), codes.parse("SMART:BADGE:B-1042")]
    found = ppe.evidence(ppe.tagged(scanned), frame=FRAME, items=["safety-glasses"])
    assert found.worn == {"nitrile-gloves"}
    assert found.seen["safety-glasses"] == "unknown"
    assert found.contradicted == frozenset()


def test_the_contracts_ppe_rule_refuses_what_no_tag_confirmed() -> None:
    gloves_only = ppe.evidence([codes.PpeTag("nitrile-gloves")], frame=FRAME)
    decision = judge_ppe(gloves_only.worn)
    assert decision.outcome == "deny"
    assert "PPE missing: safety-glasses" in decision.reasons[0].message
    both = ppe.evidence(["nitrile-gloves", "safety-glasses"], frame=FRAME)
    assert judge_ppe(both.worn).outcome == "allow"


class SeesNoGlasses:
    """A configured image check that sees gloves and no safety glasses."""

    def detect(self, frame: object, *, items: Collection[str]) -> Mapping[str, ppe.Presence]:
        known: dict[str, ppe.Presence] = {"nitrile-gloves": "present", "safety-glasses": "absent"}
        return {item: known.get(item, "unknown") for item in items}


def test_a_configured_detector_may_confirm_an_item_or_contradict_a_tag() -> None:
    found = ppe.evidence(
        ["safety-glasses"], frame=FRAME, detector=SeesNoGlasses(), items=["nitrile-gloves", "respirator"]
    )
    assert found.worn == {"nitrile-gloves"}  # seen without a tag
    assert found.contradicted == {"safety-glasses"}  # tag scanned, but the image shows none
    assert found.seen["respirator"] == "unknown"
    assert judge_ppe(found.worn).outcome == "deny"


def test_without_a_frame_no_image_check_is_made() -> None:
    found = ppe.evidence(["nitrile-gloves"], detector=SeesNoGlasses())
    assert found.worn == {"nitrile-gloves"} and dict(found.seen) == {}
