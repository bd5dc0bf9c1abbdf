"""SMART-ID signatures on contract revisions, made in tests as SMART-ID makes them (its key, its scope)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from smart.access import tokens
from smart.access.credential import Kind
from smart.access.issuing import new_credential
from smart.contracts import approval
from smart.keys import SigningKey


def signature(
    key: SigningKey,
    *,
    badge: str,
    act: approval.Act,
    contract: str,
    revision: str,
    authority: str = approval.LEVEL_3,
    methods: Sequence[str] = ("PT",),
) -> str:
    now = datetime.now(UTC)
    credential = new_credential(
        subject=badge,
        kind=Kind.UTILITY,
        scope=approval.scope_for(
            act=act,
            contract=contract,
            revision=revision,
            authority=authority,
            methods=methods if authority == approval.LEVEL_3 else (),
        ),
        now=now - timedelta(minutes=1),
        expires_at=now + timedelta(hours=1),
        issuer_key_id=key.key_id,
    )
    return tokens.sign(credential, key)
