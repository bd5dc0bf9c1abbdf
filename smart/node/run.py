"""``smart node run``: one station's agent and web app in the foreground until SIGTERM or Ctrl-C.

Under ``smart up`` the floor's supervisor runs one of these per simulated
station; on a Pi the same command runs as a pod or as a systemd unit.
"""

from __future__ import annotations

import asyncio
import signal

from smart.keys import KeyStore
from smart.node.agent import AgentConfig, NodeAgent
from smart.node.web import create_station_app
from smart.runtime.up import serve_web
from smart.settings import Settings


def agent_config(settings: Settings, station: str) -> AgentConfig:
    return AgentConfig(
        station=station,
        leaf_url=f"nats://{settings.host}:{settings.station_nats_port(station)}",
        data_dir=settings.station_data_dir(station),
        keys=KeyStore(settings.key_directory),
        heartbeat_s=settings.heartbeat_s,
    )


async def run_station(settings: Settings, station: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    agent = NodeAgent(agent_config(settings, station))
    await agent.start()
    try:
        server, web = await serve_web(
            create_station_app(agent), settings.host, settings.station_web_port(station)
        )
        await stop.wait()
        server.should_exit = True
        await web
    finally:
        await agent.stop()
