"""MaintenanceHub's pages and its REST API under ``/api/v1``: register, calibrations, surveys, orders, recall.

Every route needs a signed-in login whose role holds the permission:
``maintenance.read`` to read (every role), ``maintenance.write`` to enter
equipment, calibrations, surveys and orders, ``maintenance.disposition``
to disposition an impact review. Closing an order and a disposition are
signed besides by the person's own SMART-ID credential, which the hub
verifies (:mod:`.signers`); the login is recorded as who entered it. A
refusal answers 422 naming the field (and the row and column for a file).
The pages post to the same API from the browser, so there is one way in.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from smart.access.roles import Permission, allows
from smart.hub.clients.models import Problem
from smart.hub.clients.store import Refused
from smart.hub.clients.web import MAX_IMPORT_BYTES, refused
from smart.hub.maintenance import calibration_import, importing
from smart.hub.maintenance.models import (
    CalibrationIn,
    CalibrationView,
    DispositionIn,
    DueItem,
    EquipmentIn,
    EquipmentView,
    OrderIn,
    OrderView,
    RecallView,
    ReviewView,
    SignedIn,
    SurveyIn,
    SurveyView,
)
from smart.hub.maintenance.store import MaintenanceHub
from smart.hub.vault.logins import Login
from smart.hub.web.auth import TEMPLATES, Guard

#: The calendar's windows (days ahead).
WINDOWS = (30, 60, 90)
#: Certificate files served back as what they are; anything else is sent as bytes to save.
SAFE_TYPES = frozenset({"application/pdf", "image/png", "image/jpeg", "image/tiff"})
#: Rows per calendar page (a page of a few hundred rows is what a person reads; the rest is paged).
PAGE = 200


class CalibrationRecorded(BaseModel):
    calibration: CalibrationView
    #: Set when the calibration was out of tolerance: the jobs to review, the asset blocked.
    recall: RecallView | None


class EquipmentImport(BaseModel):
    rows: int
    ok: bool
    written: bool
    equipment: int
    sha256: str
    problems: list[Problem]


class CalibrationImport(BaseModel):
    rows: int
    ok: bool
    written: bool
    calibrations: int
    #: Rows found out of tolerance: each opens a recall (impact reviews, the asset blocked) when written.
    out_of_tolerance: int
    assets: list[str]
    sha256: str
    problems: list[Problem]


def router(hub: MaintenanceHub, guard: Guard) -> APIRouter:
    routes = APIRouter(prefix="/api/v1", tags=["MaintenanceHub"])
    read = guard.requires(Permission.MAINTENANCE_READ)
    write = guard.requires(Permission.MAINTENANCE_WRITE)
    disposition = guard.requires(Permission.MAINTENANCE_DISPOSITION)

    async def _do(call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await run_in_threadpool(call, *args, **kwargs)
        except Refused as err:
            raise refused(err) from err

    @routes.get("/equipment", dependencies=[Depends(read)])
    async def list_equipment(station: str | None = None) -> list[EquipmentView]:
        """The register, by station; ``blocked``: last calibration out of tolerance."""
        found: list[EquipmentView] = await run_in_threadpool(hub.register_list, station=station)
        return found

    @routes.get("/equipment/{asset_id}", dependencies=[Depends(read)])
    async def show_equipment(asset_id: str) -> EquipmentView:
        found = await run_in_threadpool(hub.equipment, asset_id)
        if found is None:
            raise HTTPException(status_code=404, detail=f"no equipment {asset_id}")
        return found

    @routes.put("/equipment/{asset_id}")
    async def register(asset_id: str, body: EquipmentIn, login: Login = Depends(write)) -> EquipmentView:
        """Add or change an asset; its station receives the record."""
        if body.asset_id != asset_id:
            raise HTTPException(
                status_code=422, detail=[{"field": "asset_id", "message": f"the body is {body.asset_id}"}]
            )
        saved: EquipmentView = await _do(hub.register, body, actor=login.username)
        await hub.publish_soon()
        return saved

    @routes.get("/equipment/{asset_id}/calibrations", dependencies=[Depends(read)])
    async def list_calibrations(asset_id: str) -> list[CalibrationView]:
        found: list[CalibrationView] = await run_in_threadpool(hub.calibrations, asset_id)
        return found

    @routes.post("/equipment/{asset_id}/calibrations", status_code=201)
    async def record_calibration(
        asset_id: str, body: CalibrationIn, login: Login = Depends(write)
    ) -> CalibrationRecorded:
        """Record a calibration with its certificate; out of tolerance: the impact list, and the block."""
        view, found = await _do(hub.record_calibration, asset_id, body, actor=login.username)
        await hub.publish_soon()
        return CalibrationRecorded(calibration=view, recall=found)

    @routes.get("/calibrations/{calibration_id}/certificate", dependencies=[Depends(read)])
    async def certificate(calibration_id: int) -> Response:
        found = await run_in_threadpool(hub.certificate, calibration_id)
        if found is None:
            raise HTTPException(
                status_code=404, detail=f"calibration {calibration_id} has no certificate file"
            )
        # what a browser is sent back is never what the uploader said it was, unless it is a document
        kind = found.content_type if found.content_type in SAFE_TYPES else "application/octet-stream"
        name = "".join(c if c.isalnum() or c in "._- " else "_" for c in found.name)[:120] or "certificate"
        return Response(
            found.data,
            media_type=kind,
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "X-Content-Type-Options": "nosniff",
            },
        )

    @routes.get("/equipment/{asset_id}/surveys", dependencies=[Depends(read)])
    async def list_surveys(asset_id: str) -> list[SurveyView]:
        found: list[SurveyView] = await run_in_threadpool(hub.surveys, asset_id)
        return found

    @routes.post("/equipment/{asset_id}/surveys", status_code=201)
    async def record_survey(asset_id: str, body: SurveyIn, login: Login = Depends(write)) -> SurveyView:
        """A furnace's TUS or SAT; the next is due by the contract's class × instrumentation table."""
        view: SurveyView = await _do(hub.record_survey, asset_id, body, actor=login.username)
        await hub.publish_soon()
        return view

    @routes.post("/equipment/{asset_id}/orders", status_code=201)
    async def open_order(asset_id: str, body: OrderIn, login: Login = Depends(write)) -> OrderView:
        opened: OrderView = await _do(hub.open_order, asset_id, body, actor=login.username)
        return opened

    @routes.get("/maintenance/orders", dependencies=[Depends(read)])
    async def list_orders(asset_id: str | None = None, open: bool = False) -> list[OrderView]:
        found: list[OrderView] = await run_in_threadpool(hub.orders, asset_id=asset_id, open_only=open)
        return found

    @routes.post("/maintenance/orders/{order_id}/done")
    async def order_done(order_id: int, body: SignedIn, login: Login = Depends(write)) -> OrderView:
        """Close an order, signed by the credential of who did it; the station's counter starts again."""
        try:
            return await hub.complete_order(order_id, body, actor=login.username)
        except Refused as err:
            raise refused(err) from err

    @routes.get("/maintenance/due", dependencies=[Depends(read)])
    async def due(
        days: int = Query(30, ge=0, le=366),
        station: str | None = None,
        limit: int = Query(200, ge=1, le=1000),
        offset: int = Query(0, ge=0),
    ) -> list[DueItem]:
        """Calibrations, TUS and SAT falling due within ``days`` (overdue first), a page at a time."""
        found, _ = await run_in_threadpool(hub.due, days, station=station, limit=limit, offset=offset)
        return found

    @routes.get("/recall/reviews", dependencies=[Depends(read)])
    async def list_reviews(asset_id: str | None = None, open: bool = False) -> list[ReviewView]:
        found: list[ReviewView] = await run_in_threadpool(hub.reviews, asset_id=asset_id, open_only=open)
        return found

    @routes.get("/recall/{calibration_id}", dependencies=[Depends(read)])
    async def show_recall(calibration_id: int) -> RecallView:
        found: RecallView = await _do(hub.recall_of, calibration_id)
        return found

    @routes.post("/recall/reviews/{review_id}/disposition")
    async def dispose(review_id: int, body: DispositionIn, login: Login = Depends(disposition)) -> ReviewView:
        """Disposition one job's impact review, signed by an authorised person's credential."""
        try:
            return await hub.dispose(review_id, body, actor=login.username)
        except Refused as err:
            raise refused(err) from err

    @routes.post("/import/equipment")
    async def import_equipment(
        request: Request,
        format: str = Query("csv", pattern="^(csv|xlsx)$"),
        dry_run: bool = Query(True, description="Only list the problems; write nothing."),
        file: str = Query("", max_length=200, description="The file's name, for the problems' messages."),
        login: Login = Depends(write),
    ) -> EquipmentImport:
        raw = await request.body()
        if len(raw) > MAX_IMPORT_BYTES:
            raise HTTPException(status_code=413, detail=f"a file of at most {MAX_IMPORT_BYTES} bytes")
        checked = await _do(
            importing.run, raw, fmt=format, hub=hub, actor=login.username, dry_run=dry_run, file=file
        )
        if checked.ok and not dry_run:
            await hub.publish_soon()
        return EquipmentImport(
            rows=checked.rows,
            ok=checked.ok,
            written=checked.ok and not dry_run,
            equipment=len(checked.equipment),
            sha256=checked.digest,
            problems=list(checked.problems),
        )

    @routes.post("/import/calibrations")
    async def import_calibrations(
        request: Request,
        format: str = Query("csv", pattern="^(csv|xlsx)$"),
        dry_run: bool = Query(True, description="List problems and changes; write nothing."),
        file: str = Query("", max_length=200, description="The file's name, for the problems' messages."),
        login: Login = Depends(write),
    ) -> CalibrationImport:
        """Calibrations from the certificate log; any bad row: every problem listed, nothing written."""
        raw = await request.body()
        if len(raw) > MAX_IMPORT_BYTES:
            raise HTTPException(status_code=413, detail=f"a file of at most {MAX_IMPORT_BYTES} bytes")
        checked = await _do(
            calibration_import.run,
            raw,
            fmt=format,
            hub=hub,
            actor=login.username,
            dry_run=dry_run,
            file=file,
        )
        if checked.ok and not dry_run:
            await hub.publish_soon()
        summary = checked.to_json()
        return CalibrationImport(
            rows=checked.rows,
            ok=checked.ok,
            written=checked.ok and not dry_run,
            calibrations=summary["calibrations"],
            out_of_tolerance=summary["out_of_tolerance"],
            assets=summary["assets"],
            sha256=checked.digest,
            problems=list(checked.problems),
        )

    return routes


def page_router(hub: MaintenanceHub, guard: Guard) -> APIRouter:
    """The pages: register, an asset, the due calendar, the recall reviews, the survey schedule, import."""
    routes = APIRouter()
    read = guard.requires(Permission.MAINTENANCE_READ)

    def _page(request: Request, template: str, page: str, login: Login, **values: Any) -> HTMLResponse:
        return TEMPLATES.TemplateResponse(
            request,
            f"maintenance/{template}",
            {
                "page": page,
                "login": login,
                "may_write": allows(login.role, Permission.MAINTENANCE_WRITE),
                "may_dispose": allows(login.role, Permission.MAINTENANCE_DISPOSITION),
                **values,
            },
        )

    @routes.get("/maintenance", response_class=HTMLResponse, include_in_schema=False)
    async def register_page(
        request: Request, station: str | None = None, login: Login = Depends(read)
    ) -> HTMLResponse:
        found = await run_in_threadpool(hub.register_list, station=station)
        return _page(request, "register.html", "Equipment register", login, equipment=found, station=station)

    @routes.get("/maintenance/calendar", response_class=HTMLResponse, include_in_schema=False)
    async def calendar_page(
        request: Request, days: int = 30, offset: int = 0, login: Login = Depends(read)
    ) -> HTMLResponse:
        if days not in WINDOWS:
            days = 30
        offset = max(0, offset)
        today = hub.clock().astimezone(hub.zone).date()
        found, total = await run_in_threadpool(hub.due, days, today=today, limit=PAGE, offset=offset)
        return _page(
            request,
            "calendar.html",
            f"Due in the next {days} days",
            login,
            due=found,
            days=days,
            windows=WINDOWS,
            today=today,
            total=total,
            offset=offset,
            page_size=PAGE,
        )

    @routes.get("/maintenance/recall", response_class=HTMLResponse, include_in_schema=False)
    async def recall_page(request: Request, login: Login = Depends(read)) -> HTMLResponse:
        found = await run_in_threadpool(hub.reviews)
        return _page(request, "recall.html", "Recall: impact reviews", login, reviews=found)

    @routes.get("/maintenance/schedule", response_class=HTMLResponse, include_in_schema=False)
    async def schedule_page(
        request: Request, station: str = "ht-1", login: Login = Depends(read)
    ) -> HTMLResponse:
        grids = {survey: hub.schedule.grid(station, survey) for survey in ("TUS", "SAT")}
        return _page(
            request,
            "schedule.html",
            f"TUS and SAT schedule at {station}",
            login,
            grids=grids,
            classes=("1", "2", "3", "4", "5", "6"),
            types=("A", "B", "C", "D", "D+", "E"),
            station=station,
        )

    @routes.get("/maintenance/import", response_class=HTMLResponse, include_in_schema=False)
    async def import_page(request: Request, login: Login = Depends(read)) -> HTMLResponse:
        return _page(
            request,
            "import.html",
            "Import the equipment register or calibrations",
            login,
            columns=importing.COLUMNS,
            calibration_columns=calibration_import.COLUMNS,
        )

    @routes.get("/maintenance/equipment/{asset_id}", response_class=HTMLResponse, include_in_schema=False)
    async def asset_page(request: Request, asset_id: str, login: Login = Depends(read)) -> HTMLResponse:
        found = await run_in_threadpool(hub.equipment, asset_id)
        if found is None:
            raise HTTPException(status_code=404, detail=f"no equipment {asset_id}")
        return _page(
            request,
            "asset.html",
            f"{found.asset_id} ({found.kind} at {found.station})",
            login,
            asset=found,
            calibrations=await run_in_threadpool(hub.calibrations, asset_id),
            surveys=await run_in_threadpool(hub.surveys, asset_id),
            orders=await run_in_threadpool(hub.orders, asset_id=asset_id),
            reviews=await run_in_threadpool(hub.reviews, asset_id=asset_id),
        )

    return routes
