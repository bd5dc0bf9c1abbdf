"""``smart up``: run the whole embedded floor in the foreground until Ctrl-C or SIGTERM.

Order of start: PostgreSQL, hub NATS (with its buckets and streams), station
leaves, station node agents, the hub services (ledger intake), the reference
contracts from the settings' ``contracts_dir`` (first start only), then the hub web app;
on a stop signal the web app stops first, then the supervisor stops its
children in reverse order, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections.abc import Callable, Generator
from datetime import UTC, datetime

import nats
import structlog
import uvicorn
from fastapi import FastAPI

from smart.embedded import driver as contracts_driver
from smart.hub.services import HubRoles
from smart.hub.vault import publish as vault_publish
from smart.hub.web.app import create_app
from smart.modules.vision.module import SCANS_FOLDER
from smart.node.kiosk import app as kiosk_app
from smart.runtime import demo_shop
from smart.runtime.floor import Floor
from smart.settings import Settings

log = structlog.get_logger("smart.runtime.up")


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the floor owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def serve_web(app: FastAPI, host: str, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """Start serving ``app`` on the running loop; returns once it accepts connections."""
    # A request stuck on a wedged browser or a bus that never answers must not hold the floor's
    # shutdown (Ctrl-C, a test's teardown) for ever: uvicorn waits for open requests without a bound.
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="off", timeout_graceful_shutdown=10
    )
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve(), name=f"web-{port}")
    while not server.started:
        if task.done():
            await task
            raise RuntimeError(f"the web app on {host}:{port} stopped while starting")
        await asyncio.sleep(0.02)
    return server, task


def floor_urls(settings: Settings, floor: Floor) -> dict[str, str]:
    urls = {"hub status page": f"http://{settings.host}:{settings.web_port}/"}
    urls["hub status API"] = f"http://{settings.host}:{settings.web_port}/api/status"
    urls["hub sign-in (people, credentials)"] = f"http://{settings.host}:{settings.web_port}/login"
    # Prometheus scrape targets: the hub's (its services and ledger intake) and each station's below.
    urls["hub metrics"] = f"http://{settings.host}:{settings.web_port}/metrics"
    # The Business hub's client API (SMART-API), served with the other roles' pages on this one port.
    urls["client API (Business hub)"] = (
        f"http://{settings.host}:{settings.web_port}/api/v1/client/openapi.json"
    )
    if floor.hub is not None:
        urls["hub NATS"] = floor.hub.url
    for station, leaf in floor.leaves.items():
        urls[f"station {station} NATS"] = leaf.url
        if floor.node_agents:
            base = f"http://{settings.host}:{settings.station_web_port(station)}"
            urls[f"station {station} UI"] = f"{base}/"
            urls[f"station {station} metrics"] = f"{base}/metrics"
            # The station's own screen signs on once with this link (its secret, for this terminal only).
            token = kiosk_app.screen_token(settings.station_data_dir(station))
            urls[f"station {station} screen"] = f"{base}/kiosk/screen?token={token}"
            # Drop an image of a QR code (badge, traveler, part, PPE tag) here: it acts as a scan.
            urls[f"station {station} scans"] = str(settings.station_data_dir(station) / SCANS_FOLDER)
    if floor.postgres is not None:
        urls["PostgreSQL"] = f"postgresql://{settings.host}:{settings.postgres_port}/smart"
    return urls


async def seed_demo_shop(floor: Floor, services: HubRoles) -> dict[str, str]:
    """Put the demo shop at pt-1 and sr-1 (see :mod:`.demo_shop`); what to print about it.

    The people are registered in SMART-ID and published as SMART-ID always publishes, never written
    into the stations' records directly; the PO is entered, reviewed, routed and released through
    the hub's work services.
    """
    assert floor.hub is not None and services.work is not None and services.smartid is not None
    now = datetime.now(UTC)
    client = await nats.connect(
        floor.hub.url, **floor.settings.hub_nats_signin(), connect_timeout=5, max_reconnect_attempts=0
    )
    try:
        count = await demo_shop.seed_people_and_equipment(
            client.jetstream(),
            now,
            stations=set(floor.leaves),
            people=False,
            equipment=False,
            lots=services.means is None,
        )
        enrolled = await asyncio.to_thread(demo_shop.enrol, services.smartid, now)
        await vault_publish.publish(services.smartid, client.jetstream(), list(floor.leaves))
        log.info("demo_shop.enrolled", people=enrolled)
    finally:
        await client.close()
    if services.means is not None:  # the procedure and the lot through StandardsCentral and InventoryHub
        log.info("demo_shop.means", loaded=await demo_shop.load_means(services.means, now))
    released = await demo_shop.load_work(services.work, now)
    if services.maintenance is not None:
        await demo_shop.load_equipment(services.maintenance.hub, now)
    log.info(
        "demo_shop.seeded",
        station=demo_shop.STATION,
        records=count,
        released=list(released.keys) if released else "already released",
    )
    traveler = demo_shop.TRAVELER
    lines = {f"demo badge {badge}": what for badge, what in demo_shop.BADGES.items()}
    lines["demo traveler"] = (
        f"job {traveler['job']}, PO {traveler['po']} line {traveler['line']}, "
        f"part {traveler['part']} serial {traveler['serial']}"
    )
    return lines


async def approve_contract(name: str, revision: str, token: str, *, settings: Settings) -> list[str]:
    """The Vault page's approver on the embedded floor: what ``smart contract approve`` runs."""
    applied = await contracts_driver.approve(name, revision, token, settings)
    return [f"{a.kind.lower()}/{a.name} {a.outcome}" for a in applied]


async def seed_contracts(settings: Settings) -> list[contracts_driver.Applied]:
    """The Governors' start hook: the settings' contracts folder seeds the first start only.

    The folder is ``settings.contracts_dir`` (``SMART_CONTRACTS_DIR``, made absolute when the
    settings load), never ``./contracts`` of whatever directory ``smart up`` was started in: the
    same folder MaintenanceHub and the audit packet read their intervals from. The hub's state
    wins after the first start (:func:`smart.embedded.driver.load_contracts`).
    """
    return await contracts_driver.load_contracts(settings, settings.contracts_dir)


async def run(settings: Settings, *, on_ready: Callable[[dict[str, str]], None], demo: bool = False) -> None:
    """Run the floor until a stop signal; raises ``FloorError`` before starting anything if it cannot.

    With ``demo``, the demo shop's records are put at pt-1 once the contracts are applied.
    """
    floor = Floor(settings, node_agents=True)
    floor.preflight(extra_ports={settings.web_port: "hub web app"})
    services = HubRoles(settings)  # the three hub roles, each as `smart hub run --role` builds it
    services.vault.contract_approver = functools.partial(approve_contract, settings=settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await floor.start()
        await services.start()
        loaded = await seed_contracts(settings)
        urls = floor_urls(settings, floor)
        urls.update({f"contract {a.name}": a.outcome for a in loaded if a.kind == "SmartContract"})
        if demo and demo_shop.STATION in floor.leaves:
            urls.update(await seed_demo_shop(floor, services))
        app = create_app(
            floor.status,
            routers=services.routers(),
            logins=services.logins,
            service_metrics=services.metrics_text,
        )
        server, web = await serve_web(app, settings.host, settings.web_port)
        on_ready(urls)
        await stop.wait()
        server.should_exit = True
        await web
    finally:
        await services.stop()
        await floor.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
