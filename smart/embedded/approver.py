"""The embedded floor's contract approver for a hub's approval page (what ``smart contract approve`` runs).

It lives beside the driver, not in the hub: the hub never imports the embedded runtime; the command
that starts a hub beside an embedded floor (``smart hub run``) hands it in.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import nats.errors

from smart.contracts import approval
from smart.settings import Settings


async def on_embedded_floor(name: str, revision: str, token: str, *, settings: Settings) -> list[str]:
    """The embedded driver approves and distributes (what ``smart contract approve`` runs)."""
    from smart.embedded import driver  # only a hub beside an embedded floor imports the driver

    try:
        # One try, said at once: the person waits on the page (nats-py's own retries take ~2 minutes).
        applied = await driver.approve(name, revision, token, settings, wait_for_floor=False)
    except (OSError, nats.errors.Error) as err:  # no floor here, or this hub may not sign in as its driver
        where = urlsplit(driver.hub_url(settings))  # host and port only: a chart's URL carries a password
        raise approval.ApprovalRefused(
            f"no floor took the approval: the embedded floor's NATS at {where.hostname}:{where.port} "
            f"did not answer or refused this hub ({type(err).__name__}); nothing was approved. "
            "Start the floor (smart up) and approve again; "
            "on Kubernetes set SMART_CONTRACT_APPROVAL_NAMESPACE"
        ) from err
    return [f"{a.kind.lower()}/{a.name} {a.outcome}" for a in applied]
