"""``smart bench api``: the client API's p99 at a fixed request rate, beside a bare FastAPI route's.

A temporary PostgreSQL holds one client's POs (and another client's, so
the filter by client does work); the hub app serves the client API and a
bare route (``GET /bench/bare``, no database, no credential) from one
uvicorn server on loopback, in a process of its own (the generator must not
share its interpreter). The load generator is
open-loop: it sends at a fixed rate whatever the answers do, and each
latency runs from the moment the request was due (so a stall counts
against the server, not hidden by the generator waiting). It is bounded in
count (``requests``) and time (``requests / rate`` seconds plus a grace),
in interleaved rounds of the bare route and ``GET /api/v1/client/pos/{po}``
with an API key (authentication, rate-limit bucket, one query, the typed
answer), after an uncounted warm-up of each. The server is started as
``smart hub run`` starts the hub's (:func:`create_app`, :func:`server_config`,
:func:`settle_for_serving`, uvloop). The bench's credential has a rate limit
above the offered load; the shop's default (20 a second per credential)
would refuse most of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import uvicorn
import uvloop
from fastapi import APIRouter, FastAPI
from psycopg.conninfo import make_conninfo

from smart.hub import work
from smart.hub.client_api import service as client_api_service
from smart.hub.client_api import web as client_api_web
from smart.hub.client_api.store import ClientCredentials
from smart.hub.published import feed
from smart.hub.service_log import CLIENT_API, ServiceNodeLog
from smart.hub.web.app import create_app, server_config, settle_for_serving
from smart.hub.web.status import FloorStatus
from smart.keys import KeyStore
from smart.ledger import hub_store
from smart.runtime import ports


@dataclass(frozen=True)
class Figures:
    p99_ms: float
    bare_p99_ms: float
    requests_per_s: float
    p50_ms: float
    bare_p50_ms: float
    requests: int
    offered_per_s: float
    refused: int
    #: CPU each request cost the server process and PostgreSQL: figures the machine's load barely moves.
    server_cpu_ms: float
    bare_server_cpu_ms: float
    database_cpu_ms: float
    #: The machine's 1-minute load average before and after: on 2 shared cores it decides the tail.
    load_before: float
    load_after: float
    #: Interleaved rounds (bare and API alternately, so both see the same load), and each one's p99.
    rounds: int
    rounds_p99_ms: list[float]
    rounds_bare_p99_ms: list[float]
    #: How late the generator itself wrote a request (its own wait for a core), p99 over both routes.
    generator_late_p99_ms: float

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _quantile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def _seed(owner_url: str, pos: int) -> None:
    """``pos`` POs of three lines for BENCH and as many for OTHER, by SQL (not timed)."""
    with psycopg.connect(owner_url, autocommit=True) as conn, conn.transaction():
        for code in ("BENCH", "OTHER"):
            conn.execute(
                "INSERT INTO clients.clients (code, name, retention, nadcap_required, added_by) "
                "VALUES (%s, %s, '10 years', false, 'bench')",
                (code, f"{code} client"),
            )
            conn.execute(
                "INSERT INTO clients.purchase_orders (po, client, received_on, added_by) "
                "SELECT %s || lpad(n::text, 5, '0'), %s, date '2026-11-01', 'bench' "
                "FROM generate_series(1, %s) n",
                (f"{code}-", code, pos),
            )
            conn.execute(
                "INSERT INTO clients.po_lines (po, line, part, part_revision, quantity, unit, lot, "
                "unit_price, due_date) SELECT o.po, l::text, 'BRK-220', 'C', 4, 'ea', 'LOT-' || l, 42.50, "
                "date '2026-12-18' FROM clients.purchase_orders o, generate_series(1, 3) l "
                "WHERE o.client = %s",
                (code,),
            )
        # What the Business hub holds of them, as the Floor publishes each client (``client``) and PO
        # (``client-po``): the API on Business answers from these records, never from ClientManager's.
        conn.execute(
            "INSERT INTO published.records (kind, key, body, published_at, feed_seq) "
            "SELECT 'client', code, jsonb_build_object('client', code, 'name', name), now(), 0 "
            "FROM clients.clients"
        )
        conn.execute(
            "INSERT INTO published.records (kind, key, body, published_at, feed_seq) "
            "SELECT 'client-po', o.po, jsonb_build_object('po', o.po, 'client', o.client, 'received_on', "
            "o.received_on, 'lines', (SELECT jsonb_agg(jsonb_build_object('line', l.line, 'part', l.part, "
            "'part_revision', l.part_revision, 'quantity', l.quantity, 'unit', l.unit, 'due_date', "
            "l.due_date, 'status', 'released', 'received_at', null, 'shipped_at', null, 'certified', false, "
            "'invoice', null) ORDER BY l.line) FROM clients.po_lines l WHERE l.po = o.po)), now(), "
            "row_number() OVER (ORDER BY o.po) FROM clients.purchase_orders o"
        )
        conn.execute("ANALYZE")


def _app(app_url: str, work_dir: Path, rate: float) -> tuple[FastAPI, client_api_service.ClientApiServices]:
    """The served app: the hub's app (:func:`create_app`) with the client API's routes and the bare one."""
    keys = KeyStore(work_dir / "keys")
    services = client_api_service.ClientApiServices(
        app_url,
        keys=keys,
        ledger_dir=work_dir / "ledger",
        rate_per_s=rate * 10,
        burst=int(rate * 10),
    )
    bare = APIRouter()

    @bare.get("/bench/bare")
    async def bare_route() -> dict[str, bool]:
        return {"ok": True}

    async def no_floor() -> FloorStatus:
        return FloorStatus(healthy=True, services=[], checked_at=time.time())

    app = create_app(no_floor, routers=[client_api_web.router(services.api), bare])
    return app, services


def serve(app_url: str, work_dir: Path, port: int, rate: float) -> None:
    """The server process (``python -m smart.runtime.api_bench``), started as ``smart hub run`` starts.

    The same :func:`server_config`, the heap frozen by :func:`settle_for_serving`, uvloop; until ended.
    """
    app, _ = _app(app_url, work_dir, rate)
    server = uvicorn.Server(server_config(app, host="127.0.0.1", port=port, forwarded_allow_ips="127.0.0.1"))
    settle_for_serving()
    uvloop.run(server.serve())


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _database_cpu_s(postmaster: psutil.Process) -> float:
    """CPU of PostgreSQL's postmaster and every backend alive now (the server's pool keeps its own)."""
    total = 0.0
    for process in (postmaster, *postmaster.children()):
        with contextlib.suppress(psutil.Error):
            total += _cpu_s(process)
    return total


@contextmanager
def _server(app_url: str, work_dir: Path, rate: float) -> Iterator[tuple[str, int]]:
    """The app in a process of its own (the load generator must not share its interpreter), on loopback."""
    port = ports.free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "smart.runtime.api_bench", app_url, str(work_dir), str(port), str(rate)],
        stdin=subprocess.DEVNULL,
        # a session of its own, as the hub has under systemd or in its pod (and the floor's PostgreSQL
        # has under the supervisor): Linux's autogroup shares CPU between sessions, and in the bench's
        # session the server would be paying for the load generator's CPU
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/bench/bare", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the bench's web server did not start")
            time.sleep(0.05)
        yield base, process.pid
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


class _Connection:
    """One keep-alive HTTP/1.1 connection on asyncio streams: a generator lighter than the server it loads.

    A full client library costs about as much CPU per request as the route it measures; this writes
    the request line and reads the status line, the headers and ``Content-Length`` bytes of body.
    """

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._head = f"Host: {host}:{port}\r\n{extra}\r\n".encode()
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, path: str) -> int:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\n" + self._head)
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        return status

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()


@dataclass
class _Round:
    """One load's latencies (ms, from when each request was due) and how late the generator itself was."""

    latencies: list[float]
    late: list[float]
    refused: int
    elapsed: float


async def _load(
    base: str, paths: list[str], headers: dict[str, str], *, rate: float, count: int, connections: int = 32
) -> _Round:
    """Send ``count`` requests at ``rate`` a second (open loop); latencies (ms) from when each was due.

    ``late`` is how long after its due time each request was written: the generator's own share of
    a latency (its process waiting for a core), so a tail can be told apart from the server's.
    """
    host, _, port = base.removeprefix("http://").partition(":")
    idle: asyncio.Queue[_Connection] = asyncio.Queue()
    pool = [_Connection(host, int(port), headers) for _ in range(connections)]
    for connection in pool:
        idle.put_nowait(connection)
    latencies: list[float] = []
    late: list[float] = []
    refused = 0

    async def one(path: str, due: float) -> None:
        nonlocal refused
        connection = await idle.get()
        late.append((time.perf_counter() - due) * 1000)
        try:
            if await asyncio.wait_for(connection.get(path), timeout=10) != 200:
                refused += 1
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError, TimeoutError):
            refused += 1  # a failure counts as what it cost, and as refused; the connection starts anew
            connection.close()
            connection = _Connection(host, int(port), headers)
        finally:
            idle.put_nowait(connection)
        latencies.append((time.perf_counter() - due) * 1000)

    started = time.perf_counter()
    tasks: list[asyncio.Task[None]] = []
    for n in range(count):
        due = started + n / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(paths[n % len(paths)], due)))
    # bounded in time too: what has not answered by then is counted as refused at that latency
    _, unanswered = await asyncio.wait(tasks, timeout=count / rate + 30)
    for task in unanswered:
        task.cancel()
        refused += 1
        latencies.append((time.perf_counter() - started - count / rate) * 1000)
    elapsed = time.perf_counter() - started
    for connection in pool:
        connection.close()
    return _Round(latencies, late, refused, elapsed)


def run(
    admin_url: str,
    *,
    work_dir: Path,
    requests: int = 2000,
    rate: float = 200.0,
    pos: int = 200,
    rounds: int = 4,
    progress: Callable[[str], None] = lambda line: None,
) -> Figures:
    """``requests`` to each route at ``rate``, in ``rounds`` interleaved rounds (bare, API, API, bare, …).

    The machine's load moves from second to second; alternating the two routes round by round, and
    which goes first, lets both see the same load. A warm-up of each (``requests / 20``, at least 10)
    runs first and is not counted: the first requests open the pools and fill the caches.
    """
    name = f"bench_api_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    owner_url = make_conninfo(admin_url, dbname=name)
    password = secrets.token_urlsafe(16)
    rounds = max(1, min(rounds, requests))
    try:
        hub_store.migrate(owner_url, app_password=password)
        work.migrate(owner_url)
        feed.migrate(owner_url, role=hub_store.APP_ROLE)  # the Business hub's published records
        client_api_service.migrate(owner_url)
        app_url = make_conninfo(owner_url, user=hub_store.APP_ROLE, password=password)
        progress(f"seeding {pos} POs for each of two clients …")
        _seed(owner_url, pos)
        keys = KeyStore(work_dir / "keys")
        credentials = ClientCredentials(
            app_url, ledger=ServiceNodeLog(work_dir / "ledger", keys, node=CLIENT_API), pool_size=1
        )
        try:
            _, key = credentials.create_key("BENCH", actor="bench")
        finally:
            credentials.close()
        with psycopg.connect(app_url) as probe:
            postmaster = psutil.Process(probe.info.backend_pid).parent()
        assert postmaster is not None
        load_before = os.getloadavg()[0]
        rng = random.Random(22)
        paths = [f"/api/v1/client/pos/BENCH-{rng.randrange(1, pos + 1):05d}" for _ in range(512)]
        auth = {"Authorization": f"Bearer {key}"}
        routes = {"bare": (["/bench/bare"], {}), "api": (paths, auth)}
        measured: dict[str, list[_Round]] = {"bare": [], "api": []}
        cpu = {"bare": 0.0, "api": 0.0, "database": 0.0}
        with _server(app_url, work_dir, rate) as (base, pid):
            server = psutil.Process(pid)
            warm = max(10, requests // 20)
            progress(f"warming up ({warm} requests to each route, not counted) …")
            for route_paths, headers in routes.values():
                uvloop.run(_load(base, route_paths, headers, rate=rate, count=warm))
            for n in range(rounds):
                count = requests // rounds + (1 if n < requests % rounds else 0)
                order = ("bare", "api") if n % 2 == 0 else ("api", "bare")
                progress(f"round {n + 1}/{rounds}: {count} requests at {rate:g}/s, {' then '.join(order)} …")
                for route in order:
                    route_paths, headers = routes[route]
                    spent, spent_db = _cpu_s(server), _database_cpu_s(postmaster)
                    measured[route].append(
                        uvloop.run(_load(base, route_paths, headers, rate=rate, count=count))
                    )
                    cpu[route] += _cpu_s(server) - spent
                    if route == "api":
                        cpu["database"] += _database_cpu_s(postmaster) - spent_db
        load_after = os.getloadavg()[0]
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    api_ms = [ms for r in measured["api"] for ms in r.latencies]
    bare_ms = [ms for r in measured["bare"] for ms in r.latencies]
    return Figures(
        p99_ms=_quantile(api_ms, 0.99),
        bare_p99_ms=_quantile(bare_ms, 0.99),
        requests_per_s=len(api_ms) / sum(r.elapsed for r in measured["api"]),
        p50_ms=_quantile(api_ms, 0.50),
        bare_p50_ms=_quantile(bare_ms, 0.50),
        requests=requests,
        offered_per_s=rate,
        refused=sum(r.refused for r in measured["api"]),
        server_cpu_ms=cpu["api"] * 1000 / requests,
        bare_server_cpu_ms=cpu["bare"] * 1000 / requests,
        database_cpu_ms=cpu["database"] * 1000 / requests,
        load_before=load_before,
        load_after=load_after,
        rounds=rounds,
        rounds_p99_ms=[round(_quantile(r.latencies, 0.99), 2) for r in measured["api"]],
        rounds_bare_p99_ms=[round(_quantile(r.latencies, 0.99), 2) for r in measured["bare"]],
        generator_late_p99_ms=_quantile([ms for rs in measured.values() for r in rs for ms in r.late], 0.99),
    )


def run_on_temporary_floor(progress: Callable[[str], None], **sizes: Any) -> Figures:
    """Start a temporary PostgreSQL (no NATS: the client API reads the hub database only), and run."""
    from smart.runtime.background import temporary_floor

    with temporary_floor(progress, prefix="smart-bench-api-", nats_servers=False) as (floor, tmp):
        return run(floor.floor.database_url("postgres"), work_dir=tmp / "work", progress=progress, **sizes)


if __name__ == "__main__":
    serve(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
