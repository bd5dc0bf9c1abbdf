"""``/api/v1/client/…``: what a shop's client may read of its own work, by API key or OAuth token.

It runs on the Business hub and answers only from what the Floor published to
it over the one-way feed (``published.records``: ``client``, ``client-po``,
``coc``, ``proof-bundle``, ``invoice``; :mod:`smart.hub.published.client_views`) and
from its own schema ``client_api`` (keys, OAuth clients, rate buckets): it
holds no right to the Floor's tables, the ledger or ClientManager's.

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

import structlog
from authlib.oauth2.rfc6749.errors import InsecureTransportError
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, TypeAdapter
from starlette.concurrency import run_in_threadpool

from smart.hub.client_api.oauth import TokenRequest, TokenServer
from smart.hub.client_api.store import ClientCredentials, Credential, RateLimit
from smart.hub.web.auth import form_fields

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


_PO_LIST: TypeAdapter[list[ClientPo]] = TypeAdapter(list[ClientPo])


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


#: One PO of the client's and, joined in the same statement, one record of ``kind`` for it (``None``: none).
_PO_AND = (
    "SELECT p.body AS po, r.body - 'pdf' AS record, r.body ->> 'pdf' AS pdf FROM published.records p"
    " LEFT JOIN published.records r ON r.kind = %(kind)s AND r.key = %(key)s"
    " AND r.body ->> 'client' = %(client)s"
    " WHERE p.kind = 'client-po' AND p.key = %(po)s AND p.body ->> 'client' = %(client)s"
)


@dataclass(frozen=True, slots=True)
class Found:
    """A PO of the client's and what was asked of it (``None``: not published, or not its client's)."""

    po: dict[str, Any]
    record: dict[str, Any] | None
    pdf: bytes | None

    def has_line(self, line: str) -> bool:
        return any(ln.get("line") == line for ln in self.po.get("lines", ()))


@dataclass
class ClientApi:
    """What the routes read through: the credentials, and the records the Floor published to this hub.

    Every query names the credential's client, so another client's record is never read (it answers
    404 exactly as a missing one). One statement per request beside the credential's.
    """

    credentials: ClientCredentials
    limit: RateLimit

    def _rows(self, query: str, values: Any) -> list[dict[str, Any]]:
        with self.credentials.pool.connection() as conn:
            return list(conn.execute(query, values).fetchall())

    async def pos(self, client: str, po: str | None, limit: int) -> list[ClientPo]:
        """The client's POs (or the one named): the route every client polls, so read on the serving loop."""
        rows = await self.credentials.serving_rows(
            "SELECT body FROM published.records WHERE kind = 'client-po' AND body ->> 'client' = %s"
            " AND (%s::text IS NULL OR key = %s) ORDER BY key LIMIT %s",
            (client, po, po, limit),
        )
        return [ClientPo.model_validate(row["body"]) for row in rows]

    def of_po(self, client: str, po: str, kind: str, key: str) -> Found | None:
        """The client's PO ``po`` and its record ``kind``/``key`` (a PDF decoded), in one statement."""
        rows = self._rows(_PO_AND, {"kind": kind, "key": key, "client": client, "po": po})
        if not rows:
            return None
        row = rows[0]
        pdf = base64.b64decode(row["pdf"]) if row["pdf"] else None
        return Found(dict(row["po"]), dict(row["record"]) if row["record"] else None, pdf)

    def documents(self, client: str) -> list[DocumentOut]:
        rows = self._rows(
            "SELECT body - 'pdf' AS body FROM published.records WHERE kind = 'invoice'"
            " AND body ->> 'client' = %s ORDER BY body ->> 'issuedAt', key",
            (client,),
        )
        return [_document_out(row["body"]) for row in rows]

    def document(self, client: str, number: str, *, pdf: bool = False) -> tuple[DocumentOut, bytes] | None:
        rows = self._rows(
            "SELECT body - 'pdf' AS body, CASE WHEN %s THEN body ->> 'pdf' END AS pdf FROM published.records"
            " WHERE kind = 'invoice' AND key = %s AND body ->> 'client' = %s",
            (pdf, number, client),
        )
        if not rows:
            return None
        return _document_out(rows[0]["body"]), base64.b64decode(rows[0]["pdf"] or "")


def _document_out(body: dict[str, Any]) -> DocumentOut:
    """An invoice or credit note as Pay published it (``Document.to_json`` without who issued it)."""
    return DocumentOut(
        number=body["number"],
        kind=body["kind"],
        po=body["po"],
        credits=body["credits"],
        reason=body["reason"],
        total=Decimal(body["total"]),
        issued_at=datetime.fromisoformat(body["issuedAt"]),
        lines=[
            DocumentLineOut(
                line=ln["line"],
                part=ln["part"],
                quantity=ln["quantity"],
                unit_price=Decimal(ln["unitPrice"]),
                amount=Decimal(ln["amount"]),
            )
            for ln in body["lines"]
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

    # The POs are validated once, as read (``ClientPo``), and written out as they are: answering a
    # Response leaves FastAPI's second validation and encoding of the same model out of the route
    # every client polls; the document still names ``ClientPo`` through ``response_model``.
    @routes.get("/pos", response_model=list[ClientPo])
    async def list_pos(
        credential: Credential = Depends(caller), limit: int = Query(100, ge=1, le=500)
    ) -> Response:
        """This client's POs, each line with its status (entered … shipped, invoiced)."""
        found = await api.pos(credential.client, None, limit)
        return Response(_PO_LIST.dump_json(found), media_type="application/json")

    @routes.get("/pos/{po}", response_model=ClientPo)
    async def show_po(po: PoCode, credential: Credential = Depends(caller)) -> Response:
        found = await api.pos(credential.client, po, 1)
        if not found:
            raise _missing(f"po: no PO {po} of yours")
        return Response(found[0].model_dump_json(), media_type="application/json")

    async def _line(client: str, po: str, line: str, kind: str) -> Found:
        found = await run_in_threadpool(api.of_po, client, po, kind, f"{po}/{line}")
        if found is None:
            raise _missing(f"po: no PO {po} of yours")
        if not found.has_line(line):
            raise _missing(f"line: PO {po} has no line {line}")
        return found

    @routes.get("/pos/{po}/lines/{line}/coc", response_class=Response, responses={200: PDF})
    async def coc(po: PoCode, line: LineCode, credential: Credential = Depends(caller)) -> Response:
        """The line's C of C exactly as printed at shipping: its QR code names the shipment's proof bundle."""
        found = await _line(credential.client, po, line, "coc")
        if found.record is None or found.pdf is None:
            raise _missing(
                f"line: no C of C printed yet for PO {po} line {line}; the shop prints it once the line's"
                " shipment is in its log under a cosigned checkpoint"
            )
        return Response(
            found.pdf,
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'inline; filename="{po}-{line}-coc.pdf"',
                "ETag": f'"{found.record["pdf_sha256"]}"',
            },
        )

    @routes.get("/pos/{po}/lines/{line}/proof")
    async def proof(po: PoCode, line: LineCode, credential: Credential = Depends(caller)) -> ProofsOut:
        """Proof bundles of the line's C of C, receipt and shipment entries in the shop's signed log."""
        found = await _line(credential.client, po, line, "proof-bundle")
        held = found.record["proofs"] if found.record is not None else []
        return ProofsOut(po=po, line=line, proofs=[ProofOut.model_validate(p) for p in held])

    @routes.get("/invoices")
    async def list_invoices(credential: Credential = Depends(caller)) -> list[DocumentOut]:
        """This client's invoices and credit notes, oldest first."""
        found: list[DocumentOut] = await run_in_threadpool(api.documents, credential.client)
        return found

    @routes.get("/invoices/{number}")
    async def show_invoice(number: DocNumber, credential: Credential = Depends(caller)) -> DocumentOut:
        held = await run_in_threadpool(api.document, credential.client, number)
        if held is None:
            raise _missing(f"number: no invoice or credit note {number} of yours")
        return held[0]

    @routes.get("/invoices/{number}/pdf", response_class=Response, responses={200: PDF})
    async def invoice_pdf(number: DocNumber, credential: Credential = Depends(caller)) -> Response:
        held = await run_in_threadpool(lambda: api.document(credential.client, number, pdf=True))
        if held is None:
            raise _missing(f"number: no invoice or credit note {number} of yours")
        return Response(
            held[1],
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{number}.pdf"'},
        )

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
