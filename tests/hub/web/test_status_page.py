"""The hub status page as a person sees it in a browser: live health without reloading."""

from __future__ import annotations

import signal
import time
from typing import Any

import psutil
from fastapi.testclient import TestClient

from smart.hub.web.app import create_app
from smart.hub.web.status import FloorStatus, ServiceHealth, ledger_trouble
from smart.runtime import ports
from smart.runtime.background import BackgroundFloor
from smart.runtime.up import serve_web
from smart.testing.browser import screenshot_path
from smart.testing.patience import STATE_DEADLINE_S
from smart.testing.plugin import FloorFactory


def _row_health(page: Any, service: str) -> str:
    return str(page.locator(f'tr[data-service="{service}"] .health').inner_text()).strip()


def _wait_row(page: Any, service: str, health: str, deadline_s: float = STATE_DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if _row_health(page, service) == health:
            return
        time.sleep(0.1)
    raise AssertionError(f"{service} never shown {health}; page says {_row_health(page, service)}")


def _serve(floor: BackgroundFloor) -> str:
    port = ports.free_port()

    async def start() -> None:
        await serve_web(create_app(floor.floor.status), "127.0.0.1", port)

    floor.run(start())
    return f"http://127.0.0.1:{port}/admin/status"


def test_status_page_shows_a_killed_station_leaf_go_down_and_come_back_without_reload(
    floor_factory: FloorFactory, page: Any
) -> None:
    # A restart slower than the page's 2 s refresh, so the outage is on screen for a refresh.
    floor = floor_factory(stations=2, restart_backoff_s=3.0)
    url = _serve(floor)
    page.goto(url)
    page.evaluate("window.loadedOnce = true")  # lost if the page reloads
    _wait_row(page, "leaf-mt-1", "healthy")
    assert page.locator("#overall").inner_text() == "All services healthy"
    page.screenshot(path=str(screenshot_path("status-page-healthy")))

    pid = floor.floor.supervisor.pid("leaf-mt-1")
    assert pid is not None
    psutil.Process(pid).send_signal(signal.SIGKILL)
    _wait_row(page, "leaf-mt-1", "unhealthy")
    assert page.locator("#overall").inner_text() == "Some services are not healthy"
    assert page.locator('tr[data-service="leaf-mt-1"] .detail').inner_text()
    page.screenshot(path=str(screenshot_path("status-page-leaf-down")))

    _wait_row(page, "leaf-mt-1", "healthy")
    assert page.locator('tr[data-service="leaf-mt-1"] .restarts').inner_text() == "1"
    assert page.evaluate("window.loadedOnce") is True


def test_status_page_shows_each_stations_lags_and_links_its_kiosk() -> None:
    async def floor_status() -> FloorStatus:
        agent = ServiceHealth(
            name="node-pt-1",
            kind="station-agent",
            healthy=True,
            state="running",
            station="pt-1",
            ledger_lag=12,
            mirror_lag=3,
            url="http://127.0.0.1:8601/",
        )
        return FloorStatus(healthy=True, services=[agent], checked_at=time.time())

    with TestClient(create_app(floor_status)) as client:
        page = client.get("/admin/status").text
    row = page[page.index('data-service="node-pt-1"') :]
    row = row[: row.index("</tr>")]
    assert '<a href="http://127.0.0.1:8601/kiosk"' in row
    assert '<td class="lag">12</td>' in row and '<td class="mirror-lag">3</td>' in row


def test_a_station_whose_ledger_the_hub_refuses_is_shown_blocked_on_the_page_and_in_the_api() -> None:
    heartbeat = {
        "station": "pt-1",
        "ledger_lag": 40,
        "ledger_blocked": "fork alarm #3: node pt-1 #30 does not link to stored #29",
        "ledger_alarms": [{"key": "ledger-shipping", "message": "the hub refuses this station's ledger"}],
    }
    blocked, alarms = ledger_trouble(heartbeat)
    assert blocked == heartbeat["ledger_blocked"] and alarms == []  # the block is said once, as the block

    async def floor_status() -> FloorStatus:
        agent = ServiceHealth(
            name="node-pt-1",
            kind="station-agent",
            healthy=False,
            detail=f"ledger blocked: {blocked}",
            state="running",
            station="pt-1",
            ledger_lag=40,
            ledger_blocked=blocked,
            ledger_alarms=alarms,
        )
        return FloorStatus(healthy=False, services=[agent], checked_at=time.time())

    with TestClient(create_app(floor_status)) as client:
        page = client.get("/admin/status").text
        api = client.get("/api/status").json()
    row = page[page.index('data-service="node-pt-1"') :]
    row = row[: row.index("</tr>")]
    assert ">blocked</span> 40</td>" in row and "ledger blocked: fork alarm #3" in row
    (station,) = api["services"]
    assert station["healthy"] is False and station["ledger_blocked"].startswith("fork alarm #3")


def test_a_hub_without_a_dashboard_sends_home_to_the_status_page_and_serves_the_shared_stylesheet() -> None:
    async def floor_status() -> FloorStatus:
        return FloorStatus(healthy=True, services=[], checked_at=time.time())

    with TestClient(create_app(floor_status)) as client:
        home = client.get("/", follow_redirects=False)
        stylesheet = client.get("/static/smart.css")
        chart = client.get("/static/vendor/uplot/uPlot.iife.min.js")
        licence = client.get("/static/vendor/uplot/LICENSE")
    assert home.status_code == 303 and home.headers["location"] == "/admin/status"
    assert stylesheet.status_code == 200 and "nav.bar" in stylesheet.text
    assert chart.status_code == 200 and "uPlot" in chart.text
    assert licence.status_code == 200 and "MIT License" in licence.text
