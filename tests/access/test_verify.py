"""Offline verification at a station: every kind verifies when good, and is refused with a reason."""

from __future__ import annotations

from datetime import timedelta

import pytest

from smart.access import Credential, Kind, Reason, Refusal, Revocation, Verifier
from smart.keys import SigningKey, VerifyingKey
from tests.access.conftest import NOW, Issue

SCOPES = {
    Kind.ACCESS: {"station": "pt-1"},
    Kind.AUDIT: {"audit": "nadcap-ac7114"},
    Kind.CERTIFIED: {"method": "PT", "level": "2", "scheme": "NAS410"},
    Kind.TRAINING: {"course": "pt-process", "method": "PT"},
    Kind.SAFETY: {"course": "uv-safety"},
    Kind.UTILITY: {"equipment": "F-3"},
}

every_kind = pytest.mark.parametrize("kind", list(Kind), ids=[k.value for k in Kind])


def station(issuer: SigningKey, revoked: dict[str, Revocation] | None = None, skew_s: int = 120) -> Verifier:
    keys: dict[str, VerifyingKey] = {issuer.key_id: issuer.verifying}
    return Verifier(keys=keys, revocations=revoked or {}, clock_skew=timedelta(seconds=skew_s))


def refused(outcome: Credential | Refusal, reason: Reason) -> Refusal:
    assert isinstance(outcome, Refusal), f"expected a refusal ({reason}), the station accepted {outcome}"
    assert outcome.reason is reason, str(outcome)
    return outcome


@every_kind
def test_issued_credential_of_every_kind_verifies_offline_at_its_station(
    kind: Kind, issue: Issue, issuer: SigningKey
) -> None:
    credential, token = issue(kind, SCOPES[kind])
    outcome = station(issuer).verify(token, now=NOW, station="pt-1")
    assert outcome == credential
    assert isinstance(outcome, Credential) and outcome.kind is kind and dict(outcome.scope) == SCOPES[kind]


@every_kind
def test_expired_credential_is_refused_as_expired(kind: Kind, issue: Issue, issuer: SigningKey) -> None:
    _, token = issue(kind, SCOPES[kind], expires_at=NOW - timedelta(minutes=10))
    refusal = refused(station(issuer).verify(token, now=NOW, station="pt-1"), Reason.EXPIRED)
    assert "expired at" in refusal.detail


@every_kind
def test_credential_not_yet_valid_is_refused_as_not_yet_valid(
    kind: Kind, issue: Issue, issuer: SigningKey
) -> None:
    _, token = issue(kind, SCOPES[kind], not_before=NOW + timedelta(hours=1))
    refused(station(issuer).verify(token, now=NOW, station="pt-1"), Reason.NOT_YET_VALID)


@every_kind
def test_revoked_credential_is_refused_as_revoked(kind: Kind, issue: Issue, issuer: SigningKey) -> None:
    credential, token = issue(kind, SCOPES[kind])
    revoked = {
        credential.credential_id: Revocation(
            credential.credential_id, Reason.REVOKED, NOW - timedelta(hours=1)
        )
    }
    refused(station(issuer, revoked).verify(token, now=NOW, station="pt-1"), Reason.REVOKED)


@every_kind
def test_credential_signed_by_a_key_the_station_does_not_hold_is_refused_as_unknown_key(
    kind: Kind, issue: Issue, issuer: SigningKey
) -> None:
    _, token = issue(kind, SCOPES[kind], key=SigningKey.generate("smart-id"))
    refused(station(issuer).verify(token, now=NOW, station="pt-1"), Reason.UNKNOWN_KEY)


@every_kind
@pytest.mark.parametrize("part", ["payload", "signature"])
def test_credential_with_one_byte_changed_is_refused_as_bad_signature(
    kind: Kind, part: str, issue: Issue, issuer: SigningKey
) -> None:
    _, token = issue(kind, SCOPES[kind])
    head, payload, signature = token.split(".")
    segments = {"payload": payload, "signature": signature}
    target = segments[part]
    index = len(target) // 2
    segments[part] = target[:index] + ("A" if target[index] != "A" else "B") + target[index + 1 :]
    tampered = ".".join([head, segments["payload"], segments["signature"]])
    refused(station(issuer).verify(tampered, now=NOW, station="pt-1"), Reason.BAD_SIGNATURE)


def test_suspended_credential_is_refused_as_suspended(issue: Issue, issuer: SigningKey) -> None:
    credential, token = issue()
    suspended = {
        credential.credential_id: Revocation(credential.credential_id, Reason.SUSPENDED, NOW, "eye exam")
    }
    refusal = refused(station(issuer, suspended).verify(token, now=NOW, station="pt-1"), Reason.SUSPENDED)
    assert "eye exam" in refusal.detail


def test_access_credential_for_pt_1_is_refused_at_mt_1(issue: Issue, issuer: SigningKey) -> None:
    _, token = issue(Kind.ACCESS, {"station": "pt-1"})
    refused(station(issuer).verify(token, now=NOW, station="mt-1"), Reason.WRONG_STATION)


def test_station_clock_a_minute_behind_the_hub_still_accepts_a_fresh_credential(
    issue: Issue, issuer: SigningKey
) -> None:
    _, token = issue(not_before=NOW + timedelta(seconds=60))
    assert isinstance(station(issuer, skew_s=120).verify(token, now=NOW, station="pt-1"), Credential)
    refused(station(issuer, skew_s=30).verify(token, now=NOW, station="pt-1"), Reason.NOT_YET_VALID)


def test_revocation_dated_after_the_work_does_not_undo_a_past_verification(
    issue: Issue, issuer: SigningKey
) -> None:
    credential, token = issue()
    later = {
        credential.credential_id: Revocation(
            credential.credential_id, Reason.REVOKED, NOW + timedelta(days=2)
        )
    }
    assert isinstance(station(issuer, later).verify(token, now=NOW, station="pt-1"), Credential)


@pytest.mark.parametrize("garbage", ["", "not-a-token", "a.b.c", "eyJhbGciOiJub25lIn0.e30."])
def test_garbage_presented_as_a_badge_token_is_refused_as_malformed(garbage: str, issuer: SigningKey) -> None:
    outcome = station(issuer).verify(garbage, now=NOW, station="pt-1")
    assert isinstance(outcome, Refusal) and outcome.reason in (Reason.MALFORMED, Reason.UNKNOWN_KEY)
