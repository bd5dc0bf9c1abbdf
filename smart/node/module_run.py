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

With ``--metrics-port`` (``SMART_MODULE_METRICS_PORT``; the module DaemonSets
set it) the process serves its own ``/metrics`` (:class:`~smart.node.metrics.ModuleMetrics`:
its decisions, their latency from the request to the agent's word that the
decision is durable, its errors and its connection to the leaf), from before
it connects, so a module stuck waiting for its agent is seen as such.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import nats
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from smart.bus import messages, subjects
from smart.modules import framework, rulebound
from smart.node import deciding, metrics_endpoint, ports
from smart.node.metrics import ModuleMetrics

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
        metrics_host: str = "127.0.0.1",
        metrics_port: int | None = None,
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
        self.metrics = ModuleMetrics(station_id, name)
        self.metrics.connected = lambda: self.connection is not None and self.connection.is_connected
        self.metrics.serving = self.ready.is_set
        self.metrics_host = metrics_host
        self.metrics_port = metrics_port
        #: The ``/metrics`` server while it runs (None without a metrics port).
        self.metrics_server: asyncio.Server | None = None

    async def start(self) -> None:
        cls, manifest = runnable(self.name, self.manifests)  # said before any connection is tried
        if self.metrics_port is not None:  # first: a module waiting for its leaf or agent is seen waiting
            self.metrics_server = await metrics_endpoint.serve_metrics(
                self.metrics.text, self.metrics_host, self.metrics_port
            )
            log.info(
                "module.metrics",
                station=self.station,
                module=self.name,
                metrics=f"http://{self.metrics_host}:{metrics_endpoint.bound_port(self.metrics_server)}/metrics",
            )
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
        started = time.perf_counter()
        verb = message.subject.rsplit(".", 1)[-1]
        try:
            event, body = deciding.parse_request(self.station, message.data)
        except deciding.RequestError as err:
            self.metrics.refused("unreadable")
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
            self.metrics.refused("not_recorded")
            await message.respond(messages.module_error(f"{self.name}.{verb}: {err}"))
            return
        answer = decision.to_json()
        self.metrics.decided(answer, time.perf_counter() - started)  # durable: the agent has said so
        await message.respond(messages.module_reply(answer, entry=entry.node_seq))

    async def stop(self) -> None:
        if self.module is not None:
            with contextlib.suppress(Exception):
                await self.module.stop()
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.connection.close(), timeout=5)
            self.connection = None
        if self.metrics_server is not None:
            self.metrics_server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.metrics_server.wait_closed(), timeout=5)
            self.metrics_server = None


async def run_module(
    name: str,
    *,
    station_id: str,
    leaf_url: str,
    data_dir: Path,
    metrics_host: str = "127.0.0.1",
    metrics_port: int | None = None,
) -> None:
    """Run until SIGTERM or Ctrl-C (what a module pod and ``smart module run`` do)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    process = ModuleProcess(
        name,
        station_id=station_id,
        leaf_url=leaf_url,
        data_dir=data_dir,
        metrics_host=metrics_host,
        metrics_port=metrics_port,
    )
    try:
        await process.start()
        await stop.wait()
    finally:
        await process.stop()


def main(argv: list[str] | None = None) -> int:
    """``smart module run MODULE --station ID [--leaf-url URL]``, read without the whole command."""
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
    parser.add_argument(
        "--metrics-port",
        type=_port,
        default=os.environ.get("SMART_MODULE_METRICS_PORT") or None,
        help="serve this process's /metrics on this port (default: SMART_MODULE_METRICS_PORT, else none)",
    )
    parser.add_argument(
        "--metrics-host",
        default=os.environ.get("SMART_MODULE_METRICS_HOST", "127.0.0.1"),
        help="the address /metrics listens on (default: SMART_MODULE_METRICS_HOST, else 127.0.0.1)",
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
            metrics_host=args.metrics_host,
            metrics_port=args.metrics_port,
        )
    )
    return 0


def _port(text: str) -> int:
    """A TCP port for ``--metrics-port`` (argparse's error names the option and the value)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a port number: {text!r} (--metrics-port or SMART_MODULE_METRICS_PORT)"
        ) from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(
            f"not a port number (1-65535): {port} (--metrics-port or SMART_MODULE_METRICS_PORT)"
        )
    return port
