"""The two-person rule as kubectl users meet it: an edit with its author's signature, a ContractApproval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smart.contracts import approval
from smart.contracts.models import AUTHOR_ANNOTATION, SmartContract
from smart.keys import KeyStore, SigningKey
from tests.contracts.signatures import signature

__all__ = ["APPROVALS", "approve", "edit", "edit_and_approve", "pending", "signature", "smart_id"]
from tests.operator.conftest import CONTRACTS, NS, Api, eventually

APPROVALS = f"/apis/smart.aero/v1alpha1/namespaces/{NS}/contractapprovals"


def smart_id(keys: Path) -> SigningKey:
    """SMART-ID's key, provisioned in the operator's key directory (its public half is what is pinned)."""
    return KeyStore(keys).signing_key(approval.SMART_ID_KEY)


def revision_of(name: str, spec: dict[str, Any]) -> str:
    body = {"apiVersion": "smart.aero/v1alpha1", "kind": "SmartContract", "metadata": {"name": name}}
    return approval.spec_revision(SmartContract.model_validate({**body, "spec": spec}))


async def edit(api: Api, keys: Path, name: str, spec: dict[str, Any], generation: int, author: str) -> str:
    """Patch the contract's spec with its author's signature on the new revision; returns the revision."""
    revision = revision_of(name, spec)
    token = signature(smart_id(keys), badge=author, act="authorship", contract=name, revision=revision)
    await api.call(
        "PATCH",
        f"{CONTRACTS}/{name}",
        {"spec": spec, "metadata": {"generation": generation, "annotations": {AUTHOR_ANNOTATION: token}}},
    )
    return revision


async def pending(api: Api, name: str, revision: str) -> dict[str, Any] | None:
    obj = await api.get(f"{CONTRACTS}/{name}")
    status = (obj or {}).get("status", {})
    return (
        obj
        if status.get("approval") == "PendingApproval" and status.get("pendingRevision") == revision
        else None
    )


async def approve(
    api: Api,
    keys: Path,
    name: str,
    revision: str,
    badge: str,
    *,
    authority: str = approval.QUALITY_MANAGER,
    methods: tuple[str, ...] = (),
    token: str | None = None,
) -> dict[str, Any]:
    """Create a ContractApproval signed by ``badge``; returns it once the operator has judged it."""
    credential = token or signature(
        smart_id(keys),
        badge=badge,
        act="approval",
        contract=name,
        revision=revision,
        authority=authority,
        methods=methods,
    )
    object_name = f"{name}-{revision[:8]}-{badge.lower()}"
    await api.call(
        "POST",
        APPROVALS,
        {
            "apiVersion": "smart.aero/v1alpha1",
            "kind": "ContractApproval",
            "metadata": {"name": object_name, "namespace": NS},
            "spec": {"contract": name, "revision": revision, "credential": credential},
        },
    )

    async def judged() -> dict[str, Any] | None:
        obj = await api.get(f"{APPROVALS}/{object_name}")
        return obj if (obj or {}).get("status", {}).get("accepted") in ("True", "False") else None

    found: dict[str, Any] = await eventually(judged)
    return found


async def edit_and_approve(api: Api, keys: Path, name: str, spec: dict[str, Any], generation: int) -> str:
    """What a change needs now: its author's edit, held, then the quality manager's approval."""
    revision = await edit(api, keys, name, spec, generation, "B-AUTHOR")
    await eventually(lambda: pending(api, name, revision))
    judged = await approve(api, keys, name, revision, "B-QM")
    assert judged["status"]["accepted"] == "True", judged["status"]
    return revision
