"""Who distributes once the approval page holds a second signature: the floor's driver, or the operator.

The page (:mod:`smart.hub.compliance.approve_page`) never decides whether a revision goes out: it
has SMART-ID sign for the signed-in person and hands the token to the approver of the floor this
hub serves. On Kubernetes (``contract_approval_namespace`` set) that is a ContractApproval the
operator verifies (:mod:`smart.contracts.kube_approval`); on an embedded floor it is the driver's
``approve``, the call ``smart contract approve`` makes, which verifies the signature against the
pinned ``smart-id`` key, records ``contract.approved`` and distributes. ``smart up`` sets the
embedded floor's approver itself; ``smart hub run`` takes the one its settings name.
"""

from __future__ import annotations

import asyncio
import functools

from smart.contracts import approval, kube_approval
from smart.hub.compliance.approve_page import Approver
from smart.settings import Settings


async def no_floor_here(name: str, revision: str, token: str) -> list[str]:
    """A hub serving neither a cluster's operator nor an embedded floor it was given: nobody distributes."""
    raise approval.ApprovalRefused(
        "this hub was given no floor to approve on: on Kubernetes set SMART_CONTRACT_APPROVAL_NAMESPACE; "
        "beside an embedded floor run it with `smart hub run` (or `smart contract approve`)"
    )


#: How long the page waits for the operator's verdict: a person is waiting; past it the page says the
#: ContractApproval is kept and how to see the verdict (the operator judges it whenever it runs).
PAGE_PATIENCE_S = 45.0


async def on_kubernetes(name: str, revision: str, token: str, *, namespace: str) -> list[str]:
    """A ContractApproval in ``namespace``; the operator's verdict (refusals raise ``ApprovalRefused``)."""
    said = await asyncio.to_thread(
        kube_approval.request, name, revision, token, namespace, patience_s=PAGE_PATIENCE_S
    )
    return [said]


def for_settings(settings: Settings, *, embedded: Approver | None = None) -> Approver:
    """The approver of the floor these settings serve: the operator's namespace, else the embedded floor.

    The embedded floor's approver (:func:`smart.embedded.approver.on_embedded_floor`) is handed in by
    the command that starts the hub: the hub never imports the embedded driver itself.
    """
    if settings.contract_approval_namespace:
        return functools.partial(on_kubernetes, namespace=settings.contract_approval_namespace)
    return embedded if embedded is not None else no_floor_here
