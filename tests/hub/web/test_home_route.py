"""``/`` belongs to a router that serves it (the dashboard); the app's redirect only where none does.

Since FastAPI 0.165 an included router is one route of the app with no ``path`` of its own, so a
check that read ``route.path == "/"`` never saw the dashboard's ``/`` and always added the
redirect beside it.
"""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient

from smart.hub.web.app import answers, create_app, routes_answering
from smart.hub.web.status import FloorStatus


async def _floor_status() -> FloorStatus:
    return FloorStatus(healthy=True, services=[], checked_at=time.time())


def test_a_router_that_serves_home_keeps_it_and_the_app_adds_no_redirect_beside_it() -> None:
    board = APIRouter()

    @board.get("/", response_class=HTMLResponse)
    async def dashboard() -> str:
        return "<h1>Quality dashboard</h1>"

    nested = APIRouter()
    nested.include_router(board)  # a router included in a router the app includes: still seen
    for routers in ([board], [nested]):
        app = create_app(_floor_status, routers=routers)
        assert answers(app, "GET", "/")
        assert len(routes_answering(app, "GET", "/")) == 1  # the dashboard's only: no redirect added
        with TestClient(app) as client:
            home = client.get("/", follow_redirects=False)
        assert home.status_code == 200 and "Quality dashboard" in home.text


def test_routers_that_do_not_serve_home_leave_the_redirect_to_the_status_page() -> None:
    elsewhere = APIRouter(prefix="/board")

    @elsewhere.get("/", response_class=HTMLResponse)
    async def board() -> str:
        return "<h1>Board</h1>"

    posting = APIRouter()

    @posting.post("/")
    async def posted() -> dict[str, bool]:  # on the path, for another method only
        return {"posted": True}

    app = create_app(_floor_status, routers=[elsewhere, posting])
    with TestClient(app) as client:
        home = client.get("/", follow_redirects=False)
        board_page = client.get("/board/", follow_redirects=False)
        post = client.post("/")
    assert home.status_code == 303 and home.headers["location"] == "/admin/status"
    assert board_page.status_code == 200 and "Board" in board_page.text
    assert post.status_code == 200 and post.json() == {"posted": True}
