"""``smart module run MODULE --station ID``: one station module as a process of its own.

What a module's DaemonSet pod runs, and what ``smart node run --modules
none`` leaves to such processes. The module is the same class the station
runs in-process; here its ports are :class:`~smart.node.ports.BusPorts`
(every read and every ledger append a request to the station's agent on the
leaf, the agent staying the node log's one writer) and it answers
``station.<id>.<module>.<verb>`` exactly as in-process: a request that
cannot be read gets ``{"error": ...}``, the decision is replied only once its
``module.decision`` entry is durable on the node ledger, a module that raises
is a recorded deny, and an agent that cannot record is an error reply (the
job machine then refuses: fail closed).

Module subscriptions join the queue group ``station.<id>.<module>``, in the
station's process too, so a module hosted twice (a systemd station whose
pods came back) decides each request once.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import nats
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from smart.bus import messages, subjects
from smart.modules import framework, rulebound
from smart.node import deciding, ports

log = structlog.get_logger("smart.node.module_run")


class ModuleNotRunnable(ValueError):
    """A module name that has no manifest, or no code and no rules to run."""


def queue(station_id: str, module: str) -> str:
    """The queue group a module's subscription joins: one decision per request however often hosted."""
    return f"station.{station_id}.{module}"


def runnable(
    name: str, manifests: Mapping[str, framework.ModuleManifest]
) -> tuple[type[framework.StationModule], framework.ModuleManifest]:
    """The class that runs module ``name`` and its manifest; :class:`ModuleNotRunnable` says why not."""
    manifest = manifests.get(name)
    if manifest is None:
        raise ModuleNotRunnable(f"no module {name!r}; the modules are {', '.join(sorted(manifests))}")
    cls = deciding.module_class(name)
    if cls is None:
        if not manifest.rule_kinds:
            raise ModuleNotRunnable(f"module {name} has no code to run and enforces no rule kind")
        cls = rulebound.RuleBoundModule
    return cls, manifest


class ModuleProcess:
    """One module at one station, over the station's leaf: ``await start()``, ``await stop()``."""

    def __init__(
        self,
        name: str,
        *,
        station_id: str,
        leaf_url: str,
        data_dir: Path,
        manifests: Mapping[str, framework.ModuleManifest] | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        self.name = name
        self.station = station_id
        self.leaf_url = leaf_url
        self.data_dir = data_dir
        self.manifests = manifests if manifests is not None else framework.load_manifests()
        self.timeout_s = timeout_s
        self.connection: NatsClient | None = None
        self.module: framework.StationModule | None = None
        self.ready = asyncio.Event()

    async def start(self) -> None:
        cls, manifest = runnable(self.name, self.manifests)  # said before any connection is tried
        self.connection = await nats.connect(
            self.leaf_url,
            name=f"smart-module-{self.station}-{self.name}",
            inbox_prefix=subjects.inbox_prefix(self.station),
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=2,
        )
        bus = ports.BusPorts(
            self.connection, station=self.station, data_dir=self.data_dir, timeout_s=self.timeout_s
        )
        await self._agent_answers(bus)
        self.module = cls(bus, manifest)
        await self.module.start()
        await self.connection.subscribe(
            framework.subject(self.station, self.name, "*"),
            queue=queue(self.station, self.name),
            cb=self._on_request,
        )
        await self.connection.flush()
        self.ready.set()
        log.info("module.started", station=self.station, module=self.name, leaf=self.leaf_url)

    async def _agent_answers(self, bus: ports.BusPorts) -> None:
        """Wait for the station's agent to answer its ports: a module never decides without them."""
        delay = 0.1
        while True:
            try:
                await bus.ledger_size()
                return
            except ports.PortError as err:
                log.info("module.waiting_for_agent", station=self.station, module=self.name, why=str(err))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _on_request(self, message: Msg) -> None:
        verb = message.subject.rsplit(".", 1)[-1]
        try:
            event, body = deciding.parse_request(self.station, message.data)
        except deciding.RequestError as err:
            await message.respond(messages.module_error(f"{self.name}.{verb}: {err}"))
            return
        assert self.module is not None
        try:
            decision, entry = await deciding.decide(
                self.module.station,
                self.name,
                self.module,
                framework.ModuleEvent(verb, event, MappingProxyType(body)),
            )
        except ports.PortError as err:  # not on the ledger, so not decided: the asker refuses
            log.error(
                "module.not_recorded", station=self.station, module=self.name, verb=verb, error=str(err)
            )
            await message.respond(messages.module_error(f"{self.name}.{verb}: {err}"))
            return
        await message.respond(messages.module_reply(decision.to_json(), entry=entry.node_seq))

    async def stop(self) -> None:
        if self.module is not None:
            with contextlib.suppress(Exception):
                await self.module.stop()
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.connection.close(), timeout=5)
            self.connection = None


async def run_module(name: str, *, station_id: str, leaf_url: str, data_dir: Path) -> None:
    """Run until SIGTERM or Ctrl-C (what a module pod and ``smart module run`` do)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    process = ModuleProcess(name, station_id=station_id, leaf_url=leaf_url, data_dir=data_dir)
    try:
        await process.start()
        await stop.wait()
    finally:
        await process.stop()


def main(argv: list[str] | None = None) -> int:
    """``smart module run MODULE --station ID [--leaf-url URL]``, read without the whole command."""
    import argparse
    import os
    import sys

    from smart import logs
    from smart import settings as smart_settings

    parser = argparse.ArgumentParser(prog="smart module run", description=__doc__.split("\n", 1)[0])
    parser.add_argument("module", help="the module, e.g. gatekeeper")
    parser.add_argument(
        "--station", required=True, help="station id, e.g. pt-1 (on Kubernetes: the node's name)"
    )
    parser.add_argument(
        "--leaf-url",
        default=os.environ.get("SMART_LEAF_URL"),
        help="the station's leaf NATS server (default: SMART_LEAF_URL, else the one the settings give it)",
    )
    args = parser.parse_args(argv)
    settings = smart_settings.load()
    logs.configure(settings.log_level)
    try:
        runnable(args.module, framework.load_manifests())
    except ModuleNotRunnable as err:
        print(f"smart module: {err}", file=sys.stderr)
        return 2
    leaf_url = args.leaf_url
    if leaf_url is None:
        if not settings.knows(args.station):
            print(
                f"smart module: unknown station {args.station!r}: this node is"
                f" {settings.node_station or 'no station'} (SMART_NODE_STATION) and the floor has"
                f" {', '.join(settings.station_ids)} (or give --leaf-url)",
                file=sys.stderr,
            )
            return 2
        leaf_url = f"nats://{settings.host}:{settings.station_nats_port(args.station)}"
    asyncio.run(
        run_module(
            args.module,
            station_id=args.station,
            leaf_url=leaf_url,
            data_dir=settings.station_data_dir(args.station),
        )
    )
    return 0
