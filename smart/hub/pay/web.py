"""Pay for the shop's own people: ``/api/v1/pay`` (invoices, credit notes, PDFs) and the ``/pay`` page.

Issuing needs ``orders.write`` and reading ``orders.read`` (the permissions
ClientManager's routes use); the signed-in login is the actor on the ledger.
A refusal is a 422 naming the field (``lines[0]``) and why.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission, allows
from smart.hub.clients.models import Code, Notes
from smart.hub.clients.store import Refused
from smart.hub.clients.web import refused
from smart.hub.pay import documents
from smart.hub.pay.store import Certificate, Document, Pay, certificates
from smart.hub.vault.logins import Login
from smart.hub.web.auth import TEMPLATES, Guard, form_fields


class InvoiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    po: Code
    lines: tuple[Code, ...] = Field(min_length=1, description="The PO lines to invoice (shipped, certified).")


class ReturnedIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    line: Code
    quantity: int = Field(gt=0)


class CreditNoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lines: tuple[ReturnedIn, ...] = Field(min_length=1)
    reason: Notes = Field(description="Why: the return, its RMA or NCR.")


def router(pay: Pay, guard: Guard) -> APIRouter:
    routes = APIRouter(prefix="/api/v1/pay", tags=["Pay"])
    read = guard.requires(Permission.ORDERS_READ)
    write = guard.requires(Permission.ORDERS_WRITE)

    async def _do(call: Any, *args: Any, **kwargs: Any) -> Document:
        try:
            done: Document = await run_in_threadpool(call, *args, **kwargs)
        except Refused as err:
            raise refused(err) from err
        return done

    @routes.post("/invoices", status_code=201)
    async def issue(body: InvoiceIn, login: Login = Depends(write)) -> dict[str, Any]:
        """Invoice shipped, certified lines at the PO line's price and quantity (one ledger entry)."""
        return (await _do(pay.invoice, body.po, body.lines, actor=login.username)).to_json()

    @routes.post("/invoices/{number}/credit-notes", status_code=201)
    async def credit(number: str, body: CreditNoteIn, login: Login = Depends(write)) -> dict[str, Any]:
        """A credit note for returned parts against an invoice, at the invoiced price."""
        returned = [(r.line, r.quantity) for r in body.lines]
        held = await _do(pay.credit, number, returned, reason=body.reason, actor=login.username)
        return held.to_json()

    @routes.get("/invoices", dependencies=[Depends(read)])
    async def list_documents(po: str | None = Query(None), client: str | None = Query(None)) -> list[Any]:
        found = await run_in_threadpool(pay.documents, po=po, client=client)
        return [d.to_json() for d in found]

    def _pdf(number: str) -> bytes | None:
        held = pay.document(number)
        if held is None:
            return None
        found: dict[int, Certificate] = {}
        with pay.pool.connection() as conn:
            for ln in held.lines:
                found.update({c.ledger_idx: c for c in certificates(conn, held.po, ln.line)})
        return documents.document_pdf(held, found)

    @routes.get("/invoices/{number}/pdf", dependencies=[Depends(read)], response_class=Response)
    async def pdf(number: str) -> Response:
        made = await run_in_threadpool(_pdf, number)
        if made is None:
            raise HTTPException(404, f"no invoice or credit note {number}")
        return Response(made, media_type="application/pdf")

    return routes


def page_router(pay: Pay, guard: Guard) -> APIRouter:
    """``/pay``: the invoices and credit notes issued, and a form to invoice shipped, certified lines.

    The form goes through :meth:`Pay.invoice` as the API does: a line that may not be invoiced is
    refused with the same words, on the page, and nothing is written. The form is drawn only for a
    role that may issue, and the role is checked again on the post.
    """
    routes = APIRouter()
    read = guard.requires(Permission.ORDERS_READ)
    write = guard.requires(Permission.ORDERS_WRITE)

    async def _page(
        request: Request, login: Login, *, error: str | None = None, po: str = "", lines: str = ""
    ) -> HTMLResponse:
        found = await run_in_threadpool(pay.documents)
        return TEMPLATES.TemplateResponse(
            request,
            "work/pay.html",
            {
                "page": "Pay: invoices and credit notes",
                "login": login,
                "documents": found,
                "error": error,
                "po": po,
                "lines": lines,
                "may_issue": allows(login.role, Permission.ORDERS_WRITE),
            },
            status_code=422 if error else 200,
        )

    @routes.get("/pay", response_class=HTMLResponse, include_in_schema=False)
    async def pay_page(request: Request, login: Login = Depends(read)) -> HTMLResponse:
        return await _page(request, login)

    @routes.post("/pay/invoices", include_in_schema=False)
    async def invoice_form(request: Request, login: Login = Depends(write)) -> Response:
        fields = await form_fields(request)
        po, lines = fields.get("po", "").strip(), fields.get("lines", "").strip()
        try:
            body = InvoiceIn(po=po, lines=tuple(ln for ln in lines.replace(",", " ").split() if ln))
            await run_in_threadpool(pay.invoice, body.po, body.lines, actor=login.username)
        except ValidationError as err:
            problem = err.errors()[0]
            where = ".".join(str(p) for p in problem["loc"]) or "lines"
            return await _page(request, login, error=f"{where}: {problem['msg']}", po=po, lines=lines)
        except Refused as err:
            return await _page(request, login, error=str(err), po=po, lines=lines)
        return RedirectResponse("/pay", status_code=303)

    return routes
