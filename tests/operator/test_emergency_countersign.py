"""An emergency revision on Kubernetes: out on one Level 3's approval, then countersigned from the hub.

kmock for the API server, the real operator, a real NATS floor. A Level 3 in PT edits a contract
marked ``emergency`` and approves it alone (its author: the emergency route); the operator
distributes it at once and the status says ``CountersignDue``. The author cannot countersign; the
quality manager's countersignature goes through the hub page's Kubernetes approver (a
ContractApproval the operator judges, as ``smart hub run`` with ``contract_approval_namespace``
creates it), and the status says ``Approved``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from smart.contracts import approval
from smart.hub.compliance import approvers
from tests.operator import approvals
from tests.operator.conftest import CONTRACTS, NS, STATIONS, Api, eventually
from tests.operator.test_operator import CONTRACT, STATIONS_ON_FLOOR, distributed


async def _state(api: Api, name: str, wanted: str) -> dict[str, Any] | None:
    obj = await api.get(f"{CONTRACTS}/{name}")
    return obj if (obj or {}).get("status", {}).get("approval") == wanted else None


async def test_an_emergency_goes_out_on_one_level_3_and_the_hub_countersigns_it_through_the_operator(
    operator: Api, tmp_path: Path
) -> None:
    api, keys = operator, tmp_path / "keys"
    for body in STATIONS_ON_FLOOR:
        await api.call("POST", STATIONS, body)
    await api.call("POST", CONTRACTS, copy.deepcopy(CONTRACT))  # seeded on the bootstrap
    await eventually(lambda: distributed(api, "floor-basics", 1, 4))

    spec = copy.deepcopy(CONTRACT["spec"])
    spec["approval"] = {"emergency": True}
    spec["rules"][1]["limits"] = {"min": 1200}
    revision = await approvals.edit(api, keys, "floor-basics", spec, 2, author="B-L3")
    await eventually(lambda: approvals.pending(api, "floor-basics", revision))
    alone = await approvals.approve(
        api, keys, "floor-basics", revision, "B-L3", authority=approval.LEVEL_3, methods=("PT",)
    )
    assert alone["status"]["accepted"] == "True", alone["status"]
    due = await eventually(lambda: _state(api, "floor-basics", approval.COUNTERSIGN_DUE))
    assert due["status"].get("pendingRevision") in (None, "")
    await eventually(lambda: distributed(api, "floor-basics", 2, 4))

    def signed(badge: str, authority: str) -> str:
        return approvals.signature(
            approvals.smart_id(keys),
            badge=badge,
            act="approval",
            contract="floor-basics",
            revision=revision,
            authority=authority,
            methods=("PT",),
        )

    with pytest.raises(approval.ApprovalRefused, match=r"badge B-L3 wrote revision \w+"):
        await approvers.on_kubernetes(
            "floor-basics", revision, signed("B-L3", approval.LEVEL_3), namespace=NS
        )
    said = await approvers.on_kubernetes(
        "floor-basics", revision[:12], signed("B-QM", approval.QUALITY_MANAGER), namespace=NS
    )
    assert said and "accepted" in said[0] and revision[:12] in said[0]
    done = await eventually(lambda: _state(api, "floor-basics", approval.APPROVED))
    assert done["status"]["observedGeneration"] == 2
