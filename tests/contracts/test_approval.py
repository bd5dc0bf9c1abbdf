"""The two-person gate as pure functions: held, refused, approved; an emergency and its countersignature."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smart.contracts import approval, manifests, reconcile
from smart.contracts.models import SmartContract

SEEDED = approval.Bootstrap(by="smart up (first start)", user="shop", source="contracts/")
ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def _penetrant(**approval_policy: object) -> SmartContract:
    loaded = [i.manifest for i in manifests.load([ROOT / "contracts" / "penetrant.yaml"])]
    contract = next(m for m in loaded if isinstance(m, SmartContract))
    body = contract.model_dump(mode="json", by_alias=True, exclude_none=True)
    body["spec"]["rules"] = [r for r in body["spec"]["rules"] if r["id"] != "pt-no-tinted-lenses"]
    if approval_policy:
        body["spec"]["approval"] = approval_policy
    return SmartContract.model_validate(body)


def _sign(
    contract: SmartContract, badge: str, act: approval.Act, authority: str, at: datetime = NOW
) -> approval.Signature:
    methods = ("PT",) if authority == approval.LEVEL_3 else ()
    return approval.Signature(
        badge,
        act,
        contract.metadata.name,
        approval.spec_revision(contract),
        authority,
        methods,
        f"c-{badge}",
        at,
    )


def test_an_emergency_goes_out_on_one_level_3_and_is_flagged_until_a_second_person_countersigns() -> None:
    first = approval.gate(
        _penetrant(), None, held={}, planned={}, author=None, now=NOW, bootstrap=SEEDED
    ).record
    changed = _penetrant(emergency=True)
    held = approval.gate(
        changed,
        first,
        held={"pt-1": "a"},
        planned={"pt-1": "b"},
        author=_sign(changed, "B-L3", "authorship", "level-3"),
        now=NOW,
    )
    assert not held.allowed and held.state == approval.PENDING
    # The emergency route: its author, a Level 3, approves alone; it goes out, flagged until countersigned.
    record = approval.approve(held.record, changed, _sign(changed, "B-L3", "approval", approval.LEVEL_3))
    out = approval.gate(changed, record, held={"pt-1": "a"}, planned={"pt-1": "b"}, author=None, now=NOW)
    assert out.allowed and out.state == approval.COUNTERSIGN_DUE
    entry = out.record.find(out.revision)
    assert entry is not None and entry.state(NOW + timedelta(hours=25)) == approval.COUNTERSIGN_OVERDUE
    with pytest.raises(
        approval.ApprovalRefused, match=r"B-L3 wrote revision .*; a second person must approve it"
    ):
        approval.approve(out.record, changed, _sign(changed, "B-L3", "approval", approval.LEVEL_3))
    with pytest.raises(approval.ApprovalRefused, match="needs a Level 3 in PT or the quality manager"):
        approval.approve(out.record, changed, _sign(changed, "B-OP", "approval", "operator"))
    countersigned = approval.approve(
        out.record, changed, _sign(changed, "B-QM", "approval", approval.QUALITY_MANAGER)
    )
    again = countersigned.find(out.revision)
    assert again is not None and again.state(NOW + timedelta(hours=25)) == approval.APPROVED


def test_a_change_is_held_and_its_status_names_who_must_approve() -> None:
    first = approval.gate(
        _penetrant(), None, held={}, planned={}, author=None, now=NOW, bootstrap=SEEDED
    ).record
    changed = _penetrant(approvers=["quality-manager"])
    held = approval.gate(changed, first, held={"pt-1": "a"}, planned={"pt-1": "b"}, author=None, now=NOW)
    assert not held.allowed and "the quality manager" in (held.waiting_for or "")
    assert "author is not proven" in (held.waiting_for or "")
    with pytest.raises(approval.ApprovalRefused, match=r"author of revision .* is not proven"):
        approval.approve(held.record, changed, _sign(changed, "B-QM", "approval", approval.QUALITY_MANAGER))
    item = reconcile.Planned(changed, verdict=held)
    status = reconcile.contract_status(
        item, generation=2, distributed=False, active=None, held={"pt-1": "a"}, now="2026-11-30T10:00:00Z"
    )
    assert status.approval == approval.PENDING and status.revisions == {"pt-1": "a"}
    assert status.approver is not None and "quality manager" in status.approver
    # The QM-only policy of this revision: a Level 3 does not fit it, even with the author proven.
    proven = approval.gate(
        changed,
        first,
        held={"pt-1": "a"},
        planned={"pt-1": "b"},
        author=_sign(changed, "B-A", "authorship", "author"),
        now=NOW,
    )
    with pytest.raises(approval.ApprovalRefused, match="needs the quality manager"):
        approval.approve(proven.record, changed, _sign(changed, "B-L3", "approval", approval.LEVEL_3))


def test_a_first_revision_waits_for_a_second_person_unless_the_floor_is_bootstrapped() -> None:
    contract = _penetrant()
    held = approval.gate(contract, None, held={}, planned={"pt-1": "a"}, author=None, now=NOW)
    assert not held.allowed and held.state == approval.PENDING and held.bootstrapped is None
    assert held.record.pending == held.revision and held.record.distributed is None
    seeded = approval.gate(
        contract, None, held={}, planned={"pt-1": "a"}, author=None, now=NOW, bootstrap=SEEDED
    )
    assert seeded.allowed and seeded.bootstrapped is not None and seeded.bootstrapped.bootstrap == SEEDED
    entry = seeded.record.find(seeded.revision)
    assert entry is not None and entry.first and approval.Revision.from_json(entry.json()) == entry
    # Pending once, a later bootstrap does not let it out: the exception is for a contract never judged.
    late = approval.gate(
        contract, held.record, held={}, planned={"pt-1": "a"}, author=None, now=NOW, bootstrap=SEEDED
    )
    assert not late.allowed and late.bootstrapped is None
    # Stations holding exactly the plan already (a floor from before approvals were kept): adopted.
    adopted = approval.gate(contract, None, held={"pt-1": "a"}, planned={"pt-1": "a"}, author=None, now=NOW)
    assert adopted.allowed and adopted.bootstrapped is None
