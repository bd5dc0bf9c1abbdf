"""May the badge just scanned do this here, now? Offline verification and permits in one answer.

A station holds, per badge, the tokens SMART-ID issued (its ``access-station-<id>``
bucket). Admission verifies each with the station's mirrored keys and
revocation list, then asks the permits whether the verified ones allow the
action; a trainee's supervisor presents their badge too. When the answer is
no, every reason is kept — the refused tokens' (an expired eye exam shows as
the certified credential's expiry) and the permit's — so the kiosk can say why.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from smart.access import permits
from smart.access.credential import Credential, Refusal
from smart.access.verify import Verifier


def _verified(
    tokens: Sequence[str], verifier: Verifier, now: datetime, station: str
) -> tuple[list[Credential], list[Refusal]]:
    good: list[Credential] = []
    refused: list[Refusal] = []
    for token in tokens:
        outcome = verifier.verify(token, now=now, station=station)
        if isinstance(outcome, Credential):
            good.append(outcome)
        else:
            refused.append(outcome)
    return good, refused


def admit(
    action: str,
    *,
    badge: str,
    tokens: Sequence[str],
    verifier: Verifier,
    now: datetime,
    station: str,
    method: str | None = None,
    equipment: str | None = None,
    supervisor_badge: str | None = None,
    supervisor_tokens: Sequence[str] = (),
) -> permits.Permit:
    """The permit for ``badge`` (presenting ``tokens``) to do ``action`` at ``station`` at ``now``."""
    presented, refused = _verified(tokens, verifier, now, station)
    strangers = [c for c in presented if c.subject != badge]
    presented = [c for c in presented if c.subject == badge]
    helper, helper_refused = _verified(supervisor_tokens, verifier, now, station)
    helper = [c for c in helper if supervisor_badge is not None and c.subject == supervisor_badge]
    permit = permits.authorise(
        action, presented=presented, station=station, method=method, equipment=equipment, supervisor=helper
    )
    if permit.allowed:
        return permit
    reasons = [
        *permit.reasons,
        *(str(r) for r in refused),
        *(f"supervisor's {r}" for r in helper_refused),
        *(f"credential {c.credential_id} belongs to badge {c.subject}, not {badge}" for c in strangers),
    ]
    return permits.Permit(action, False, tuple(reasons), permit.credential_ids)
