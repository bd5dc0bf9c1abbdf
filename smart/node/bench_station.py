"""``smart bench station``: gate decisions end to end at one station, and what its modules weigh.

It runs a real floor (a hub nats-server and the leaf of pt-1, from the
wheel, on free loopback ports) and, in this process, pt-1's node agent and
:class:`~smart.node.station.StationRuntime` with the reference penetrant
contract compiled, signed and distributed by the reconcile core, the shop's
records (an inspector with a current certification and exams, the light
meter and TAM panel, penetrant lots, the PO line, the procedure) published
in the hub's ``station-records`` bucket, and the day's UV-A and TAM-panel
checks done through the Maintenance module, as the job walk-through does.

Then a client on pt-1's leaf asks the Gatekeeper ``start``
(``station.pt-1.gatekeeper.start``) again and again, one request at a time,
and times each from sending the request to reading the reply; the runtime
replies only once the decision is durable on the node ledger, so each figure
is event on NATS → decision → durable append → reply on NATS. The baselines,
in the same run and interleaved with it round by round (one gate request,
one baseline request, one commit): a bare request-reply on the same leaf to
a responder that echoes the request, and a raw single-row SQLite commit
(WAL, ``synchronous=FULL``) in the station's data directory, the disk's
share of a durable append. Decisions per second are the timed requests over
the time spent in them, one request at a time (no concurrency).

Memory: the resident set of this process (which runs the runtime and all
its modules in-process), after the timed requests, and that figure less the
resident set just before the runtime started (after the floor, the client
and the records were set up).

Then, in the same run, the same station out of process, as Kubernetes runs
it: the runtime is stopped and started again on the same data hosting no
module (``--modules none``), each module the contract needs runs as ``smart
module run <module> --station pt-1`` in a process of its own, and the same
interleaved rounds are timed. ``in_process_p99_ms`` and
``out_of_process_p99_ms`` are the two gate p99s (target: out of process <=
1.5x in process), ``out_of_process_rss_mb`` each module process's resident
set after its rounds (target: all together <= 1 GiB), and their proportional
set sizes summed (the libraries they share counted once: what they take
together).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import psutil
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from smart.contracts import distribution, manifests, reconcile
from smart.contracts import facts as f
from smart.contracts.models import SmartContract, Station
from smart.hub.streams import ensure_hub_streams
from smart.keys import KeyStore
from smart.modules import framework
from smart.node import records
from smart.node.agent import AgentConfig, NodeAgent
from smart.node.bench import percentile, scratch
from smart.node.station import StationRuntime
from smart.runtime import demo_shop
from smart.runtime.background import BackgroundFloor
from smart.testing.plugin import make_settings

REPO_CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
STATION = "pt-1"
CONTRACT = "penetrant"
MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Figures:
    requests: int
    warmup: int
    seconds: float
    p50_ms: float
    p99_ms: float
    nats_p50_ms: float
    nats_p99_ms: float
    sqlite_p50_ms: float
    sqlite_p99_ms: float
    rss_before_mb: float
    rss_mb: float
    modules: tuple[str, ...]
    #: The same rounds with every module in a process of its own (None: not measured).
    out_of_process_p99_ms: float | None = None
    out_of_process_p50_ms: float | None = None
    out_of_process_nats_p99_ms: float | None = None
    out_of_process_rss_mb: tuple[tuple[str, float], ...] = ()
    #: Their proportional set sizes summed: each shared library page counted once over all of them.
    out_of_process_pss_total_mb: float | None = None

    @property
    def decisions_per_s(self) -> float:
        """Sequential: each request sent once the previous reply arrived; ``seconds`` is their sum."""
        return self.requests / self.seconds

    @property
    def rss_delta_mb(self) -> float:
        return self.rss_mb - self.rss_before_mb

    @property
    def p99_ratio(self) -> float:
        """Gate decision p99 / bare NATS request-reply p99."""
        return self.p99_ms / self.nats_p99_ms

    def as_json(self) -> dict[str, Any]:
        return {
            "decisions_per_s": round(self.decisions_per_s, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "nats_roundtrip_p50_ms": round(self.nats_p50_ms, 3),
            "nats_roundtrip_p99_ms": round(self.nats_p99_ms, 3),
            "p99_ratio": round(self.p99_ratio, 2),
            "sqlite_commit_p50_ms": round(self.sqlite_p50_ms, 3),
            "sqlite_commit_p99_ms": round(self.sqlite_p99_ms, 3),
            "station_rss_mb": round(self.rss_mb, 1),
            "rss_before_mb": round(self.rss_before_mb, 1),
            "rss_delta_mb": round(self.rss_delta_mb, 1),
            "requests": self.requests,
            "warmup": self.warmup,
            "sequential": True,
            "modules": list(self.modules),
            "in_process_p99_ms": round(self.p99_ms, 3),
            "out_of_process_p99_ms": None
            if self.out_of_process_p99_ms is None
            else round(self.out_of_process_p99_ms, 3),
            "out_of_process_p50_ms": None
            if self.out_of_process_p50_ms is None
            else round(self.out_of_process_p50_ms, 3),
            "out_of_process_nats_roundtrip_p99_ms": None
            if self.out_of_process_nats_p99_ms is None
            else round(self.out_of_process_nats_p99_ms, 3),
            "out_of_process_rss_mb": {name: round(mb, 1) for name, mb in self.out_of_process_rss_mb},
            "out_of_process_rss_total_mb": round(sum(mb for _, mb in self.out_of_process_rss_mb), 1),
            "out_of_process_pss_total_mb": None
            if self.out_of_process_pss_total_mb is None
            else round(self.out_of_process_pss_total_mb, 1),
        }


def _rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / MB


@contextmanager
def _sqlite_probe(directory: Path) -> Iterator[sqlite3.Connection]:
    """A bare SQLite database beside the node ledger (WAL, synchronous=FULL): a durable append's disk."""
    connection = sqlite3.connect(directory / "bench-baseline.sqlite3", isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("CREATE TABLE probe (data BLOB)")
        yield connection
    finally:
        connection.close()


def _commit(connection: sqlite3.Connection) -> float:
    """Seconds for one raw single-row commit of about a decision entry's size."""
    started = time.perf_counter()
    connection.execute("BEGIN")
    connection.execute("INSERT INTO probe VALUES (?)", (b"x" * 600,))
    connection.execute("COMMIT")
    return time.perf_counter() - started


@dataclass
class _Rounds:
    gate: list[float]
    echo: list[float]
    sqlite: list[float]
    replies: list[bytes]


async def _rounds(client: NatsClient, payload: bytes, probe: sqlite3.Connection, count: int) -> _Rounds:
    """``count`` rounds of one gate request, one bare request-reply and one raw commit, each timed.

    Interleaved so that the figures and their baselines see the same machine: on a shared box
    the load of a moment moves all three together.
    """
    gate_subject = framework.subject(STATION, "gatekeeper", "start")
    found = _Rounds([], [], [], [])
    for _ in range(count):
        started = time.perf_counter()
        reply = await client.request(gate_subject, payload, timeout=15)
        found.gate.append(time.perf_counter() - started)
        found.replies.append(reply.data)
        started = time.perf_counter()
        await client.request("bench.echo", payload, timeout=15)
        found.echo.append(time.perf_counter() - started)
        found.sqlite.append(_commit(probe))
    return found


# -- the shop at pt-1 ----------------------------------------------------------------------------


def gate_event(at: datetime) -> f.Event:
    """op-7 starting job J-1 (PO-4411 line 1, BRK-220 SN-002) with the meter and panel, as the job asks."""
    return f.Event(
        action="operate",
        at=at,
        station=STATION,
        person="op-7",
        equipment=("UV-METER-1", "TAM-146040"),
        attributes={"part-finish": "grit-blasted"},
        job="J-1",
        lots=("PEN-2291",),
        ppe=frozenset({"nitrile-gloves"}),
        scan=f.Scan("PO-4411", "1", "BRK-220", "SN-002"),
        procedure="PT-PROC-12",
        procedure_revision="D",
    )


async def _deploy(hub: NatsClient, keys: KeyStore) -> None:
    loaded = [item.manifest for item in manifests.load([REPO_CONTRACTS])]
    contract = next(m for m in loaded if isinstance(m, SmartContract) and m.metadata.name == CONTRACT)
    stations = [m for m in loaded if isinstance(m, Station)]
    store = distribution.KvBundleStore(await distribution.bucket(hub.jetstream()))
    await reconcile.deploy(contract, stations, key=keys.signing_key("hub"), store=store, log_=None)


async def _publish(hub: NatsClient, at: datetime) -> int:
    """The records the gate reads: the demo shop at pt-1 (``smart up --demo-shop``), current at ``at``."""
    js = hub.jetstream()
    await records.ensure_records_bucket(js)
    return await demo_shop.seed(js, at, stations={demo_shop.STATION})


async def _until(predicate: Any, what: str, deadline_s: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    while not predicate():
        if loop.time() > deadline:
            raise RuntimeError(f"bench station: {what} not reached within {deadline_s} s")
        await asyncio.sleep(0.02)


async def _ask(
    client: NatsClient, module: str, verb: str, event: f.Event, body: dict[str, Any]
) -> dict[str, Any]:
    request = json.dumps({"event": records.plain(event), "body": body}).encode()
    reply = await client.request(framework.subject(STATION, module, verb), request, timeout=15)
    answer: dict[str, Any] = json.loads(reply.data)
    return answer


async def _checks(client: NatsClient, at: datetime) -> None:
    """The day's UV-A and TAM-panel checks, done at the station with its meter (Maintenance module)."""
    morning = at - timedelta(hours=3)
    event = f.Event(action="measure", at=morning, station=STATION, person="op-7", equipment=("UV-METER-1",))
    uva = {
        "uv-a-intensity": {"value": 1180, "unit": "µW/cm²"},
        "ambient-white-light": {"value": 1.5, "unit": "fc"},
    }
    for check, readings in (("uv-a-intensity", uva), ("tam-panel", {})):
        done = await _ask(
            client, "maintenance", "check", event, {"check": check, "passed": True, "readings": readings}
        )
        if done.get("outcome") != "allow":
            raise RuntimeError(f"bench station: the {check} check was refused: {done}")


async def _station(floor: BackgroundFloor, root: Path, requests: int, warmup: int) -> Figures:
    assert floor.floor.hub is not None
    keys = KeyStore(root / "keys")
    at = datetime.now(UTC)
    hub = await nats.connect(floor.floor.hub.url, **floor.settings.hub_nats_signin())
    client = await nats.connect(floor.floor.leaves[STATION].url)
    echo = await nats.connect(floor.floor.leaves[STATION].url)
    runtime: StationRuntime | None = None
    try:
        await ensure_hub_streams(hub.jetstream())
        await _deploy(hub, keys)
        published = await _publish(hub, at)

        # Baseline: a bare request-reply on the same leaf, to a responder on its own connection.
        async def respond(message: Msg) -> None:
            await message.respond(message.data)

        await echo.subscribe("bench.echo", cb=respond)
        await echo.flush()
        event = gate_event(at)
        payload = json.dumps({"event": records.plain(event), "body": {}}).encode()

        rss_before = _rss_mb()
        agent = NodeAgent(
            AgentConfig(
                station=STATION, leaf_url=floor.floor.leaves[STATION].url, data_dir=root / STATION, keys=keys
            )
        )
        runtime = StationRuntime(agent)
        await runtime.start()
        station = runtime
        await _until(lambda: CONTRACT in station.agent.enforcer.revisions, f"{CONTRACT} active")
        await _until(lambda: "gatekeeper" in station.modules and station.serving(), "modules answering")
        assert station.agent.ledger is not None
        ledger_ = station.agent.ledger
        await _until(
            lambda: sum(1 for e in ledger_.entries(0) if e.kind == "record.received") >= published,
            "hub records mirrored",
        )
        await _checks(client, at)

        with _sqlite_probe(root / STATION) as probe:
            warm = await _rounds(client, payload, probe, warmup)
            before = ledger_.size()
            timed = await _rounds(client, payload, probe, requests)
        refused = [
            json.loads(r) for r in (*warm.replies, *timed.replies) if json.loads(r).get("outcome") != "allow"
        ]
        if refused:
            raise RuntimeError(f"bench station: {len(refused)} gate decisions were not allow: {refused[0]}")
        if ledger_.size() - before < requests:
            raise RuntimeError("bench station: fewer decisions on the ledger than replies")
        in_process = Figures(
            requests=requests,
            warmup=warmup,
            seconds=sum(timed.gate),
            p50_ms=statistics.median(timed.gate) * 1000,
            p99_ms=percentile(timed.gate, 0.99) * 1000,
            nats_p50_ms=statistics.median(timed.echo) * 1000,
            nats_p99_ms=percentile(timed.echo, 0.99) * 1000,
            sqlite_p50_ms=statistics.median(timed.sqlite) * 1000,
            sqlite_p99_ms=percentile(timed.sqlite, 0.99) * 1000,
            rss_before_mb=rss_before,
            rss_mb=_rss_mb(),
            modules=tuple(sorted(station.modules)),
        )
        await runtime.stop()
        runtime = None
        return await _out_of_process(floor, root, keys, client, payload, requests, warmup, in_process)
    finally:
        if runtime is not None:
            await runtime.stop()
        await echo.close()
        await client.close()
        await hub.close()


def _module_process(module: str, leaf_url: str, root: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SMART_STATE_DIR": str(root / "module-state"), "SMART_LOG_LEVEL": "WARNING"}
    with (root / f"module-{module}.log").open("wb") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "smart",
                "module",
                "run",
                module,
                "--station",
                STATION,
                "--leaf-url",
                leaf_url,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def _answers(client: NatsClient, module: str) -> bool:
    """The module's process is subscribed: a request it cannot read gets its error (nothing recorded)."""
    try:
        reply = await client.request(framework.subject(STATION, module, "probe"), b"{}", timeout=1)
    except Exception:
        return False
    return "error" in json.loads(reply.data)


async def _out_of_process(
    floor: BackgroundFloor,
    root: Path,
    keys: KeyStore,
    client: NatsClient,
    payload: bytes,
    requests: int,
    warmup: int,
    in_process: Figures,
) -> Figures:
    """The same station and rounds with the agent hosting no module and each module its own process."""
    leaf_url = floor.floor.leaves[STATION].url
    agent = NodeAgent(AgentConfig(station=STATION, leaf_url=leaf_url, data_dir=root / STATION, keys=keys))
    runtime = StationRuntime(agent, hosted=frozenset())
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        await runtime.start()
        await _until(lambda: CONTRACT in runtime.agent.enforcer.revisions, f"{CONTRACT} active")
        await _until(runtime.serving, "the agent serving its ports")
        wanted = sorted(runtime.wanted_modules())
        processes = {module: _module_process(module, leaf_url, root) for module in wanted}
        waiting = set(wanted)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 300
        while waiting:
            for module in sorted(waiting):
                if processes[module].poll() is not None:
                    log = (root / f"module-{module}.log").read_text(errors="replace")
                    raise RuntimeError(f"bench station: module {module} exited: {log[-2000:]}")
                if await _answers(client, module):
                    waiting.discard(module)
            if loop.time() > deadline:
                raise RuntimeError(f"bench station: module processes not answering: {sorted(waiting)}")
            await asyncio.sleep(0.2)
        (root / "out-of-process").mkdir(exist_ok=True)
        with _sqlite_probe(root / "out-of-process") as probe:
            await _rounds(client, payload, probe, warmup)
            timed = await _rounds(client, payload, probe, requests)
        refused = [json.loads(r) for r in timed.replies if json.loads(r).get("outcome") != "allow"]
        if refused:
            raise RuntimeError(
                f"bench station: {len(refused)} out-of-process decisions were not allow: {refused[0]}"
            )
        rss = tuple(
            (module, float(psutil.Process(process.pid).memory_info().rss) / MB)
            for module, process in sorted(processes.items())
        )
        pss = sum(float(psutil.Process(p.pid).memory_full_info().pss) for p in processes.values()) / MB
        return dataclasses.replace(
            in_process,
            out_of_process_pss_total_mb=pss,
            out_of_process_p99_ms=percentile(timed.gate, 0.99) * 1000,
            out_of_process_p50_ms=statistics.median(timed.gate) * 1000,
            out_of_process_nats_p99_ms=percentile(timed.echo, 0.99) * 1000,
            out_of_process_rss_mb=rss,
        )
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()
        await runtime.stop()


def run(requests: int = 2000, *, warmup: int | None = None) -> Figures:
    """Start a one-station floor, measure, stop it; ``warmup`` requests of each kind are not counted."""
    untimed = warmup if warmup is not None else min(200, max(10, requests // 10))
    with scratch("smart-bench-station-") as root:
        settings = make_settings(root / "state", stations=1)
        with BackgroundFloor(settings, postgres=False) as floor:
            return asyncio.run(_station(floor, root, requests, untimed))
