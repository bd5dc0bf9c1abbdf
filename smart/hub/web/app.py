"""The hub web app: a live status page of the floor, ``/healthz`` and ``/api/status``.

The page is rendered on the server (so it reads without JavaScript) and then
refreshes its rows from ``/api/status`` every two seconds, so an operator
watching it sees a station leaf drop and come back without reloading.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates

from smart.runtime.floor import FloorStatus

StatusSource = Callable[[], Awaitable[FloorStatus]]

_TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def create_app(status: StatusSource, *, title: str = "SMART hub") -> FastAPI:
    app = FastAPI(title=title, docs_url="/api/docs", redoc_url=None)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        """Liveness of the web app itself (the floor's parts are in /api/status)."""
        return JSONResponse({"ok": True})

    @app.get("/api/status", response_model=FloorStatus)
    async def api_status() -> FloorStatus:
        """Every service and station with ``healthy`` and, when not, why not."""
        return await status()

    @app.get("/", response_class=HTMLResponse)
    async def status_page(request: Request) -> HTMLResponse:
        current = await status()
        return _TEMPLATES.TemplateResponse(request, "status.html", {"title": title, "status": current})

    return app
