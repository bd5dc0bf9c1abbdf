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

import nats.errors

from smart.contracts import approval, kube_approval
from smart.hub.compliance.approve_page import Approver
from smart.settings import Settings


async def on_embedded_floor(name: str, revision: str, token: str, *, settings: Settings) -> list[str]:
    """The embedded driver approves and distributes (what ``smart contract approve`` runs)."""
    from smart.embedded import driver  # only a hub beside an embedded floor imports the driver

    try:
        applied = await driver.approve(name, revision, token, settings)
    except (OSError, nats.errors.Error) as err:  # no floor here, or this hub may not sign in as its driver
        raise approval.ApprovalRefused(
            # Not the URL: a chart's carries the user's password.
            f"the embedded floor's driver could not be reached ({type(err).__name__}); "
            "on Kubernetes set SMART_CONTRACT_APPROVAL_NAMESPACE"
        ) from err
    return [f"{a.kind.lower()}/{a.name} {a.outcome}" for a in applied]


async def on_kubernetes(name: str, revision: str, token: str, *, namespace: str) -> list[str]:
    """A ContractApproval in ``namespace``; the operator's verdict (refusals raise ``ApprovalRefused``)."""
    said = await asyncio.to_thread(kube_approval.request, name, revision, token, namespace)
    return [said]


def for_settings(settings: Settings) -> Approver:
    """The approver of the floor these settings serve: the operator's namespace, else the embedded floor."""
    if settings.contract_approval_namespace:
        return functools.partial(on_kubernetes, namespace=settings.contract_approval_namespace)
    return functools.partial(on_embedded_floor, settings=settings)
