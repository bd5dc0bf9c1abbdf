"""The hub's people and credentials pages (SMART-ID), and their JSON twins under ``/api/``.

Each route names the permission it needs; issuing, suspending and revoking
act as the signed-in login, so the ledger entry names that person as actor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import structlog
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from smart.access.credential import Kind, parse_scope
from smart.access.roles import Permission, allows
from smart.hub.vault.logins import Login
from smart.hub.vault.smartid import IssuedCredential, SmartId, VaultError
from smart.hub.web.auth import TEMPLATES, Guard, form_fields

log = structlog.get_logger("smart.hub.web.people")


def _summary(c: IssuedCredential) -> dict[str, Any]:
    return {
        "credential_id": c.credential_id,
        "employee_id": c.employee_id,
        "badge_id": c.credential.subject,
        "kind": c.credential.kind.value,
        "scope": dict(c.credential.scope),
        "not_before": c.credential.not_before.isoformat(),
        "expires_at": c.credential.expires_at.isoformat(),
        "status": c.status,
        "status_reason": c.status_reason,
        "issued_by": c.issued_by,
    }


Publish = Callable[[], Awaitable[object]]


def router(smartid: SmartId, guard: Guard, *, publish: Publish | None = None) -> APIRouter:
    """The pages; ``publish`` (e.g. ``vault.publish.publisher(…)``) runs after every credential change,
    so a revocation reaches the stations' buckets at once rather than at the next scheduled publish."""
    routes = APIRouter()

    async def published() -> None:
        if publish is None:
            return
        try:
            await publish()
        except Exception as err:  # the change is made and recorded; the next publish carries it
            log.warning("credentials not published to stations yet", error=type(err).__name__)

    read_people = Depends(guard.requires(Permission.PEOPLE_READ))
    write_people = Depends(guard.requires(Permission.PEOPLE_WRITE))
    read_credentials = Depends(guard.requires(Permission.CREDENTIALS_READ))
    issue = Depends(guard.requires(Permission.CREDENTIALS_ISSUE))
    suspend = Depends(guard.requires(Permission.CREDENTIALS_SUSPEND))
    revoke = Depends(guard.requires(Permission.CREDENTIALS_REVOKE))

    def credentials_page(
        request: Request, login: Login, error: str | None = None, status: int = 200
    ) -> HTMLResponse:
        return TEMPLATES.TemplateResponse(
            request,
            "access/credentials.html",
            {
                "page": "Credentials",
                "login": login,
                "error": error,
                "credentials": smartid.credentials(),
                "kinds": [k.value for k in Kind],
                "may_issue": allows(login.role, Permission.CREDENTIALS_ISSUE),
                "may_suspend": allows(login.role, Permission.CREDENTIALS_SUSPEND),
                "may_revoke": allows(login.role, Permission.CREDENTIALS_REVOKE),
            },
            status_code=status,
        )

    @routes.get("/people", response_class=HTMLResponse)
    async def people_page(request: Request, login: Login = read_people) -> HTMLResponse:
        people = await run_in_threadpool(smartid.people)
        return TEMPLATES.TemplateResponse(
            request,
            "access/people.html",
            {
                "page": "People",
                "login": login,
                "people": people,
                "may_write": allows(login.role, Permission.PEOPLE_WRITE),
            },
        )

    @routes.post("/people")
    async def add_person(request: Request, login: Login = write_people) -> Response:
        fields = await form_fields(request)
        roles = [r.strip() for r in fields.get("roles", "").split(",") if r.strip()]
        try:
            await run_in_threadpool(
                lambda: smartid.add_person(
                    employee_id=fields.get("employee_id", ""),
                    name=fields.get("name", ""),
                    badge_id=fields.get("badge_id", ""),
                    roles=roles,
                    actor=login.username,
                )
            )
        except VaultError as err:
            raise HTTPException(status_code=400, detail=str(err)) from err
        return RedirectResponse("/people", status_code=303)

    @routes.get("/credentials", response_class=HTMLResponse)
    async def credentials_list(request: Request, login: Login = read_credentials) -> HTMLResponse:
        return await run_in_threadpool(credentials_page, request, login)

    @routes.get("/api/credentials")
    async def credentials_api(login: Login = read_credentials) -> list[dict[str, Any]]:
        """Every credential with its status (tokens are not listed)."""
        return [_summary(c) for c in await run_in_threadpool(smartid.credentials)]

    @routes.post("/credentials/issue")
    async def issue_credential(request: Request, login: Login = issue) -> Response:
        fields = await form_fields(request)
        try:
            kind = Kind(fields.get("kind", ""))
            days = int(fields.get("days", "365"))
            scope = parse_scope(fields.get("scope", ""))
            await run_in_threadpool(
                lambda: smartid.issue(
                    fields.get("employee_id", ""),
                    kind=kind,
                    scope=scope,
                    actor=login.username,
                    valid_for=timedelta(days=days),
                )
            )
        except (VaultError, ValueError) as err:
            return await run_in_threadpool(credentials_page, request, login, str(err), 400)
        await published()
        return RedirectResponse("/credentials", status_code=303)

    async def change(request: Request, login: Login, credential_id: str, action: str) -> Response:
        fields = await form_fields(request)
        reason = fields.get("reason", "").strip()
        if not reason:
            return await run_in_threadpool(credentials_page, request, login, f"{action} needs a reason", 400)
        operation = smartid.revoke if action == "revoke" else smartid.suspend
        try:
            await run_in_threadpool(lambda: operation(credential_id, reason=reason, actor=login.username))
        except VaultError as err:
            return await run_in_threadpool(credentials_page, request, login, str(err), 400)
        await published()
        return RedirectResponse("/credentials", status_code=303)

    @routes.post("/credentials/{credential_id}/revoke")
    async def revoke_credential(request: Request, credential_id: str, login: Login = revoke) -> Response:
        return await change(request, login, credential_id, "revoke")

    @routes.post("/credentials/{credential_id}/suspend")
    async def suspend_credential(request: Request, credential_id: str, login: Login = suspend) -> Response:
        return await change(request, login, credential_id, "suspend")

    return routes
