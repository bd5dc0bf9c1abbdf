"""Pages and ``/api/v1`` for StandardsCentral, QACentral and InventoryHub, and the training-matrix import.

Reading needs ``orders.read`` (every hub role); entering specs, procedures,
materials, lots and CAPAs needs ``orders.write`` (Level 3, quality manager,
admin). Approving a procedure revision and dispositioning an NCR need more
than a role: a signature (:mod:`smart.hub.standards.esign`). Signed in, the
login's own SMART-ID credentials sign; through the API a client that
scanned the signed-in person's badge may hand in that badge and its tokens
instead (never another person's: tokens are no secret, stations hold them).
Either way they are verified against the pinned SMART-ID key and its revocations, and
a refusal names the field (``approver``, ``signer``). The training-matrix
import (``/api/v1/import/training-matrix`` and its page ``/people/import``)
needs ``people.write`` (the quality manager and admins).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission, Role
from smart.hub.clients.importing import Format
from smart.hub.clients.store import Refused
from smart.hub.clients.web import MAX_IMPORT_BYTES, refused
from smart.hub.inventory.models import LotIn, LotView, MaterialIn, MaterialView, PurchaseRequest
from smart.hub.qa.models import CapaIn, CapaView, DispositionIn, EvidenceIn, NcrView, VerificationIn, Yield
from smart.hub.standards.esign import Signature
from smart.hub.standards.models import (
    ApprovalIn,
    ProcedureIn,
    ProcedureView,
    RevisionIn,
    RevisionView,
    SpecRevisionIn,
    SpecRevisionView,
)
from smart.hub.standards.store import APPROVE
from smart.hub.vault.logins import Login
from smart.hub.web.auth import TEMPLATES, Guard, form_fields

if TYPE_CHECKING:
    from smart.hub.means import MeansServices

T = TypeVar("T")


async def _do(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return await run_in_threadpool(call, *args, **kwargs)
    except Refused as err:
        raise refused(err) from err


async def _refusing(call: Awaitable[T]) -> T:
    try:
        return await call
    except Refused as err:
        raise refused(err) from err


def _own_badge(means: MeansServices, login: Login, badge: str, field: str) -> None:
    """Tokens are no secret (stations hold them): a login signs only with its own person's badge."""
    own = means.smartid.person(login.employee_id).badge_id if login.employee_id is not None else None
    if own != badge:
        raise Refused(field, f"login {login.username} signs only as its own person's badge, not {badge}")


def _approval(means: MeansServices, login: Login, method: str, body: ApprovalIn) -> Signature:
    if body.badge is not None:
        _own_badge(means, login, body.badge, "approver")
        return means.signer.sign(APPROVE, badge=body.badge, tokens=body.tokens, method=method)
    return means.signer.sign_as(login.employee_id, APPROVE, method=method)


def disposition_signature(means: MeansServices, login: Login, station: str, body: DispositionIn) -> Signature:
    """A Level 3 in the station's method, or a signed-in quality manager, whose credentials verify."""
    method = means.station_method(station)
    if body.badge is not None:
        _own_badge(means, login, body.badge, "signer")
        if method is None:
            raise Refused(
                "signer", f"the hub knows no method for {station}; a Level 3 of it cannot be checked"
            )
        return means.signer.sign(APPROVE, badge=body.badge, tokens=body.tokens, method=method, field="signer")
    if login.role is Role.QUALITY_MANAGER:
        return means.signer.sign_with_role(login.employee_id, login.role.value, action="disposition_ncr")
    if method is None:
        raise Refused("signer", f"the hub knows no method for {station}; only the quality manager may decide")
    return means.signer.sign_as(login.employee_id, APPROVE, method=method, field="signer")


class LotImport(BaseModel):
    rows: int
    ok: bool
    written: bool
    lots: int
    sha256: str
    problems: list[dict[str, Any]]


class TrainingImport(BaseModel):
    rows: int
    ok: bool
    written: bool
    people: int
    new: int
    records: int
    sha256: str
    problems: list[dict[str, Any]]
    #: What the file would change (or changed), person by person: new or known, stations, records.
    changes: list[dict[str, Any]] = []
    counts: dict[str, int] = {}


def routers(
    means: MeansServices, guard: Guard, *, smartid: Any = None, stations: tuple[str, ...] = ()
) -> list[APIRouter]:
    api = APIRouter(prefix="/api/v1", tags=["StandardsCentral, QACentral, InventoryHub"])
    pages = APIRouter(include_in_schema=False)
    read = guard.requires(Permission.ORDERS_READ)
    write = guard.requires(Permission.ORDERS_WRITE)
    std, qa, inv = means.standards, means.qa, means.inventory

    # -- StandardsCentral ---------------------------------------------------------------------

    @api.get("/standards/specs", dependencies=[Depends(read)])
    async def specs() -> list[SpecRevisionView]:
        return await run_in_threadpool(std.specs)

    @api.post("/standards/specs", status_code=201)
    async def add_spec(body: SpecRevisionIn, login: Login = Depends(write)) -> SpecRevisionView:
        return await _do(std.add_spec_revision, body, actor=login.username)

    @api.get("/standards/procedures", dependencies=[Depends(read)])
    async def procedures() -> list[ProcedureView]:
        return await run_in_threadpool(std.procedures)

    @api.post("/standards/procedures", status_code=201)
    async def add_procedure(body: ProcedureIn, login: Login = Depends(write)) -> ProcedureView:
        return await _do(std.add_procedure, body, actor=login.username)

    @api.get("/standards/procedures/{procedure}/revisions", dependencies=[Depends(read)])
    async def revisions(procedure: str) -> list[RevisionView]:
        return await run_in_threadpool(std.revisions, procedure)

    @api.post("/standards/procedures/{procedure}/revisions", status_code=201)
    async def draft(procedure: str, body: RevisionIn, login: Login = Depends(write)) -> RevisionView:
        return await _do(std.draft, procedure, body, actor=login.username)

    async def _approve(procedure: str, revision: str, body: ApprovalIn, login: Login) -> RevisionView:
        held = await run_in_threadpool(std.procedure, procedure)
        if held is None:
            raise HTTPException(status_code=404, detail=f"no procedure {procedure}")
        signature = await _do(_approval, means, login, held.method, body)
        approved = await _do(std.approve, procedure, revision, signature, actor=login.username)
        await means.standards_publisher.sweep()  # in force today: the stations have it now
        return approved

    @api.post("/standards/procedures/{procedure}/revisions/{revision}/approval")
    async def approve(
        procedure: str, revision: str, body: ApprovalIn, login: Login = Depends(write)
    ) -> RevisionView:
        """Sign the revision (a Level 3 of the method whose credential verifies); sent once in force."""
        return await _approve(procedure, revision, body, login)

    @pages.get("/standards", response_class=HTMLResponse)
    async def standards_page(request: Request, login: Login = Depends(read), error: str = "") -> HTMLResponse:
        found = await run_in_threadpool(std.procedures)
        revs = {p.id: await run_in_threadpool(std.revisions, p.id) for p in found}
        return TEMPLATES.TemplateResponse(
            request,
            "means/standards.html",
            {
                "page": "Specs and procedures",
                "login": login,
                "specs": await run_in_threadpool(std.specs),
                "procedures": found,
                "revisions": revs,
                "error": error,
            },
        )

    @pages.post("/standards/{procedure}/{revision}/approve")
    async def approve_form(procedure: str, revision: str, login: Login = Depends(write)) -> Response:
        try:
            await _approve(procedure, revision, ApprovalIn(), login)
        except HTTPException as err:
            detail = err.detail[0]["message"] if isinstance(err.detail, list) else str(err.detail)
            return RedirectResponse(f"/standards?error={_q(detail)}", status_code=303)
        return RedirectResponse("/standards", status_code=303)

    # -- QACentral ----------------------------------------------------------------------------

    @api.get("/ncrs", dependencies=[Depends(read)])
    async def ncrs(
        open_only: bool = Query(default=False, alias="open"), station: str | None = None
    ) -> list[NcrView]:
        return await run_in_threadpool(lambda: qa.ncrs(open_only=open_only, station=station))

    @api.get("/ncrs/{ncr}", dependencies=[Depends(read)])
    async def ncr(ncr: str) -> NcrView:
        found = await run_in_threadpool(qa.ncr, ncr)
        if found is None:
            raise HTTPException(status_code=404, detail=f"no NCR {ncr}")
        return found

    @api.post("/ncrs/{ncr}/evidence", status_code=201)
    async def evidence(ncr: str, body: EvidenceIn, login: Login = Depends(write)) -> NcrView:
        return await _do(qa.add_evidence, ncr, body, actor=login.username)

    async def _decide(ncr: str, body: DispositionIn, login: Login) -> NcrView:
        held = await run_in_threadpool(qa.ncr, ncr)
        if held is None:
            raise HTTPException(status_code=404, detail=f"no NCR {ncr}")
        signature = await _do(disposition_signature, means, login, held.station, body)
        return await _refusing(means.decisions.decide(ncr, body, signature, actor=login.username))

    @api.post("/ncrs/{ncr}/disposition")
    async def decide(ncr: str, body: DispositionIn, login: Login = Depends(write)) -> NcrView:
        """Disposition (and close) an NCR; the station applies it and its job may go on."""
        return await _decide(ncr, body, login)

    @api.get("/capas", dependencies=[Depends(read)])
    async def capas() -> list[CapaView]:
        return await run_in_threadpool(qa.capas)

    @api.post("/capas", status_code=201)
    async def open_capa(body: CapaIn, login: Login = Depends(write)) -> CapaView:
        return await _do(qa.open_capa, body, actor=login.username)

    @api.post("/capas/{capa}/verification")
    async def verify(capa: str, body: VerificationIn, login: Login = Depends(write)) -> CapaView:
        return await _do(qa.verify_capa, capa, body, actor=login.username)

    @api.get("/yield", dependencies=[Depends(read)])
    async def first_pass_yield() -> list[Yield]:
        return await run_in_threadpool(qa.first_pass_yield)

    @pages.get("/ncrs", response_class=HTMLResponse)
    async def ncrs_page(request: Request, login: Login = Depends(read)) -> HTMLResponse:
        return TEMPLATES.TemplateResponse(
            request,
            "means/ncrs.html",
            {
                "page": "Nonconformances",
                "login": login,
                "ncrs": await run_in_threadpool(qa.ncrs),
                "capas": await run_in_threadpool(qa.capas),
                "yields": await run_in_threadpool(qa.first_pass_yield),
            },
        )

    @pages.get("/ncrs/{ncr}", response_class=HTMLResponse)
    async def ncr_page(
        request: Request, ncr: str, login: Login = Depends(read), error: str = ""
    ) -> HTMLResponse:
        found = await run_in_threadpool(qa.ncr, ncr)
        if found is None:
            raise HTTPException(status_code=404, detail=f"no NCR {ncr}")
        return TEMPLATES.TemplateResponse(
            request, "means/ncr.html", {"page": f"NCR {ncr}", "login": login, "ncr": found, "error": error}
        )

    @pages.post("/ncrs/{ncr}/disposition")
    async def decide_form(request: Request, ncr: str, login: Login = Depends(write)) -> Response:
        fields = await form_fields(request)
        try:
            body = DispositionIn(
                disposition=fields.get("disposition", ""),
                design_authority_approval=fields.get("design_authority_approval") or None,
                marking=fields.get("marking") or None,
                close=fields.get("close") == "yes",
                evidence=fields.get("evidence") or None,
            )
            await _decide(ncr, body, login)
        except ValidationError as err:
            message = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in err.errors())
            return RedirectResponse(f"/ncrs/{ncr}?error={_q(message)}", status_code=303)
        except HTTPException as err:
            detail = err.detail[0]["message"] if isinstance(err.detail, list) else str(err.detail)
            return RedirectResponse(f"/ncrs/{ncr}?error={_q(detail)}", status_code=303)
        return RedirectResponse(f"/ncrs/{ncr}", status_code=303)

    # -- InventoryHub -------------------------------------------------------------------------

    @api.get("/materials", dependencies=[Depends(read)])
    async def materials() -> list[MaterialView]:
        return await run_in_threadpool(inv.materials)

    @api.post("/materials", status_code=201)
    async def add_material(body: MaterialIn, login: Login = Depends(write)) -> MaterialView:
        return await _refusing(means.inventory_publisher.add_material(body, actor=login.username))

    @api.get("/lots", dependencies=[Depends(read)])
    async def lots() -> list[LotView]:
        return await run_in_threadpool(inv.lots)

    @api.post("/lots", status_code=201)
    async def receive(body: LotIn, login: Login = Depends(write)) -> LotView:
        """A lot received: the stations that use its material get it."""
        return await _refusing(means.inventory_publisher.receive(body, actor=login.username))

    @api.get("/purchase-requests", dependencies=[Depends(read)])
    async def purchase_requests() -> list[PurchaseRequest]:
        return await run_in_threadpool(inv.purchase_requests)

    @api.post("/import/lots")
    async def import_lots(
        request: Request,
        apply: bool = False,
        fmt: Format = Query(default=Format.CSV, alias="format"),
        file: str = Query("", max_length=200, description="The file's name, for the problems' messages."),
        login: Login = Depends(write),
    ) -> LotImport:
        """Lots from a spreadsheet: a dry run unless ``apply=true``; a file with a problem writes nothing."""
        from smart.hub.inventory import importing as lot_import

        raw = await request.body()
        if len(raw) > MAX_IMPORT_BYTES:
            raise HTTPException(status_code=413, detail="the file is too large")
        checked = await run_in_threadpool(lot_import.check, raw, fmt, inventory=inv, file=file)
        written = False
        if apply and checked.ok:
            await _refusing(means.inventory_publisher.receive_many(list(checked.lots), actor=login.username))
            written = True
        return LotImport(**checked.to_json(), written=written)

    @pages.get("/inventory", response_class=HTMLResponse)
    async def inventory_page(request: Request, login: Login = Depends(read)) -> HTMLResponse:
        return TEMPLATES.TemplateResponse(
            request,
            "means/inventory.html",
            {
                "page": "Materials and lots",
                "login": login,
                "materials": await run_in_threadpool(inv.materials),
                "lots": await run_in_threadpool(inv.lots),
                "requests": await run_in_threadpool(inv.purchase_requests),
                "today": inv.today(),
            },
        )

    # -- the training matrix, into SMART-ID ---------------------------------------------------

    if smartid is not None:
        from smart.hub.vault import training_matrix

        people_write = guard.requires(Permission.PEOPLE_WRITE)

        @api.post("/import/training-matrix")
        async def import_matrix(
            request: Request,
            apply: bool = False,
            fmt: Format = Query(default=Format.CSV, alias="format"),
            file: str = Query("", max_length=200, description="The file's name, for the problems' messages."),
            login: Login = Depends(people_write),
        ) -> TrainingImport:
            """A dry run unless ``apply=true``; a file with any problem writes nothing."""
            raw = await request.body()
            if len(raw) > MAX_IMPORT_BYTES:
                raise HTTPException(status_code=413, detail="the file is too large")
            checked = await run_in_threadpool(
                training_matrix.check, raw, fmt, smartid=smartid, stations=stations, file=file
            )
            counts: dict[str, int] = {}
            if apply and checked.ok:
                counts = dict(
                    await run_in_threadpool(
                        training_matrix.run, checked, smartid=smartid, actor=login.username
                    )
                )
            summary = checked.to_json()
            return TrainingImport(**summary, written=bool(counts), counts=counts)

        @pages.get("/people/import", response_class=HTMLResponse)
        async def matrix_page(request: Request, login: Login = Depends(people_write)) -> HTMLResponse:
            """Upload the training matrix: a dry run lists what would change, or every problem."""
            return TEMPLATES.TemplateResponse(
                request,
                "access/training_matrix.html",
                {
                    "page": "Import the training matrix",
                    "login": login,
                    "columns": training_matrix.COLUMNS,
                    "required": training_matrix.REQUIRED,
                    "records": training_matrix.RECORDS,
                },
            )

    return [api, pages]


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
