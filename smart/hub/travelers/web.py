"""Travelers' REST API under ``/api/v1`` (procedures, templates, each line's traveler) and its edit page."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission
from smart.hub.clients.store import Refused
from smart.hub.clients.web import refused
from smart.hub.travelers.models import (
    ProcedureIn,
    ProcedureView,
    TemplateIn,
    TemplateView,
    TravelerIn,
    TravelerView,
)
from smart.hub.travelers.store import Travelers
from smart.hub.vault.logins import Login
from smart.hub.web.auth import TEMPLATES, Guard, form_fields


def router(travelers: Travelers, guard: Guard) -> APIRouter:
    routes = APIRouter(prefix="/api/v1", tags=["Travelers"])
    read = guard.requires(Permission.ORDERS_READ)
    write = guard.requires(Permission.ORDERS_WRITE)

    async def _do(call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await run_in_threadpool(call, *args, **kwargs)
        except Refused as err:
            raise refused(err) from err

    @routes.get("/procedures", dependencies=[Depends(read)])
    async def list_procedures() -> list[ProcedureView]:
        found: list[ProcedureView] = await run_in_threadpool(travelers.procedures)
        return found

    @routes.post("/procedures", status_code=201)
    async def approve_procedure(body: ProcedureIn, login: Login = Depends(write)) -> ProcedureView:
        """Record an approved procedure revision (it becomes the current one)."""
        approved: ProcedureView = await _do(travelers.approve_procedure, body, actor=login.username)
        return approved

    @routes.put("/templates/{name}")
    async def save_template(name: str, body: TemplateIn, login: Login = Depends(write)) -> TemplateView:
        if body.name != name:
            raise HTTPException(
                status_code=422, detail=[{"field": "name", "message": f"the body is {body.name}"}]
            )
        saved: TemplateView = await _do(travelers.add_template, body, actor=login.username)
        return saved

    @routes.get("/pos/{po}/lines/{line}/traveler", dependencies=[Depends(read)])
    async def show_traveler(po: str, line: str) -> TravelerView:
        found = await run_in_threadpool(travelers.latest, po, line)
        if found is None:
            raise HTTPException(status_code=404, detail=f"PO {po} line {line} has no traveler")
        return found

    @routes.get("/pos/{po}/lines/{line}/traveler/revisions", dependencies=[Depends(read)])
    async def traveler_revisions(po: str, line: str) -> list[TravelerView]:
        found: list[TravelerView] = await run_in_threadpool(travelers.revisions, po, line)
        return found

    @routes.put("/pos/{po}/lines/{line}/traveler")
    async def save_traveler(
        po: str, line: str, body: TravelerIn, login: Login = Depends(write)
    ) -> TravelerView:
        """Write the line's draft traveler; after a release, a new revision (``reason`` required)."""
        saved: TravelerView = await _do(travelers.save, po, line, body, actor=login.username)
        return saved

    return routes


# -- the edit page ----------------------------------------------------------------------------------

#: The fields of one operation, as the form names them (``op-0-station``) and the API does (``class``).
OPERATION_FIELDS = (
    "station",
    "process",
    "procedure",
    "procedure_revision",
    "spec",
    "class",
    "acceptance_criteria",
)
#: Blank rows the form offers beyond the route's operations, to add an operation.
SPARE_ROWS = 2
_PATH_PREFIX = re.compile(r"^(?:Value error, )?((?:operations|reason|template)(?:\[\d+\])?(?:\.[a-z_]+)?): ")


def _rows(fields: dict[str, str]) -> list[dict[str, str]]:
    """The form's operation rows in order, each as typed; a wholly blank row is no operation."""
    indices = sorted({int(m[1]) for key in fields if (m := re.match(r"^op-(\d+)-", key))})
    rows = [{name: fields.get(f"op-{i}-{name}", "").strip() for name in OPERATION_FIELDS} for i in indices]
    return [row for row in rows if any(row.values())]


def _problems(err: ValidationError) -> dict[str, str]:
    """Each problem under the form field it belongs to (``operations[1].station``), as the API names it."""
    found: dict[str, str] = {}
    for problem in err.errors():
        loc = [part for part in problem["loc"] if part not in ("body",)]
        message = str(problem["msg"])
        path = ""
        for part in loc:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        matched = _PATH_PREFIX.match(message)
        if matched:  # a rule over the whole route names its own field in its message
            path, message = matched[1], message[matched.end() :]
        found.setdefault(path or "operations", message)
    return found


def page_router(travelers: Travelers, guard: Guard) -> APIRouter:
    """``/pos/{po}/lines/{line}/traveler``: the line's traveler in a form, checked as the API checks it.

    The form posts the whole route; it goes through the same :class:`TravelerIn` model and
    :meth:`Travelers.save` as ``PUT /api/v1/pos/{po}/lines/{line}/traveler``, so a bad value is refused
    with the same words, shown beside the field it is about, and nothing is written. After a release,
    saving is a new revision and the reason is required.
    """
    routes = APIRouter()
    write = guard.requires(Permission.ORDERS_WRITE)

    async def _page(
        request: Request,
        po: str,
        line: str,
        login: Login,
        *,
        rows: list[dict[str, str]] | None = None,
        reason: str = "",
        problems: dict[str, str] | None = None,
    ) -> HTMLResponse:
        held = await run_in_threadpool(travelers.latest, po, line)
        if rows is None:
            rows = [
                {**op.model_dump(by_alias=True, exclude={"seq"}), "class": op.class_}
                for op in (held.operations if held else ())
            ]
        shown = [*rows, *({name: "" for name in OPERATION_FIELDS} for _ in range(SPARE_ROWS))]
        return TEMPLATES.TemplateResponse(
            request,
            "work/traveler_edit.html",
            {
                "page": f"Traveler of PO {po} line {line}",
                "login": login,
                "po": po,
                "line": line,
                "held": held,
                "rows": shown,
                "fields": OPERATION_FIELDS,
                "reason": reason,
                "problems": problems or {},
                "stations": sorted(travelers.stations),
                "error": "Nothing was saved: correct the fields marked below." if problems else None,
            },
            status_code=422 if problems else 200,
        )

    @routes.get("/pos/{po}/lines/{line}/traveler", response_class=HTMLResponse, include_in_schema=False)
    async def edit_page(request: Request, po: str, line: str, login: Login = Depends(write)) -> HTMLResponse:
        return await _page(request, po, line, login)

    @routes.post("/pos/{po}/lines/{line}/traveler", include_in_schema=False)
    async def edit_form(request: Request, po: str, line: str, login: Login = Depends(write)) -> Response:
        fields = await form_fields(request)
        rows, reason = _rows(fields), fields.get("reason", "").strip()
        try:
            body = TravelerIn.model_validate({"operations": rows, "reason": reason})
        except ValidationError as err:
            return await _page(request, po, line, login, rows=rows, reason=reason, problems=_problems(err))
        try:
            await run_in_threadpool(travelers.save, po, line, body, actor=login.username)
        except Refused as err:
            return await _page(
                request, po, line, login, rows=rows, reason=reason, problems={err.field: err.message}
            )
        return RedirectResponse(f"/pos/{po}#line-{line}", status_code=303)

    return routes
