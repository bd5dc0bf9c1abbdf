"""The station's own web app: health, status, and the operator's kiosk pages (:mod:`.kiosk`).

It is served by the node agent's process, so it answers even with every hub
down, and what it shows comes from the station's local state only.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST

from smart import style
from smart.node.agent import NodeAgent
from smart.node.kiosk.app import Kiosk


def create_station_app(agent: NodeAgent, kiosk: Kiosk | None = None) -> FastAPI:
    """The agent's health and status; with ``kiosk``, the operator's pages at ``/kiosk`` too."""
    app = FastAPI(title=f"SMART station {agent.station}", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """Healthy while the agent runs; a station without a valid contract is up, but says so."""
        running = agent.ledger is not None
        body: dict[str, Any] = {"ok": running, "station": agent.station}
        if running:
            body["revisions"] = agent.enforcer.revisions
            body["connected"] = agent.connection is not None and agent.connection.is_connected
        return JSONResponse(body, status_code=200 if running else 503)

    @app.get("/api/status")
    async def status() -> dict[str, Any]:
        if kiosk is None:
            return agent.status()
        return {**kiosk.runtime.status(), "hub": kiosk.banner()["online"]}

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """The station's Prometheus figures (:mod:`smart.node.metrics`): agent, modules and kiosk."""
        return Response(agent.metrics.text(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/metrics/baseline", include_in_schema=False, status_code=204)
    async def metrics_baseline() -> Response:
        """An empty route of the same server: the baseline ``smart bench metrics`` measures beside."""
        return Response(status_code=204)

    if kiosk is not None:
        app.include_router(kiosk.router())
    app.mount("/static", StaticFiles(directory=style.DIRECTORY), name="static")  # the shop's one style

    return app
