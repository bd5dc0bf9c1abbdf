"""``smart hub run``: the hub's services and web app from settings alone, until SIGTERM.

What the hub Deployment runs on Kubernetes: the database, the hub NATS (URL
and credentials), the keys and secrets directories and the stations all come
from the settings (``SMART_*`` variables or the config file); no embedded
floor, no PostgreSQL or NATS server of its own. ``smart up`` builds the same
:class:`~smart.hub.services.HubServices` beside the servers it runs.
``--role vault|floor|business`` runs only that hub's services
(:data:`smart.hub.services.ROLE_SERVICES`), as that role's NATS user and
database role; ``all`` runs every one as the single hub did.
"""

from __future__ import annotations

import asyncio
import signal

import structlog
import uvicorn

from smart.hub.compliance.approve_page import Approver
from smart.hub.services import ROLES, HubServices
from smart.hub.web.app import create_app, server_config, settle_for_serving
from smart.settings import Settings

log = structlog.get_logger("smart.hub.run")

__all__ = ["ROLES", "run_hub"]


async def run_hub(
    settings: Settings, *, role: str = "all", contract_approver: Approver | None = None
) -> None:
    if role not in ROLES:
        raise ValueError(f"hub role {role!r} is not one of {', '.join(ROLES)}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    services = HubServices(settings, role=role)
    services.contract_approver = contract_approver
    try:
        await services.start()
        app = create_app(
            services.status,
            routers=services.routers(),
            logins=services.logins,
            service_metrics=services.metrics_text,
        )
        config = server_config(
            app, host=settings.host, port=settings.web_port, forwarded_allow_ips=settings.forwarded_allow_ips
        )
        server = uvicorn.Server(config)
        settle_for_serving()
        web = asyncio.create_task(server.serve(), name="hub-web")
        while not server.started and not web.done():  # noqa: ASYNC110 - uvicorn offers no event
            await asyncio.sleep(0.02)
        if web.done():
            await web
            raise RuntimeError(f"the hub web app on {settings.host}:{settings.web_port} did not start")
        log.info(
            "hub.serving",
            role=role,
            url=f"http://{settings.host}:{settings.web_port}/",
            stations=services.stations,
        )
        await stop.wait()
        server.should_exit = True
        await web
    finally:
        await services.stop()
