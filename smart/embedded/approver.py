"""The embedded floor's contract approver for a hub's approval page (what ``smart contract approve`` runs).

It lives beside the driver, not in the hub: the hub never imports the embedded runtime; the command
that starts a hub beside an embedded floor (``smart hub run``) hands it in.
"""

from __future__ import annotations

from smart.contracts import approval
from smart.settings import Settings

#: What a hub's operator does instead when the cluster's operator distributes (the page's advice).
ON_KUBERNETES = "on Kubernetes set SMART_CONTRACT_APPROVAL_NAMESPACE"


async def on_embedded_floor(name: str, revision: str, token: str, *, settings: Settings) -> list[str]:
    """The embedded driver approves and distributes (what ``smart contract approve`` runs).

    The driver tries its floor once (:func:`smart.embedded.driver.connect_at_once`): a person waits
    on the page, and nats-py's own retries take about two minutes.
    """
    from smart.embedded import driver  # only a hub beside an embedded floor imports the driver

    try:
        applied = await driver.approve(name, revision, token, settings)
    except approval.FloorUnreachable as err:  # no floor here, or this hub may not sign in as its driver
        raise err.advising(ON_KUBERNETES) from err
    return [f"{a.kind.lower()}/{a.name} {a.outcome}" for a in applied]
