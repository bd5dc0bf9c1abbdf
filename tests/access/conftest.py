"""Shared helpers for the access tests: an issuer key and credentials built the way SMART-ID builds them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import pytest

from smart.access import tokens
from smart.access.credential import Credential, Kind
from smart.keys import SigningKey

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)

Issue = Callable[..., tuple[Credential, str]]


@pytest.fixture
def issuer() -> SigningKey:
    return SigningKey.generate("smart-id")


@pytest.fixture
def issue(issuer: SigningKey) -> Issue:
    def make(
        kind: Kind = Kind.CERTIFIED,
        scope: Mapping[str, str] | None = None,
        *,
        subject: str = "B-0042",
        not_before: datetime = NOW - timedelta(days=30),
        expires_at: datetime = NOW + timedelta(days=300),
        key: SigningKey | None = None,
    ) -> tuple[Credential, str]:
        signer = key or issuer
        credential = Credential(
            credential_id=str(uuid.uuid4()),
            subject=subject,
            kind=kind,
            scope=scope or {"method": "PT", "level": "2", "scheme": "NAS410"},
            issued_at=not_before,
            not_before=not_before,
            expires_at=expires_at,
            issuer_key_id=signer.key_id,
        )
        return credential, tokens.sign(credential, signer)

    return make
