"""SMART-ID signs a person's authorship or approval of one contract revision, from what its records say.

The two-person rule (:mod:`smart.contracts.approval`) trusts only a signature SMART-ID made: a
``utility`` credential whose scope names the act, the contract, the revision and the authority it
was issued on. SMART-ID decides that authority here, from its own records, never from what the
asker claims: the SMART-ID role ``quality_manager`` gives ``quality-manager``; a current Level 3
certification (the records' standing, eye exams and currency included) gives ``level-3`` in
its methods. An approval by someone holding neither is refused. The signature is short-lived
(an hour by default) and, like every credential, on the ledger and revocable.
"""

from __future__ import annotations

from datetime import timedelta

from smart.access.credential import Kind
from smart.contracts import approval
from smart.hub.vault.smartid import IssuedCredential, SmartId, VaultError

QUALITY_MANAGER_ROLE = "quality_manager"


def authority_of(smartid: SmartId, employee_id: str) -> tuple[str, tuple[str, ...]] | None:
    """The approving authority SMART-ID's records give this person now, with its methods (None: none)."""
    person = smartid.person(employee_id)
    if QUALITY_MANAGER_ROLE in person.roles:
        return approval.QUALITY_MANAGER, ()
    methods = sorted(
        {
            str(s.scope.get("method"))
            for s in smartid.standings(employee_id)
            if s.kind is Kind.CERTIFIED and s.current and s.scope.get("level") == "3"
        }
    )
    return (approval.LEVEL_3, tuple(methods)) if methods else None


def sign(
    smartid: SmartId,
    employee_id: str,
    *,
    act: approval.Act,
    contract: str,
    revision: str,
    actor: str,
    valid_for: timedelta = timedelta(hours=1),
) -> IssuedCredential:
    """The person's signature on ``revision`` of ``contract``; :class:`VaultError` when they may not."""
    if len(revision) != 64 or any(c not in "0123456789abcdef" for c in revision):
        raise VaultError(f"revision {revision!r}: expected the full 64-character contract revision")
    found = authority_of(smartid, employee_id)
    if found is None and act == "approval":
        raise VaultError(
            f"cannot sign for {employee_id}: approving a contract revision needs the quality manager's role "
            "or a current Level 3 certification, and the records show neither"
        )
    authority, methods = found or ("author", ())
    scope = approval.scope_for(
        act=act, contract=contract, revision=revision, authority=authority, methods=methods
    )
    return smartid.issue(employee_id, kind=Kind.UTILITY, scope=scope, actor=actor, valid_for=valid_for)
