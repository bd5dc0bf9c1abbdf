"""The hub's Kubernetes approver needs exactly the Vault's Role: create and get ContractApprovals.

The chart gives the Vault's service account (``<release>-hub-approvals``) create, get and list of
``contractapprovals`` and nothing else; the approval page names the full pending revision it read
from the approvals record. Here the emulated API server refuses every read of the SmartContract,
as RBAC would: the approval is still created, carrying the signature, and the operator's verdict
(written here as the operator writes it) comes back to the page.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest

from smart.contracts import approval
from smart.hub.compliance import approvers
from tests.operator.conftest import CONTRACTS, NS, Api, VersionedEmulator, declare, eventually

APPROVALS = f"/apis/smart.aero/v1alpha1/namespaces/{NS}/contractapprovals"
REVISION = hashlib.sha256(b"floor-basics, revision 2").hexdigest()


async def _nothing_to_stop() -> None:
    """No operator runs here: the test writes the verdict itself."""


async def _created(api: Api, asking: asyncio.Task[list[str]]) -> dict[str, Any] | None:
    if asking.done():  # refused before creating anything: say why now, not at the deadline
        raise AssertionError(f"no ContractApproval was created: {asking.exception()!r}")
    items = await api.items(APPROVALS)
    return items[0] if items else None


async def test_the_page_approver_creates_the_approval_without_reading_smartcontracts(
    kmock: VersionedEmulator,
) -> None:
    declare(kmock)
    kmock.refuse("GET", f"{CONTRACTS}/floor-basics")  # the Vault's Role: no SmartContract read
    api = Api(str(kmock.url), stop=_nothing_to_stop)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SMART_KUBE_SERVER", str(kmock.url))
        asking = asyncio.create_task(
            approvers.on_kubernetes("floor-basics", REVISION, "signed", namespace=NS)
        )
        created = await eventually(lambda: _created(api, asking))
        assert created["spec"] == {"contract": "floor-basics", "revision": REVISION, "credential": "signed"}
        name = created["metadata"]["name"]
        await api.call(
            "PATCH",
            f"{APPROVALS}/{name}/status",
            {"status": {"accepted": "True", "message": f"revision {REVISION[:12]} approved by B-QM"}},
        )
        said = await asyncio.wait_for(asking, 120)
    assert said == [f"contractapproval/{name} accepted: revision {REVISION[:12]} approved by B-QM"]


async def test_a_short_revision_still_needs_the_smartcontract_and_says_so_when_refused(
    kmock: VersionedEmulator,
) -> None:
    declare(kmock)
    kmock.refuse("GET", f"{CONTRACTS}/floor-basics")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SMART_KUBE_SERVER", str(kmock.url))
        with pytest.raises(
            approval.ApprovalRefused, match="no SmartContract floor-basics in namespace smart"
        ):
            await approvers.on_kubernetes("floor-basics", REVISION[:12], "signed", namespace=NS)
