"""The hub web app: the dashboard at ``/``, the floor status at ``/admin/status``, health and the API.

The home page belongs to the quality manager: the dashboard
(:mod:`smart.hub.dashboard`, one of ``routers``) answers ``/`` and sends a
visitor who is not signed in to the sign-in page. A hub without it (a bare
status app) sends ``/`` to the status page. The status page is the
administrator's infrastructure table (processes, storage, lags); it is
rendered on the server (so it reads without JavaScript) and then refreshes
its rows from ``/api/status`` every two seconds, so an operator watching it
sees a station leaf drop and come back without reloading. It shows no more
than ``/api/status`` does, so it asks for no sign-in either; signed in, it
carries the hub's navigation bar. ``/static`` serves the shop's one
stylesheet (:mod:`smart.style`) and, under ``/static/vendor``, the chart
library the hub ships (no CDN: hubs are air-gapped).
"""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from starlette.routing import BaseRoute, Match

from smart import style
from smart.hub.vault.logins import Logins
from smart.hub.web.auth import TEMPLATES, Guard
from smart.hub.web.status import FloorStatus

StatusSource = Callable[[], Awaitable[FloorStatus]]
#: More Prometheus text for ``/metrics`` from the services of this process (the ledger intake's).
MetricsSource = Callable[[], Awaitable[bytes]]

#: The chart library and anything else the hub vendors (each beside its licence).
VENDORED = Path(__file__).parent / "static"


def server_config(app: FastAPI, *, host: str, port: int, forwarded_allow_ips: str) -> uvicorn.Config:
    """How the hub serves ``app``: uvicorn, trusting forwarded headers from ``forwarded_allow_ips`` only.

    Behind the DMZ proxy TLS ends at the proxy: the hub sees http from the proxy's address, and only
    the proxy's ``X-Forwarded-Proto``/``-For`` say the client came over https (the OAuth token
    endpoint refuses plain http) and from where (the logs). A header from anyone else is ignored,
    so a client cannot claim https past a proxy that does not set it.
    """
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,  # never written at "warning"; off, uvicorn does not even build the line
        lifespan="off",
        proxy_headers=True,
        forwarded_allow_ips=[ip.strip() for ip in forwarded_allow_ips.split(",") if ip.strip()],
    )


def settle_for_serving() -> None:
    """Freeze the heap built at start-up out of the garbage collector's sight, just before serving.

    A started hub holds ~150,000 objects that live as long as it does (modules, routes, models,
    pools); every full collection walks them all, ~50-110 ms of one core with the interpreter
    stopped, so each one stalled every request in flight (the client API's p99 under load was such
    a stall). Frozen, a full collection walks only what was made since: well under a millisecond.
    The young generations are left as they are (their collections are a fraction of a millisecond).
    """
    gc.collect()
    gc.freeze()


def routes_answering(app: FastAPI, method: str, path: str) -> list[BaseRoute]:
    """The routes of ``app`` that answer ``method path``, asked the way its router dispatches one.

    Each route is asked to match a request (Starlette's ``BaseRoute.matches``) rather than read
    for a ``path``: since FastAPI 0.165 an included router is one route of its own, with no path,
    whose routes match through it under the prefix it was included with. A route on the path for
    other methods only (a partial match) does not answer.
    """
    request: dict[str, Any] = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [],
    }
    return [route for route in app.router.routes if route.matches(dict(request))[0] is Match.FULL]


def answers(app: FastAPI, method: str, path: str) -> bool:
    """Whether a route of ``app`` answers ``method path`` (:func:`routes_answering`)."""
    return bool(routes_answering(app, method, path))


def create_app(
    status: StatusSource,
    *,
    title: str = "SMART hub",
    routers: Sequence[APIRouter] = (),
    service_metrics: MetricsSource | None = None,
    logins: Logins | None = None,
) -> FastAPI:
    """The hub app; ``routers`` adds pages of other hub services (e.g. SMART-ID's login and people pages).

    ``logins`` lets the status page show the navigation bar to whoever is signed in.
    """
    app = FastAPI(title=title, docs_url="/api/docs", redoc_url=None)
    for router in routers:
        app.include_router(router)
    app.mount("/static/vendor", StaticFiles(directory=VENDORED), name="vendor")
    app.mount("/static", StaticFiles(directory=style.DIRECTORY), name="static")
    guard = Guard(logins) if logins is not None else None

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        """Liveness of the web app itself (the floor's parts are in /api/status)."""
        return JSONResponse({"ok": True})

    @app.get("/api/status", response_model=FloorStatus)
    async def api_status() -> FloorStatus:
        """Every service and station with ``healthy`` and, when not, why not."""
        return await status()

    registry = CollectorRegistry()
    healthy_gauge = Gauge(
        "smart_service_healthy",
        "1 when the floor's service is healthy",
        ["service", "kind"],
        registry=registry,
    )
    restarts_gauge = Gauge(
        "smart_service_restarts", "Restarts of the service by the supervisor", ["service"], registry=registry
    )
    storage_gauge = Gauge(
        "smart_jetstream_storage_bytes", "JetStream storage used per domain", ["domain"], registry=registry
    )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus metrics: each service's health, restarts and JetStream storage, probed now;
        with ``service_metrics``, the figures of this process's services (the ledger intake's) after them."""
        current = await status()
        for service in current.services:
            healthy_gauge.labels(service.name, service.kind).set(1 if service.healthy else 0)
            restarts_gauge.labels(service.name).set(service.restarts)
            if service.jetstream_domain is not None and service.storage_bytes is not None:
                storage_gauge.labels(service.jetstream_domain).set(service.storage_bytes)
        more = await service_metrics() if service_metrics is not None else b""
        return Response(generate_latest(registry) + more, media_type=CONTENT_TYPE_LATEST)

    @app.get("/admin/status", response_class=HTMLResponse)
    async def status_page(request: Request) -> HTMLResponse:
        current = await status()
        login = await guard.current(request) if guard is not None else None
        return TEMPLATES.TemplateResponse(
            request, "status.html", {"page": f"{title} — floor status", "status": current, "login": login}
        )

    if not answers(app, "GET", "/"):

        @app.get("/", include_in_schema=False)
        async def home() -> RedirectResponse:
            """No dashboard on this app: the status page is all there is to show."""
            return RedirectResponse("/admin/status", status_code=303)

    return app
