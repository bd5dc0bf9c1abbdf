"""AI Central's pages: ``/advice`` (findings and evidence), ``/advice/entries/{idx}``, ``/api/v1/advice``.

Signed in with ``records.read`` (quality, Level 3s, auditors, admins). A person's credential
coming due names a badge: shown only to logins that may read people (``people.read``); others
see that there are some. An evidence entry's badges are hidden the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import tzinfo
from typing import Any

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission, allows
from smart.hub.advice.central import AiCentral, Analysis
from smart.hub.advice.findings import TITLES
from smart.hub.vault.logins import Login
from smart.hub.web.auth import TEMPLATES, Guard
from smart.ledger.entry import Entry

#: Keys of an entry's data that carry a badge (personal data).
_PERSONAL = frozenset({"person", "badge", "badgeId", "supervisor", "inspector", "operator"})


def _hidden(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: "(hidden)" if k in _PERSONAL else _hidden(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hidden(v) for v in value]
    return value


def _view(analysis: Analysis, personal: bool, zone: tzinfo) -> dict[str, Any]:
    shown, withheld = [], 0
    for advice in analysis.advice:
        if advice.finding.figures.get("of") == "person" and not personal:
            withheld += 1
            continue
        shown.append({**advice.finding.to_json(), "entry": advice.node_seq})
    return {
        "at": f"{analysis.at.astimezone(zone):%Y-%m-%d %H:%M %Z}",
        "titles": TITLES,
        "advice": shown,
        "withheld": withheld,
        "unread": list(analysis.unread),
    }


def router(central: AiCentral, guard: Guard) -> APIRouter:
    routes = APIRouter()
    read_login = guard.requires(Permission.RECORDS_READ)

    def personal(login: Login) -> bool:
        return allows(login.role, Permission.PEOPLE_READ)

    @routes.get("/advice", response_class=HTMLResponse, include_in_schema=False)
    async def advice_page(request: Request, login: Login = Depends(read_login)) -> HTMLResponse:
        """What AI Central finds in the records now, with the entries behind it; advice, never a decision."""
        view = _view(await run_in_threadpool(central.latest), personal(login), central.zone)
        return TEMPLATES.TemplateResponse(
            request, "advice/advice.html", {"page": "AI Central", "login": login, **view}
        )

    @routes.get("/api/v1/advice", tags=["AI Central"])
    async def advice_api(login: Login = Depends(read_login)) -> dict[str, Any]:
        """The findings now (kind, suggestion, figures, evidence, the ``advice.issued`` entry if issued)."""
        return _view(await run_in_threadpool(central.latest), personal(login), central.zone)

    def _entry(idx: int) -> Entry | None:
        with psycopg.connect(central.url, autocommit=True) as conn:
            row = conn.execute("SELECT entry FROM ledger_entries WHERE idx = %s", (idx,)).fetchone()
        return Entry.from_bytes(bytes(row[0]), canonical=False) if row else None

    @routes.get("/advice/entries/{idx}", response_class=HTMLResponse, include_in_schema=False)
    async def entry_page(idx: int, request: Request, login: Login = Depends(read_login)) -> HTMLResponse:
        """One hub log entry an advice cites: where it is in the log, who, what, and its data."""
        entry = await run_in_threadpool(_entry, idx)
        if entry is None:
            raise HTTPException(404, f"the hub log has no entry {idx}")
        data = entry.data if personal(login) else _hidden(entry.data)
        return TEMPLATES.TemplateResponse(
            request,
            "advice/entry.html",
            {
                "page": f"Hub log entry {idx}",
                "login": login,
                "idx": idx,
                "entry": entry,
                "actor": entry.actor if personal(login) else "(hidden)",
                "data": json.dumps(data, indent=2, sort_keys=True, default=str),
            },
        )

    return routes
