"""The reference contracts `smart up` applies stay in force: a window about to close fails here first.

A contract past its ``notAfter`` leaves its stations refusing everything
("no valid contract"), which is right for a shop and baffling for a
newcomer's first ``make up``. This test reads today's date on purpose, as a
certificate monitor does: it fails 60 days before a reference window closes,
naming the contract, so the window is renewed while the floor still works.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from smart.contracts import manifests
from smart.contracts.models import SmartContract

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
NOTICE = timedelta(days=60)


def test_every_reference_contract_window_is_open_today_and_for_60_more_days() -> None:
    now = datetime.now(UTC)
    closing = {}
    checked = 0
    for loaded in manifests.load([CONTRACTS]):
        contract = loaded.manifest
        if not isinstance(contract, SmartContract):
            continue
        checked += 1
        window = contract.spec.window
        if window is None:
            continue
        if window.not_before is not None and window.not_before > now:
            closing[contract.metadata.name] = f"not in force until {window.not_before.isoformat()}"
        if window.not_after is not None and window.not_after - NOTICE < now:
            closing[contract.metadata.name] = f"window closes {window.not_after.isoformat()}: renew it"
    assert checked == 6
    assert closing == {}, closing
