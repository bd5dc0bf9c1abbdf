"""``smart node run``: one station's agent, modules and web app in the foreground until SIGTERM or Ctrl-C.

Under ``smart up`` the floor's supervisor runs one of these per simulated
station; on a Pi the same command runs as a pod or as a systemd unit. The
station's modules run in-process (:class:`StationRuntime`) with its GPIO:
real pins on a Pi, gpiozero's simulated pins elsewhere; with ``--modules
none`` (the agent's pod on Kubernetes) or a list, only those, and the rest
run as processes of their own (``smart module run``). The interlock relay
is closed by the gate only, and opened when this process stops.

One agent enforces at a station at a time: the node log's writer lock
(:class:`~smart.ledger.NodeLogBusy`) decides. When the systemd fallback and
the station's pods both exist on one node (a station rebooted while the hub
was away, then the hub came back), the second to start waits in standby,
holding no pins, no connection and no subscription, and takes over the
moment the first lets the lock go (stopped or crashed): :func:`take_lock`.

The stack light follows the alert board wherever AlertBroadcast runs: this
process listens on the station's alert subject and shows each notice's
colour and buzzer on the tower (:func:`follow_alerts`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from smart.bus import messages, subjects
from smart.contracts import facts as f
from smart.keys import KeyStore
from smart.ledger import NodeLogBusy
from smart.modules import framework
from smart.modules.safety import gpio, pins
from smart.node.agent import AgentConfig, NodeAgent
from smart.node.kiosk.app import SCREEN_TOKEN_FILE, Kiosk, screen_token
from smart.node.station import StationRuntime
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


log = structlog.get_logger("smart.node.run")


def station_gpio(settings: Settings, station: str, on_estop: Any) -> gpio.StationGpio:
    """The station's stack light, interlock and e-stop on real pins, or simulated ones as settings say."""
    if settings.station_gpio != "simulated":
        try:
            return gpio.StationGpio.from_settings(settings, factory=gpio.pi_factory(), on_estop=on_estop)
        except gpio.NoGpio as err:
            if settings.station_gpio == "pi":
                raise
            log.info("station.gpio_simulated", station=station, why=str(err))
    pin_map = pins.PinMap.from_settings(settings)
    return gpio.simulated(pin_map, lease_s=settings.gpio_interlock_lease_ms / 1000, on_estop=on_estop)


async def follow_alerts(connection: NatsClient, station: str, hardware: gpio.StationGpio) -> Subscription:
    """Show every alert notice of ``station`` on its tower; a notice that cannot be read changes nothing."""

    async def on_notice(message: Msg) -> None:
        try:
            notice = messages.read_alert_notice(message.data)
        except messages.MessageError as err:
            log.debug("station.alert_notice_unread", station=station, error=str(err))  # e.g. the agent's own
            return
        lit = hardware.show(notice.light, buzzer=notice.buzzer)
        log.info(
            "station.stack_light", station=station, light=lit, buzzer=notice.buzzer, change=notice.change
        )

    return await connection.subscribe(subjects.alert(station), cb=on_notice)


async def _follow_alerts_when_connected(agent: NodeAgent, hardware: gpio.StationGpio) -> None:
    await agent.connected.wait()
    assert agent.connection is not None
    await follow_alerts(agent.connection, agent.station, hardware)


async def _kiosk_follows_alerts(agent: NodeAgent, kiosk: Kiosk) -> None:
    await agent.connected.wait()
    assert agent.connection is not None
    await kiosk.follow_alerts(agent.connection)


async def take_lock(agent: NodeAgent, stop: asyncio.Event, *, every_s: float = 0.5) -> bool:
    """Start ``agent`` once no other agent of its station holds the node log; False if stopped first."""
    waiting = False
    while not stop.is_set():
        try:
            await agent.start()
            if waiting:
                log.warning("station.took_over", station=agent.station)
            return True
        except NodeLogBusy as err:
            if not waiting:
                log.warning("station.standby", station=agent.station, why=str(err))
                waiting = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_s)
    return False


async def run_station(settings: Settings, station: str, *, hosted: Collection[str] | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    agent = NodeAgent(agent_config(settings, station))
    if not await take_lock(agent, stop):  # stopped while in standby: nothing was opened
        return
    pending: set[asyncio.Task[Any]] = set()
    runtime: StationRuntime | None = None

    def on_estop(pressed: bool) -> None:  # from gpiozero's thread: the Safety module records it
        def record() -> None:
            if runtime is None:
                return
            event = f.Event(action="operate", at=datetime.now(UTC), station=station)
            task: asyncio.Task[Any]
            if "safety" in runtime.modules:
                task = loop.create_task(
                    runtime.handle("safety", framework.ModuleEvent("estop", event, {"pressed": pressed}))
                )
            else:  # Safety in a process of its own: told over the station's bus
                task = loop.create_task(runtime.ask("safety", "estop", event, {"pressed": pressed}))
            pending.add(task)
            task.add_done_callback(pending.discard)

        loop.call_soon_threadsafe(record)

    try:  # the pins are opened only by the agent holding the lock
        hardware = station_gpio(settings, station, on_estop)
    except BaseException:
        await agent.stop()
        raise
    runtime = StationRuntime(agent, interlock=hardware.interlock, hosted=hosted)
    kiosk = Kiosk(runtime, screen_token=screen_token(settings.station_data_dir(station)))
    log.info(
        "kiosk.screen",
        station=station,
        open="/kiosk/screen?token=<the token file>",
        token_file=str(settings.station_data_dir(station) / SCREEN_TOKEN_FILE),
    )
    # before the modules start, so the board AlertBroadcast tells as it starts is heard
    pending.add(loop.create_task(_kiosk_follows_alerts(agent, kiosk)))
    try:
        await runtime.start()
        pending.add(loop.create_task(_follow_alerts_when_connected(agent, hardware)))
        kiosk.probe.start()
        server, web = await serve_web(
            create_station_app(agent, kiosk), settings.kiosk_bind, settings.station_web_port(station)
        )
        await stop.wait()
        server.should_exit = True
        await web
    finally:
        for task in list(pending):
            task.cancel()
        await kiosk.probe.stop()
        await runtime.stop()
        hardware.close()
