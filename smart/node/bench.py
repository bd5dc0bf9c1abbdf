"""``smart bench propagation`` and ``smart bench resync``: the release path, measured on this machine.

Both run the real floor (nats-servers from the wheel, PostgreSQL for
resync) and real node agents in this process, on free loopback ports, and
print a baseline measured in the same run beside each figure:

- propagation: from the reconcile core's ``deploy`` to the new revision
  active on every station, beside a bare hub KV put seen on every station's
  mirror;
- resync: after a hub outage, from the moment the hub's nats-server answers
  again, how fast each station's backlog reaches the hub log (ingested,
  Merkle-integrated, checkpointed), and apart from it how long the first
  entry took (the leaves' redial) and the hub's own restart (not counted).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import nats
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from smart import ledger
from smart.bus import mirror, subjects
from smart.bus.shipping import MAX_BATCH_BYTES
from smart.contracts import distribution, manifests, reconcile
from smart.contracts import facts as f
from smart.contracts.models import LabelSelector, SmartContract, Station
from smart.hub.intake import LedgerIntake, register_stations
from smart.keys import KeyStore
from smart.ledger import Batch, hub_store
from smart.ledger.hub_store import HubLog
from smart.ledger.trust import ADMIN_KEY
from smart.node.agent import AgentConfig, NodeAgent
from smart.runtime.background import BackgroundFloor
from smart.runtime.secrets import secret
from smart.testing.plugin import make_settings

REPO_CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
#: The intake's fetch in the resync (batches per transaction at most), and the agents' batch size.
INTAKE_FETCH = 64
SHIP_BATCH = 1000  # AgentConfig.ship_batch
#: Longest a resync may take before the benchmark gives up and says how far it got.
RESYNC_PATIENCE_S = 300.0


@dataclass(frozen=True, slots=True)
class Propagation:
    stations: int
    rounds: int
    p50_s: float
    p99_s: float
    kv_p50_s: float
    kv_p99_s: float
    deploy_p50_s: float
    #: The first revision after the agents started (a warm-up, not in the percentiles).
    first_s: float


@dataclass(frozen=True, slots=True)
class Resync:
    """From the hub's restart to the last backlog entry in the hub log, and when the first one got there."""

    stations: int
    entries_per_station: int
    seconds: float
    first_entry_s: float = 0.0  # the leaves' redial and the intake's reconnection, mostly
    hub_start_s: float = 0.0  # the hub's nats-server restart until healthy: before the clock starts
    #: Where the agents ran while they shipped: "process" (one each, as on a floor) or "in-process".
    agents: str = "in-process"
    #: The baseline, same run: the hub alone reading (canonical check included) and ingesting the
    #: same backlogs as the same batches, straight from the stations' files (no NATS, no agents).
    hub_alone_seconds: float = 0.0

    @property
    def entries_per_s_per_station(self) -> float:
        return self.entries_per_station / self.seconds

    @property
    def hub_alone_entries_per_s_per_station(self) -> float:
        return self.entries_per_station / max(self.hub_alone_seconds, 1e-9)

    @property
    def draining_entries_per_s_per_station(self) -> float:
        """The rate once entries flow: from the first entry in the hub log to the last."""
        return self.entries_per_station / max(self.seconds - self.first_entry_s, 1e-9)


@contextmanager
def scratch(prefix: str = "smart-bench-") -> Iterator[Path]:
    """A temporary directory for one bench run's floor and stations, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _everywhere(contracts_dir: Path, station_ids: list[str]) -> tuple[SmartContract, list[Station]]:
    """The penetrant contract selecting every station of the floor, and those stations."""
    loaded = [item.manifest for item in manifests.load([contracts_dir])]
    contract = next(m for m in loaded if isinstance(m, SmartContract) and m.metadata.name == "penetrant")
    stations = [m for m in loaded if isinstance(m, Station) and m.spec.station_id in station_ids]
    selector = LabelSelector.model_validate(
        {"matchExpressions": [{"key": "smart.aero/station", "operator": "In", "values": station_ids}]}
    )
    contract = contract.model_copy(
        update={"spec": contract.spec.model_copy(update={"station_selector": selector})}
    )
    return contract, stations


def _with_limit(contract: SmartContract, value: float) -> SmartContract:
    """A new revision: the first rule with a lower limit gets ``value``."""
    rules = list(contract.spec.rules)
    for index, rule in enumerate(rules):
        limits = getattr(rule, "limits", None)
        if limits is not None and getattr(limits, "min", None) is not None:
            rules[index] = rule.model_copy(update={"limits": limits.model_copy(update={"min": value})})
            break
    return contract.model_copy(update={"spec": contract.spec.model_copy(update={"rules": rules})})


#: Contract revisions deployed before the timed ones of ``smart bench propagation``.
WARMUP_REVISIONS = 3


async def _propagation(floor: BackgroundFloor, keys: KeyStore, data: Path, rounds: int) -> Propagation:
    station_ids = list(floor.floor.leaves)
    contract, stations = _everywhere(REPO_CONTRACTS, station_ids)
    assert floor.floor.hub is not None
    hub = await nats.connect(floor.floor.hub.url, **floor.settings.hub_nats_signin())
    agents = [
        NodeAgent(AgentConfig(station=s, leaf_url=floor.floor.leaves[s].url, data_dir=data / s, keys=keys))
        for s in station_ids
    ]
    leaves = [await nats.connect(floor.floor.leaves[s].url) for s in station_ids]
    try:
        for agent in agents:
            await agent.start()
        store = distribution.KvBundleStore(await distribution.bucket(hub.jetstream()))
        key = keys.signing_key("hub")
        # Baseline: bare puts into a hub bucket, one key per station (as a deploy puts one bundle per
        # station), each seen on that station's mirror. A station may read only its own keys of a
        # bucket the stations share, so the bucket is one they key by station and agents leave alone.
        kv = await hub.jetstream().key_value(subjects.STATION_KEYED_BUCKETS[1])
        mirrors = [
            await mirror.mirror_bucket(leaf.jetstream(), subjects.STATION_KEYED_BUCKETS[1]) for leaf in leaves
        ]
        baseline: list[float] = []
        for n in range(-5, rounds):  # five warm-up rounds, not counted
            value = str(n).encode()
            started = time.perf_counter()
            for station in station_ids:
                await kv.put(f"{station}.bench.probe", value)
            for station, bucket in zip(station_ids, mirrors, strict=True):
                while True:
                    try:
                        if (await bucket.get(f"{station}.bench.probe")).value == value:
                            break
                    except Exception:
                        pass
                    await asyncio.sleep(0)
            if n >= 0:
                baseline.append(time.perf_counter() - started)
        timings: list[float] = []
        deploys: list[float] = []
        first: float | None = None
        # Three warm-up revisions first, not counted, as for the baseline: the first activation at
        # each station also creates its tables, compiles the engine's first evaluator and fills caches.
        for n in range(-WARMUP_REVISIONS, rounds):
            version = _with_limit(contract, 1000.0 + n + 1 + WARMUP_REVISIONS)
            started = time.perf_counter()
            deployment = await reconcile.deploy(version, stations, key=key, store=store, log_=None)
            deployed = time.perf_counter() - started
            wanted = deployment.revisions
            # A benchmark polls what it measures (every 0.5 ms, well under the figures it prints).
            while not all(a.enforcer.revisions.get("penetrant") == wanted[a.station] for a in agents):  # noqa: ASYNC110
                await asyncio.sleep(0.0005)
            if first is None:
                first = time.perf_counter() - started
            if n >= 0:
                deploys.append(deployed)
                timings.append(time.perf_counter() - started)
        return Propagation(
            stations=len(agents),
            rounds=rounds,
            p50_s=statistics.median(timings),
            p99_s=percentile(timings, 0.99),
            kv_p50_s=statistics.median(baseline),
            kv_p99_s=percentile(baseline, 0.99),
            deploy_p50_s=statistics.median(deploys),
            first_s=first or 0.0,
        )
    finally:
        for agent in agents:
            await agent.stop()
        for leaf in leaves:
            await leaf.close()
        await hub.close()


def propagation(*, stations: int = 6, rounds: int = 50) -> Propagation:
    with scratch() as root:
        settings = make_settings(root / "state", stations=stations)
        with BackgroundFloor(settings, postgres=False) as floor:
            keys = KeyStore(root / "keys")
            return asyncio.run(_propagation(floor, keys, root / "stations", rounds))


#: One station's node agent in a process of its own, as ``smart node run`` runs it on a floor: it
#: ships what its ledger holds and says "ready" once on its leaf.
_AGENT_PROCESS = """
import asyncio, sys
from pathlib import Path
from smart import logs
from smart.keys import KeyStore
from smart.node.agent import AgentConfig, NodeAgent

async def main() -> None:
    logs.configure("WARNING")  # to stderr: stdout carries only "ready"
    station, leaf, data, keys = sys.argv[1:5]
    config = AgentConfig(station=station, leaf_url=leaf, data_dir=Path(data), keys=KeyStore(Path(keys)))
    agent = NodeAgent(config)
    await agent.start()
    await agent.connected.wait()
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.read)  # until the bench closes our stdin
    await agent.stop()

asyncio.run(main())
"""


async def _agent_processes(
    floor: BackgroundFloor, keys: KeyStore, data: Path, station_ids: list[str]
) -> list[asyncio.subprocess.Process]:
    """One agent process per station, each on its leaf (ready) before this returns."""
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _AGENT_PROCESS,
            s,
            floor.floor.leaves[s].url,
            str(data / s),
            str(keys.directory),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for s in station_ids
    ]
    for station, process in zip(station_ids, processes, strict=True):
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        if line.strip() != b"ready":
            code = process.returncode
            raise RuntimeError(f"station {station}'s agent process did not come up ({line!r}, exit {code})")
    return processes


async def _end(processes: list[asyncio.subprocess.Process]) -> None:
    for process in processes:
        if process.stdin is not None:
            process.stdin.close()
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _resync(
    floor: BackgroundFloor, keys: KeyStore, data: Path, per_station: int, *, processes: bool = True
) -> Resync:
    station_ids = list(floor.floor.leaves)
    owner_url = floor.floor.database_url()
    password = secret(root_secret(data))
    hub_store.migrate(owner_url, app_password=password)
    app_url = make_conninfo(owner_url, user=hub_store.APP_ROLE, password=password)
    intake_log = HubLog.connect(app_url, key=keys.signing_key("hub"), admin=keys.signing_key(ADMIN_KEY))
    reader = HubLog.connect(app_url, admin=keys.signing_key(ADMIN_KEY).verifying)
    register_stations(intake_log, keys, station_ids)
    assert floor.floor.hub is not None
    hub = await nats.connect(
        floor.floor.hub.url,
        **floor.settings.hub_nats_signin(),
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.1,
    )
    intake = LedgerIntake(hub, intake_log, stations=station_ids, fetch=INTAKE_FETCH)
    task = asyncio.create_task(intake.run())
    agents = [
        NodeAgent(AgentConfig(station=s, leaf_url=floor.floor.leaves[s].url, data_dir=data / s, keys=keys))
        for s in station_ids
    ]
    running: list[asyncio.subprocess.Process] = []
    try:
        for agent in agents:
            await agent.start()
        await _connected(agents)
        await asyncio.to_thread(floor.run, floor.floor.supervisor.stop_child("hub"))
        at = datetime.now(UTC)
        for agent in agents:
            for n in range(per_station):
                agent.decide(
                    f.Event(action="step", at=at, station=agent.station, job=f"J-{n}", step="pre-clean"),
                    f.Facts(),
                )
        total = sum(a.ledger.size() for a in agents if a.ledger)
        if processes:  # the backlogs are durable: each station's own process ships its own
            for agent in agents:
                await agent.stop()
            agents = []
            running = await _agent_processes(floor, keys, data, station_ids)
        # The clock starts when the hub answers again (its nats-server started and healthy): how
        # long its own boot takes is not the stations' resync. The leaves' redial is counted.
        restarting = time.perf_counter()
        await asyncio.to_thread(floor.run, floor.floor.supervisor.start_child("hub"))
        started = time.perf_counter()
        first: float | None = None
        while (size := reader.size()) < total:
            if first is None and size > 0:
                first = time.perf_counter() - started
            if time.perf_counter() - started > RESYNC_PATIENCE_S:
                raise RuntimeError(f"resync stalled: {size} of {total} entries in the hub log")
            await asyncio.sleep(0.01)  # polling the database is what a reader does
        seconds = time.perf_counter() - started
        figures = Resync(
            stations=len(station_ids),
            entries_per_station=total // len(station_ids),
            seconds=seconds,
            first_entry_s=first if first is not None else seconds,
            hub_start_s=started - restarting,
            agents="process" if processes else "in-process",
        )
    finally:
        task.cancel()
        intake.close()
        for agent in agents:
            await agent.stop()
        await _end(running)
        await hub.close()
        reader.close()
        intake_log.close()
    alone = await asyncio.to_thread(_hub_alone, floor, keys, data, station_ids, password)
    return dataclasses.replace(figures, hub_alone_seconds=alone)


def _hub_alone(
    floor: BackgroundFloor, keys: KeyStore, data: Path, station_ids: list[str], password: str
) -> float:
    """Seconds the hub alone takes for the same backlogs: each station's batches as it shipped them
    (its stored bytes, the agent's batch size), read as the intake reads them (``Batch.from_bytes``,
    every entry proved canonical) and ingested a round of every station's next batch at a time, the
    next round read while the last is written as in the intake, into a fresh database of the same
    server: the hub's own share of a resync on this machine at this moment, without NATS, the
    agents or the receipts."""
    name = "smart_resync_baseline"
    with psycopg.connect(floor.floor.database_url("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    owner_url = floor.floor.database_url(name)
    hub_store.migrate(owner_url, app_password=password)
    app_url = make_conninfo(owner_url, user=hub_store.APP_ROLE, password=password)
    hub_log = HubLog.connect(app_url, key=keys.signing_key("hub"), admin=keys.signing_key(ADMIN_KEY))
    try:
        register_stations(hub_log, keys, station_ids)
        sent: list[list[bytes]] = []
        for station in station_ids:  # what each station sent, built outside the clock (the station's work)
            with ledger.NodeLog.open(data / station / "ledger", node=station, keys=keys) as own:
                sent.append([])
                start = 0
                while (
                    shipment := own.shipment(start, limit=SHIP_BATCH, max_bytes=MAX_BATCH_BYTES)
                ) is not None:
                    sent[-1].append(shipment.payload)
                    start = shipment.last_seq + 1
        # As they arrive: a round of every station's next batch per fetch.
        rounds = max((len(batches) for batches in sent), default=0)
        fetches = [[batches[n] for batches in sent if n < len(batches)] for n in range(rounds)]

        def read(fetch: list[bytes]) -> list[Batch]:
            return [Batch.from_bytes(p) for p in fetch]

        # As the intake works: the next fetch read on a thread of its own while the last is written,
        # the cyclic garbage collector held off while a backlog is in hand.
        collector_on = gc.isenabled()
        gc.disable()
        began = time.perf_counter()
        try:
            with ThreadPoolExecutor(max_workers=1) as reader:
                reading = reader.submit(read, fetches[0]) if fetches else None
                for n in range(len(fetches)):
                    assert reading is not None
                    batches = reading.result()
                    reading = reader.submit(read, fetches[n + 1]) if n + 1 < len(fetches) else None
                    refused = [o for o in hub_log.ingest_many(batches) if isinstance(o, Exception)]
                    if refused:
                        raise RuntimeError(f"the baseline's ingest refused a batch: {refused[0]}")
            return time.perf_counter() - began
        finally:
            if collector_on:
                gc.enable()
    finally:
        hub_log.close()


async def _connected(agents: list[NodeAgent], patience_s: float = 60.0) -> None:
    """Every agent on its leaf (mirrors made, shipping started), or a clear error naming who is not."""
    try:
        await asyncio.wait_for(asyncio.gather(*(a.connected.wait() for a in agents)), patience_s)
    except TimeoutError:
        late = [a.station for a in agents if not a.connected.is_set()]
        raise RuntimeError(f"stations not on their leaves after {patience_s:.0f} s: {late}") from None


def root_secret(data: Path) -> Path:
    return data.parent / "secrets" / "ledger-app.password"


def resync(*, stations: int = 6, per_station: int = 5000, processes: bool = True) -> Resync:
    """The resync; with ``processes`` each station's agent ships from a process of its own, as on a floor."""
    with scratch() as root:
        settings = make_settings(root / "state", stations=stations)
        with BackgroundFloor(settings) as floor:
            keys = KeyStore(root / "keys")
            return asyncio.run(_resync(floor, keys, root / "stations", per_station, processes=processes))
