"""How fast a station verifies credentials offline, beside the bare Ed25519 check it rests on.

Both figures come from the same run on the same token: a full verification
(parse, key lookup, signature, claims, time window, revocation-list lookup
in a list of ``revoked`` entries, station) and a bare signature verification
of the same signing input with the same public key. The gap is what the
token format and the checks cost.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from smart.access import issuing, tokens
from smart.access.credential import Credential, Kind, Reason, Revocation
from smart.access.verify import Verifier
from smart.keys import SigningKey


@dataclass(frozen=True, slots=True)
class Figures:
    verifications_per_s: float
    bare_signature_verifications_per_s: float
    verifications: int
    revocation_list_entries: int


def measure(*, verifications: int = 5000, revoked: int = 10_000) -> Figures:
    key = SigningKey.generate("smart-id")
    now = datetime.now(UTC)
    credential = issuing.new_credential(
        subject="B-0042",
        kind=Kind.CERTIFIED,
        scope={"method": "PT", "level": "2", "scheme": "NAS410"},
        now=now,
        expires_at=now + timedelta(days=365),
        issuer_key_id=key.key_id,
    )
    token = tokens.sign(credential, key)
    revocations = {
        cid: Revocation(cid, Reason.REVOKED, now) for cid in (str(uuid.uuid4()) for _ in range(revoked))
    }
    verifier = Verifier(keys={key.key_id: key.verifying}, revocations=revocations)
    if not isinstance(verifier.verify(token, now=now, station="pt-1"), Credential):
        raise RuntimeError("benchmark token did not verify")
    start = time.perf_counter()
    for _ in range(verifications):
        verifier.verify(token, now=now, station="pt-1")
    full = time.perf_counter() - start
    message, signature = tokens.signing_input(token)
    public = key.verifying
    if not public.verify(signature, message):
        raise RuntimeError("benchmark signature did not verify bare")
    start = time.perf_counter()
    for _ in range(verifications):
        public.verify(signature, message)
    bare = time.perf_counter() - start
    return Figures(
        verifications_per_s=verifications / full,
        bare_signature_verifications_per_s=verifications / bare,
        verifications=verifications,
        revocation_list_entries=revoked,
    )
