"""SMART-ID signs approvals from its own records: the quality manager's role, a current Level 3."""

from __future__ import annotations

import pytest

from smart.access.verify import Verifier
from smart.contracts import approval
from smart.hub.vault import contract_signatures
from smart.hub.vault.smartid import SmartId, VaultError
from tests.access.conftest import NOW
from tests.access.test_smartid import add_inspector

REVISION = "ab" * 32


def test_smart_id_signs_an_approval_only_for_an_authority_its_records_show(smartid: SmartId) -> None:
    smartid.add_person(
        employee_id="E-1", name="Quinn Quality", badge_id="B-QM", roles=["quality_manager"], actor="admin"
    )
    add_inspector(smartid)  # a Level 2 in PT: may write a revision, not approve one
    verifier = Verifier(keys={smartid.key.key_id: smartid.key.verifying}, revocations={})
    issued = contract_signatures.sign(
        smartid, "E-1", act="approval", contract="penetrant", revision=REVISION, actor="E-1"
    )
    signature = approval.read_signature(
        issued.token, verifier=verifier, now=NOW, act="approval", contract="penetrant", revision=REVISION
    )
    assert (signature.badge, signature.authority) == ("B-QM", approval.QUALITY_MANAGER)
    with pytest.raises(VaultError, match="needs the quality manager's role or a current Level 3"):
        contract_signatures.sign(
            smartid, "E-1001", act="approval", contract="penetrant", revision=REVISION, actor="x"
        )
    authored = contract_signatures.sign(
        smartid, "E-1001", act="authorship", contract="penetrant", revision=REVISION, actor="E-1001"
    )
    assert authored.credential.scope["authority"] == "author"
    with pytest.raises(VaultError, match="expected the full 64-character"):
        contract_signatures.sign(
            smartid, "E-1", act="approval", contract="penetrant", revision="abc", actor="E-1"
        )
