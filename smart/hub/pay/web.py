"""Pay's routes for the shop's own people under ``/api/v1/pay``: issue invoices and credit notes, read them.

Issuing needs ``orders.write`` and reading ``orders.read`` (the permissions
ClientManager's routes use); the signed-in login is the actor on the ledger.
A refusal is a 422 naming the field (``lines[0]``) and why.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission
from smart.hub.clients.models import Code, Notes
from smart.hub.clients.store import Refused
from smart.hub.clients.web import refused
from smart.hub.pay import documents
from smart.hub.pay.store import Certificate, Document, Pay, certificates
from smart.hub.vault.logins import Login
from smart.hub.web.auth import Guard


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
