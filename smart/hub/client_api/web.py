"""``/api/v1/client/…``: what a shop's client may read of its own work, by API key or OAuth token.

Every route but the token endpoint needs ``Authorization: Bearer <key or
token>``; the credential names one client and every query is filtered by
it, so another client's PO answers 404, exactly as a PO that does not
exist (a client learns nothing of others' work). Each credential has its
own token bucket (:class:`~.store.RateLimit`), kept in PostgreSQL and taken
in the statement that authenticates, so it holds however many processes
serve the API: past it, 429 with ``Retry-After``.
Path values are checked at the edge (a PO or line is a code), so a bad one
is a 422 naming the parameter. The API's own OpenAPI document is at
``/api/v1/client/openapi.json`` (and the hub's whole one at ``/openapi.json``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

import psycopg
import structlog
from authlib.oauth2.rfc6749.errors import InsecureTransportError
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from smart.hub.audit import printing
from smart.hub.client_api.oauth import TokenRequest, TokenServer
from smart.hub.client_api.store import ClientCredentials, Credential, RateLimit
from smart.hub.clients.store import ClientManager
from smart.hub.pay import documents
from smart.hub.pay import store as pay_store
from smart.hub.web.auth import form_fields
from smart.keys import VerifyingKey
from smart.ledger.hub_store import HubLog

log = structlog.get_logger("smart.hub.client_api")

PREFIX = "/api/v1/client"
CODE = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
PoCode = Annotated[str, Path(min_length=1, max_length=64, pattern=CODE, description="The PO number.")]
LineCode = Annotated[str, Path(min_length=1, max_length=64, pattern=CODE, description="The PO line.")]
DocNumber = Annotated[
    str, Path(min_length=1, max_length=32, pattern=r"^(INV|CN)-\d{1,12}$", description="INV-… or CN-…")
]
PDF = {"content": {"application/pdf": {}}, "description": "The document as a PDF."}
REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No credential, or one unknown, revoked or expired."},
    404: {"description": "Not one of this client's."},
    429: {"description": "Past this credential's rate limit; see Retry-After."},
}


class ClientLine(BaseModel):
    line: str
    part: str
    part_revision: str
    quantity: int
    unit: str
    due_date: date
    status: str
    received_at: datetime | None
    shipped_at: datetime | None
    certified: bool
    invoice: str | None


class ClientPo(BaseModel):
    po: str
    received_on: date
    lines: list[ClientLine]


class DocumentLineOut(BaseModel):
    line: str
    part: str
    quantity: int
    unit_price: Decimal
    amount: Decimal


class DocumentOut(BaseModel):
    number: str
    kind: str
    po: str
    credits: str | None
    reason: str
    total: Decimal
    issued_at: datetime
    lines: list[DocumentLineOut]


class ProofOut(BaseModel):
    """One entry of the shop's log and everything needed to prove it offline (``smart ledger verify``)."""

    what: str
    index: int
    bundle: str  # base64 of the proof bundle's bytes


class ProofsOut(BaseModel):
    po: str
    line: str
    proofs: list[ProofOut]


def status(row: dict[str, Any]) -> str:
    """The line's furthest step, from the ledger's indexes (never from what someone typed)."""
    if row["invoice"]:
        return "invoiced"
    if row["shipped_at"]:
        return "shipped"
    if row["received_at"]:
        return "parts received"
    if row["released_version"]:
        return "released"
    return "reviewed" if row["reviewed"] else "entered"


_LINES = (
    "SELECT o.po, o.received_on, l.line, l.part, l.part_revision, l.quantity, l.unit, l.due_date, "
    "(l.reviewed_version IS NOT DISTINCT FROM l.version) AS reviewed, l.released_version, "
    "(SELECT min(e.at) FROM handoff.floor_events e WHERE e.po = l.po AND e.line = l.line "
    "AND e.verb = 'receive') AS received_at, "
    "(SELECT min(e.at) FROM handoff.floor_events e WHERE e.po = l.po AND e.line = l.line "
    "AND e.verb = 'ship') AS shipped_at, "
    "EXISTS (SELECT 1 FROM pay.certificates c WHERE (c.po = l.po AND c.line = l.line) OR (c.po IS NULL "
    "AND EXISTS (SELECT 1 FROM handoff.floor_events e WHERE e.verb = 'ship' AND e.po = l.po "
    "AND e.line = l.line AND e.station = c.station AND e.job = c.job))) AS certified, "
    "(SELECT min(d.number) FROM pay.document_lines d WHERE d.po = l.po AND d.line = l.line "
    "AND d.number LIKE 'INV-%%') AS invoice "
    "FROM clients.purchase_orders o JOIN clients.po_lines l USING (po) "
    "WHERE o.client = %s AND (%s::text IS NULL OR o.po = %s) ORDER BY o.po, l.line LIMIT %s"
)


@dataclass
class ClientApi:
    """What the routes read through: credentials, Pay, ClientManager, the hub log (for proofs)."""

    url: str
    credentials: ClientCredentials
    pay: pay_store.Pay
    clients: ClientManager
    log_key: VerifyingKey | None
    limit: RateLimit

    def pos(self, client: str, po: str | None, limit: int) -> list[ClientPo]:
        with self.credentials.pool.connection() as conn:
            rows = conn.execute(_LINES, (client, po, po, limit)).fetchall()
        found: dict[str, ClientPo] = {}
        for row in rows:
            order = found.setdefault(
                row["po"], ClientPo(po=row["po"], received_on=row["received_on"], lines=[])
            )
            order.lines.append(
                ClientLine(
                    line=row["line"],
                    part=row["part"],
                    part_revision=row["part_revision"],
                    quantity=row["quantity"],
                    unit=row["unit"],
                    due_date=row["due_date"],
                    status=status(row),
                    received_at=row["received_at"],
                    shipped_at=row["shipped_at"],
                    certified=row["certified"],
                    invoice=row["invoice"],
                )
            )
        return list(found.values())

    def owns(self, client: str, po: str) -> bool:
        with self.credentials.pool.connection() as conn:
            return (
                conn.execute(
                    "SELECT 1 FROM clients.purchase_orders WHERE po = %s AND client = %s", (po, client)
                ).fetchone()
                is not None
            )

    def printed_coc(self, client: str, po: str, line: str) -> tuple[printing.Printed, bytes] | None:
        """The C of C AuditCentral printed at shipping for the line, as stored (with its QR code)."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            return printing.stored_for_client(conn, client=client, po=po, line=line)

    def proofs(self, client: str, po: str, line: str) -> ProofsOut | None:
        if not self.owns(client, po) or self.log_key is None:
            return None
        with HubLog.connect(self.url) as hub_log:
            conn = hub_log.conn
            marks = [("coc", c.ledger_idx) for c in pay_store.certificates(conn, po, line)]
            marks += [
                (str(verb), int(idx))
                for verb, idx in conn.execute(
                    "SELECT verb, ledger_idx FROM handoff.floor_events WHERE po = %s AND line = %s "
                    "ORDER BY ledger_idx",
                    (po, line),
                ).fetchall()
            ]
            proofs = [
                ProofOut(
                    what=what,
                    index=idx,
                    bundle=base64.b64encode(
                        hub_log.proof_bundle(idx, log_key=self.log_key).to_bytes()
                    ).decode(),
                )
                for what, idx in marks
            ]
        return ProofsOut(po=po, line=line, proofs=proofs)

    def document(self, client: str, number: str) -> pay_store.Document | None:
        held = self.pay.document(number)
        return held if held is not None and held.client == client else None

    def certificates_of(self, document: pay_store.Document) -> dict[int, pay_store.Certificate]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return {
                c.ledger_idx: c
                for ln in document.lines
                for c in pay_store.certificates(conn, document.po, ln.line)
            }


def _document_out(held: pay_store.Document) -> DocumentOut:
    return DocumentOut(
        number=held.number,
        kind=held.kind,
        po=held.po,
        credits=held.credits,
        reason=held.reason,
        total=held.total,
        issued_at=held.issued_at,
        lines=[
            DocumentLineOut(
                line=ln.line, part=ln.part, quantity=ln.quantity, unit_price=ln.unit_price, amount=ln.amount
            )
            for ln in held.lines
        ],
    )


def router(api: ClientApi) -> APIRouter:
    routes = APIRouter(prefix=PREFIX, tags=["SMART-API (clients)"], responses=REFUSALS)
    bearer = HTTPBearer(auto_error=False, description="An API key (smk_…) or an OAuth access token.")
    tokens = TokenServer(api.credentials)

    async def caller(
        request: Request, presented: HTTPAuthorizationCredentials | None = Depends(bearer)
    ) -> Credential:
        if presented is None or presented.scheme.lower() != "bearer":
            raise HTTPException(
                401,
                "authorization: send Authorization: Bearer <API key or token>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        admitted = await api.credentials.admit_serving(presented.credentials, api.limit)
        if admitted is None:
            log.warning("client_api.refused", path=request.url.path, reason="unknown, revoked or expired")
            raise HTTPException(
                401,
                "authorization: the key or token is unknown, revoked or expired",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        credential, wait = admitted.credential, admitted.wait_s
        if wait > 0:
            log.warning("client_api.rate_limited", credential=credential.id, client=credential.client)
            raise HTTPException(
                429,
                f"rate limit: {api.limit.rate:g} requests a second",
                headers={"Retry-After": str(int(wait) + 1)},
            )
        return credential

    def _missing(what: str) -> HTTPException:
        return HTTPException(404, what)

    @routes.get("/pos")
    async def list_pos(
        credential: Credential = Depends(caller), limit: int = Query(100, ge=1, le=500)
    ) -> list[ClientPo]:
        """This client's POs, each line with its status (entered … shipped, invoiced)."""
        found: list[ClientPo] = await run_in_threadpool(api.pos, credential.client, None, limit)
        return found

    @routes.get("/pos/{po}")
    async def show_po(po: PoCode, credential: Credential = Depends(caller)) -> ClientPo:
        found = await run_in_threadpool(api.pos, credential.client, po, 500)
        if not found:
            raise _missing(f"po: no PO {po} of yours")
        return found[0]

    @routes.get("/pos/{po}/lines/{line}/coc", response_class=Response, responses={200: PDF})
    async def coc(po: PoCode, line: LineCode, credential: Credential = Depends(caller)) -> Response:
        """The line's C of C exactly as printed at shipping: its QR code names the shipment's proof bundle."""
        if not await run_in_threadpool(api.owns, credential.client, po):
            raise _missing(f"po: no PO {po} of yours")
        if await run_in_threadpool(api.clients.line, po, line) is None:
            raise _missing(f"line: PO {po} has no line {line}")
        found = await run_in_threadpool(api.printed_coc, credential.client, po, line)
        if found is None:
            raise _missing(
                f"line: no C of C printed yet for PO {po} line {line}; the shop prints it once the line's"
                " shipment is in its log under a cosigned checkpoint"
            )
        printed, pdf = found
        return Response(
            pdf,
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'inline; filename="{po}-{line}-coc.pdf"',
                "ETag": f'"{printed.pdf_sha256}"',
            },
        )

    @routes.get("/pos/{po}/lines/{line}/proof")
    async def proof(po: PoCode, line: LineCode, credential: Credential = Depends(caller)) -> ProofsOut:
        """Proof bundles of the line's C of C, receipt and shipment entries in the shop's signed log."""
        found = await run_in_threadpool(api.proofs, credential.client, po, line)
        if found is None:
            raise _missing(f"po: no PO {po} of yours")
        return found

    @routes.get("/invoices")
    async def list_invoices(credential: Credential = Depends(caller)) -> list[DocumentOut]:
        """This client's invoices and credit notes, oldest first."""
        held = await run_in_threadpool(api.pay.documents, client=credential.client)
        return [_document_out(d) for d in held]

    @routes.get("/invoices/{number}")
    async def show_invoice(number: DocNumber, credential: Credential = Depends(caller)) -> DocumentOut:
        held = await run_in_threadpool(api.document, credential.client, number)
        if held is None:
            raise _missing(f"number: no invoice or credit note {number} of yours")
        return _document_out(held)

    @routes.get("/invoices/{number}/pdf", response_class=Response, responses={200: PDF})
    async def invoice_pdf(number: DocNumber, credential: Credential = Depends(caller)) -> Response:
        held = await run_in_threadpool(api.document, credential.client, number)
        if held is None:
            raise _missing(f"number: no invoice or credit note {number} of yours")
        certificates = await run_in_threadpool(api.certificates_of, held)
        pdf = await run_in_threadpool(documents.document_pdf, held, certificates)
        return Response(pdf, media_type="application/pdf")

    @routes.post(
        "/oauth/token",
        responses={
            200: {"description": "An access token (RFC 6749 §5.1)."},
            400: {"description": "RFC 6749 §5.2 error"},
            401: {"description": "Client authentication failed"},
        },
    )
    async def token(request: Request) -> Response:
        """OAuth 2.0 client credentials: ``grant_type=client_credentials``, the client's id and secret."""
        form = await form_fields(request)  # application/x-www-form-urlencoded (RFC 6749 §4.4.2)
        # Judged by the scheme the request came by (https, or X-Forwarded-Proto from a trusted proxy),
        # never by the Host header: Authlib takes http to "localhost" or a loopback address as secure.
        insecure = {"error": "invalid_request", "error_description": "tokens are issued over https only"}
        if request.url.scheme != "https":
            log.warning("client_api.token_refused", reason="plain http", peer=_peer(request))
            return JSONResponse(insecure, status_code=400)
        try:
            wanted = TokenRequest(request.method, str(request.url), request.headers, form)
        except InsecureTransportError:
            return JSONResponse(insecure, status_code=400)
        answer = await run_in_threadpool(tokens.create_token_response, wanted)
        assert isinstance(answer, Response)  # what handle_response makes
        return answer

    return routes


def _peer(request: Request) -> str | None:
    return request.client.host if request.client is not None else None


def openapi_router(client_routes: APIRouter) -> APIRouter:
    """``/api/v1/client/openapi.json``: the client API's own OpenAPI document, for the shop's clients."""
    routes = APIRouter()
    schema: dict[str, Any] = {}

    @routes.get(f"{PREFIX}/openapi.json", include_in_schema=False)
    async def client_openapi() -> JSONResponse:
        if not schema:
            schema.update(
                get_openapi(
                    title="SMART client API",
                    version="1",
                    description="A shop client's POs and lines with status, C of Cs, proofs, invoices.",
                    routes=client_routes.routes,
                )
            )
        return JSONResponse(schema)

    return routes
