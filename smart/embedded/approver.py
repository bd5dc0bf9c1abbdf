"""The embedded floor's contract approver for a hub's approval page (what ``smart contract approve`` runs).

It lives beside the driver, not in the hub: the hub never imports the embedded runtime; the command
that starts a hub beside an embedded floor (``smart hub run``) hands it in.
"""

from __future__ import annotations

import nats.errors

from smart.contracts import approval
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
