"""ClientManager's REST API under ``/api/v1``: clients, POs and lines, contract review, spreadsheet import.

Every route needs a signed-in login whose role holds the permission
(``smart.access.roles``): ``orders.read`` to read, ``orders.write`` to enter
and change, ``orders.review`` to record a contract review. The actor on the
ledger is the login, never a name in the request. A refusal answers 422
with the field that is wrong (and the row and column for a file).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission
from smart.hub.clients import importing
from smart.hub.clients.models import (
    ClientIn,
    ClientView,
    LineIn,
    LineView,
    Problem,
    PurchaseOrderIn,
    PurchaseOrderView,
    ReviewIn,
)
from smart.hub.clients.store import ClientManager, Refused
from smart.hub.vault.logins import Login
from smart.hub.web.auth import TEMPLATES, Guard

#: Largest spreadsheet the API takes (a 10,000-line CSV is about 2 MB).
MAX_IMPORT_BYTES = 32 * 1024 * 1024


def refused(err: Refused) -> HTTPException:
    return HTTPException(status_code=422, detail=[{"field": err.field, "message": err.message}])


class ImportResult(BaseModel):
    what: importing.What
    rows: int
    ok: bool
    written: bool
    pos: int
    lines: int
    clients: int
    sha256: str
    problems: list[Problem]


def router(clients: ClientManager, guard: Guard) -> APIRouter:
    routes = APIRouter(prefix="/api/v1", tags=["ClientManager"])
    read = guard.requires(Permission.ORDERS_READ)
    write = guard.requires(Permission.ORDERS_WRITE)
    review = guard.requires(Permission.ORDERS_REVIEW)

    async def _do(call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await run_in_threadpool(call, *args, **kwargs)
        except Refused as err:
            raise refused(err) from err

    @routes.get("/clients", dependencies=[Depends(read)])
    async def list_clients() -> list[ClientView]:
        """Every client with its retention rule, Nadcap requirement and quality clauses."""
        found: list[ClientView] = await run_in_threadpool(clients.clients)
        return found

    @routes.post("/clients", status_code=201)
    async def add_client(body: ClientIn, login: Login = Depends(write)) -> ClientView:
        """Add a client."""
        added: ClientView = await _do(clients.add_client, body, actor=login.username)
        return added

    @routes.put("/clients/{code}")
    async def change_client(code: str, body: ClientIn, login: Login = Depends(write)) -> ClientView:
        if body.code != code:
            raise HTTPException(
                status_code=422, detail=[{"field": "code", "message": f"the body is client {body.code}"}]
            )
        changed: ClientView = await _do(clients.change_client, body, actor=login.username)
        return changed

    @routes.get("/pos", dependencies=[Depends(read)])
    async def search_pos(
        q: str = Query("", description="PO or part number prefix"),
        client: str | None = None,
        limit: int = Query(50, ge=1, le=500),
    ) -> list[LineView]:
        """PO lines whose PO or part number starts with ``q``, soonest due first."""
        found: list[LineView] = await run_in_threadpool(clients.search, q, client=client, limit=limit)
        return found

    @routes.post("/pos", status_code=201)
    async def add_po(body: PurchaseOrderIn, login: Login = Depends(write)) -> PurchaseOrderView:
        """Enter a customer PO with its lines and each line's flowdowns."""
        added: PurchaseOrderView = await _do(clients.add_po, body, actor=login.username)
        return added

    @routes.get("/pos/{po}", dependencies=[Depends(read)])
    async def show_po(po: str) -> PurchaseOrderView:
        found = await run_in_threadpool(clients.po, po)
        if found is None:
            raise HTTPException(status_code=404, detail=f"no PO {po}")
        return found

    @routes.post("/pos/{po}/lines", status_code=201)
    async def add_line(po: str, body: LineIn, login: Login = Depends(write)) -> LineView:
        added: LineView = await _do(clients.add_line, po, body, actor=login.username)
        return added

    @routes.put("/pos/{po}/lines/{line}")
    async def change_line(po: str, line: str, body: LineIn, login: Login = Depends(write)) -> LineView:
        """Change a line; a reviewed line's review re-opens."""
        if body.line != line:
            raise HTTPException(
                status_code=422, detail=[{"field": "line", "message": f"the body is line {body.line}"}]
            )
        changed: LineView = await _do(clients.change_line, po, body, actor=login.username)
        return changed

    @routes.post("/pos/{po}/lines/{line}/review")
    async def review_line(po: str, line: str, body: ReviewIn, login: Login = Depends(review)) -> LineView:
        """Record the contract review of the line as it is now (AS9100D 8.2.3): the login is the reviewer."""
        reviewed: LineView = await _do(clients.review, po, line, body, actor=login.username)
        return reviewed

    @routes.post("/import/{what}")
    async def import_file(
        what: importing.What,
        request: Request,
        format: importing.Format = Query(importing.Format.CSV),
        dry_run: bool = Query(True, description="Only list the problems; write nothing."),
        filename: str = Query("upload"),
        login: Login = Depends(write),
    ) -> ImportResult:
        """Import clients or POs and lines from the request body (a CSV or XLSX file)."""
        raw = await request.body()
        if len(raw) > MAX_IMPORT_BYTES:
            raise HTTPException(status_code=413, detail=f"a file of at most {MAX_IMPORT_BYTES} bytes")
        try:
            checked = await run_in_threadpool(
                importing.run,
                raw,
                fmt=format,
                what=what,
                clients=clients,
                actor=login.username,
                source=filename,
                dry_run=dry_run,
            )
        except Refused as err:
            raise refused(err) from err
        shown = checked.to_json()
        return ImportResult(
            what=what,
            rows=checked.rows,
            ok=checked.ok,
            written=checked.ok and not dry_run,
            pos=shown["pos"],
            lines=shown["lines"],
            clients=shown["clients"],
            sha256=checked.digest,
            problems=list(checked.problems),
        )

    return routes


def page_router(guard: Guard) -> APIRouter:
    """``/pos/import``: a spreadsheet checked in the browser through ``/api/v1/import`` (dry run first)."""
    routes = APIRouter()
    write = guard.requires(Permission.ORDERS_WRITE)

    @routes.get("/pos/import", response_class=HTMLResponse, include_in_schema=False)
    async def import_page(request: Request, login: Login = Depends(write)) -> HTMLResponse:
        return TEMPLATES.TemplateResponse(
            request, "work/import.html", {"page": "Import clients, POs and lines", "login": login}
        )

    return routes
