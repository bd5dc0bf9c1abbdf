"""Shared helpers for the access tests: an issuer key and credentials built the way SMART-ID builds them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smart import ledger
from smart.access import tokens
from smart.access.credential import Credential, Kind
from smart.hub.vault.smartid import SmartId
from smart.keys import KeyStore, SigningKey
from smart.testing.plugin import FreshDatabase

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


@pytest.fixture
def smart_id_log(tmp_path: Path) -> Iterator[ledger.NodeLog]:
    with ledger.NodeLog.open(
        tmp_path / "ledger", node="smart-id", keys=KeyStore(tmp_path / "keys")
    ) as node_log:
        yield node_log


@pytest.fixture
def smartid(database: FreshDatabase, smart_id_log: ledger.NodeLog, tmp_path: Path) -> SmartId:
    key = KeyStore(tmp_path / "keys").signing_key("smart-id")
    return SmartId(database.url, key=key, ledger=smart_id_log, clock=lambda: NOW)
