"""The second person's page: approve a contract's pending revision with a signature SMART-ID makes.

``/policy/contracts/{name}/approve`` shows the pending revision's diff against the one in force
(rules matched by id), who wrote it and who must approve it, and an Approve button. The button
asks SMART-ID, for the signed-in login's person, for an approval signature on that exact revision
(:func:`smart.hub.vault.contract_signatures.sign`: the authority comes from SMART-ID's records,
never from the form), then hands that token to the floor's approver, the same call ``smart
contract approve`` makes: the driver verifies it against the pinned ``smart-id`` key, records
``contract.approved`` and distributes. Refused, changing nothing and saying why: the revision's
author, a person whose records give no approving authority (or none the contract names), a login
not tied to a person, and a revision that is no longer the pending one (a stale page).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission
from smart.contracts import approval, history
from smart.hub.vault import contract_signatures
from smart.hub.vault.logins import Login
from smart.hub.vault.smartid import SmartId, VaultError
from smart.hub.web.auth import TEMPLATES, Guard, form_fields

log = structlog.get_logger("smart.hub.compliance")

#: The floor's approver: (contract, revision, SMART-ID token) → what it did, as lines; raises
#: :class:`~smart.contracts.approval.ApprovalRefused`. The embedded floor's is ``driver.approve``.
Approver = Callable[[str, str, str], Awaitable[list[str]]]
#: Where the two-person records are (the hub's ``contract-approvals`` bucket).
Approvals = Callable[[], Awaitable[approval.KvApprovalStore]]
_COUNTERSIGN = (approval.COUNTERSIGN_DUE, approval.COUNTERSIGN_OVERDUE)


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def awaiting(record: approval.Record, now: datetime) -> approval.Revision | None:
    """The revision waiting for a signature: the pending one, else an emergency in force to countersign."""
    if record.pending and (entry := record.find(record.pending)) is not None:
        return entry
    in_force = record.find(record.distributed) if record.distributed else None
    if in_force is not None and in_force.state(now) in _COUNTERSIGN:
        return in_force
    return None


def pending_view(record: approval.Record, now: datetime) -> dict[str, Any] | None:
    """The revision awaiting a signature as the page shows it (None: nothing waits for one)."""
    entry = awaiting(record, now)
    if entry is None:
        return None
    countersign = entry.revision == record.distributed
    if countersign:  # a countersigner reviews the change against what was in force before the emergency
        earlier = [r for r in record.revisions if r.distributed is not None and r.revision != entry.revision]
        in_force = max(earlier, key=lambda r: r.distributed or r.submitted) if earlier else None
    else:
        in_force = record.find(record.distributed) if record.distributed else None
    state = entry.state(now)
    return {
        "revision": entry.revision,
        "author": entry.author.badge if entry.author else None,
        "submitted": entry.submitted.isoformat(timespec="seconds"),
        "emergency": entry.emergency,
        "countersign": countersign,
        "state": state,
        "approved_by": [a.badge for a in entry.approvals],
        "due": (entry.approvals[0].at + approval.COUNTERSIGN_WITHIN).isoformat(timespec="minutes")
        if countersign and entry.approvals
        else None,
        "in_force": in_force.revision if in_force else None,
        "diff": history.changes(in_force.spec, entry.spec)
        if in_force
        else [f"+ rule {r.get('id')} ({r.get('kind')})" for r in entry.spec.get("rules", [])],
    }


def router(
    guard: Guard,
    *,
    smartid: SmartId,
    approvals: Approvals,
    approve: Approver | None,
    clock: Callable[[], datetime] = _wall_clock,
) -> APIRouter:
    """``GET`` and ``POST /policy/contracts/{name}/approve``; without ``approve`` the page only shows.

    The same page takes an emergency revision's countersignature: while one Level 3's approval alone
    put it in force (``CountersignDue``, ``CountersignOverdue`` at ``clock``), it is the one shown.
    """
    routes = APIRouter()
    read = guard.requires(Permission.RECORDS_READ)

    async def _page(
        request: Request,
        name: str,
        login: Login,
        *,
        error: str | None = None,
        done: list[str] | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        record = await (await approvals()).get(name)
        if record is None:
            raise HTTPException(status_code=404, detail=f"no contract {name} on this hub")
        return TEMPLATES.TemplateResponse(
            request,
            "compliance/approve.html",
            {
                "page": f"Approve {name}",
                "login": login,
                "contract": name,
                "pending": pending_view(record, clock()),
                "in_force": record.distributed,
                "refusal": error,
                "done": done,
                "can_approve": approve is not None,
            },
            status_code=status,
        )

    @routes.get("/policy/contracts/{name}/approve", response_class=HTMLResponse, include_in_schema=False)
    async def approve_page(request: Request, name: str, login: Login = Depends(read)) -> HTMLResponse:
        """The pending revision, its author and diff, and the Approve button."""
        return await _page(request, name, login)

    @routes.post("/policy/contracts/{name}/approve", response_class=HTMLResponse, include_in_schema=False)
    async def approve_form(request: Request, name: str, login: Login = Depends(read)) -> HTMLResponse:
        """The signed-in person approves the revision the page showed, signed by SMART-ID for them."""
        revision = (await form_fields(request)).get("revision", "")
        record = await (await approvals()).get(name)
        try:
            if approve is None:
                raise approval.ApprovalRefused(
                    "this hub does not distribute contracts; approve with smart contract approve"
                )
            waiting = awaiting(record, clock()) if record is not None else None
            if waiting is None or waiting.revision != revision:
                shown = record.pending[:12] if record and record.pending else "none"
                raise approval.ApprovalRefused(
                    f"revision {revision[:12] or '(none)'} of {name} is no longer the pending one "
                    f"(pending: {shown}); the page was stale, look again"
                )
            if login.employee_id is None:
                raise approval.ApprovalRefused(
                    f"login {login.username} is tied to no person in SMART-ID, so it cannot sign"
                )
            employee = login.employee_id
            issued = await run_in_threadpool(
                lambda: contract_signatures.sign(
                    smartid, employee, act="approval", contract=name, revision=revision, actor=login.username
                )
            )
            done = await approve(name, revision, issued.token)
        except (approval.ApprovalRefused, VaultError) as err:
            message = str(err).splitlines()[0]
            log.warning(
                "contract approval refused",
                contract=name,
                revision=revision[:12],
                login=login.username,
                error=message,
            )
            return await _page(request, name, login, error=message, status=409)
        log.info(
            "contract approved on the hub page", contract=name, revision=revision[:12], login=login.username
        )
        return await _page(request, name, login, done=done)

    return routes
