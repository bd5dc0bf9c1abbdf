"""A station's and the hub's ``/metrics`` after known work: the figures a Prometheus scrape reads.

Real NATS (hub and the station's leaf), real PostgreSQL, the real intake, agent, station runtime and
kiosk, each ``/metrics`` fetched over HTTP from the app that serves it in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import nats
import prometheus_client
import pytest
from nats.js.kv import KeyValue
from prometheus_client.parser import text_string_to_metric_families

from smart.bus import subjects
from smart.contracts import facts as f
from smart.hub.intake import LedgerIntake, register_stations
from smart.hub.streams import ensure_hub_streams
from smart.hub.web.app import create_app
from smart.hub.web.status import FloorStatus
from smart.keys import KeyStore
from smart.ledger.hub_store import HubLog
from smart.modules import framework
from smart.modules.safety import gpio, pins
from smart.node import metrics as station_metrics
from smart.node.kiosk.app import Kiosk
from smart.node.station import StationRuntime
from smart.node.web import create_station_app
from smart.runtime.ports import free_port
from smart.runtime.up import serve_web
from smart.testing.patience import STATE_DEADLINE_S
from smart.testing.plugin import FloorFactory
from tests.node.conftest import LedgerDatabase, agent_for, eventually, now, signed_envelope

STATION = "pt-1"
#: The test's operator: their badge must appear in no /metrics text, whatever they did.
BADGE = "B-7781-PRIVATE"


@dataclass
class Served:
    runtime: StationRuntime
    intake: LedgerIntake
    station_url: str
    hub_url: str

    async def text(self, base: str) -> str:
        async with httpx.AsyncClient(timeout=60) as client:
            response = await client.get(base + "/metrics")
        response.raise_for_status()
        return response.text

    async def station_metrics(self) -> Samples:
        return samples(await self.text(self.station_url))

    async def hub_metrics(self) -> Samples:
        return samples(await self.text(self.hub_url))


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait for ``check`` (a scrape) to hold, with the suite's generous deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STATE_DEADLINE_S
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"{what} not reached within {STATE_DEADLINE_S} s")
        await asyncio.sleep(0.05)


def samples(text: str) -> Samples:
    """Every sample of a Prometheus text by (name, sorted labels)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def at(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"station": STATION, **labels}.items()))


async def _floor_status() -> FloorStatus:
    return FloorStatus(healthy=True, services=[], checked_at=time.time())


@pytest.fixture
async def served(
    floor_factory: FloorFactory, ledger_db: LedgerDatabase, keys: KeyStore, tmp_path: Path
) -> AsyncIterator[Served]:
    floor = floor_factory(stations=1)
    assert floor.floor.hub is not None
    connection = await nats.connect(
        floor.floor.hub.url,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.2,
        **floor.settings.hub_nats_signin(),
    )
    await ensure_hub_streams(connection.jetstream())
    hub_log = HubLog.connect(
        ledger_db.app_url, key=keys.signing_key("hub"), admin=keys.signing_key("ledger-admin")
    )
    register_stations(hub_log, keys, [STATION])
    intake = LedgerIntake(connection, hub_log, stations=[STATION], witness_every_s=0.2)
    task = asyncio.create_task(intake.run())
    agent = agent_for(floor, STATION, keys, tmp_path)
    hardware = gpio.simulated(
        pins.PinMap(green=5, amber=6, red=13, buzzer=19, relay=26, estop=17),
        lease_s=5.0,
        on_estop=lambda _: None,
    )
    runtime = StationRuntime(agent, interlock=hardware.interlock)
    kiosk = Kiosk(runtime)
    await runtime.start()
    kiosk.probe.start()
    station_port, hub_port = free_port(), free_port()
    station_server, station_web = await serve_web(create_station_app(agent, kiosk), "127.0.0.1", station_port)
    hub_app = create_app(_floor_status, service_metrics=intake.metrics_text)
    hub_server, hub_web = await serve_web(hub_app, "127.0.0.1", hub_port)
    try:
        yield Served(runtime, intake, f"http://127.0.0.1:{station_port}", f"http://127.0.0.1:{hub_port}")
    finally:
        for server in (station_server, hub_server):
            server.should_exit = True
        await asyncio.wait({station_web, hub_web}, timeout=30)
        await kiosk.probe.stop()
        await runtime.stop()
        hardware.close()
        task.cancel()
        await asyncio.wait({task}, timeout=10)
        with contextlib.suppress(Exception):
            await connection.close()
        intake.close()
        hub_log.close()


def _gate(action: str) -> f.Event:
    return f.Event(action=action, at=now(), station=STATION, person=BADGE, job="J-1")


async def test_station_and_hub_metrics_follow_known_gate_decisions_shipping_and_witnessing(
    served: Served, keys: KeyStore
) -> None:
    runtime, agent = served.runtime, served.runtime.agent
    refused_unprovable = agent.decide(_gate("operate"), f.Facts())  # no contract yet: fail closed
    assert refused_unprovable.outcome == "deny"
    assert agent.connection is not None
    bucket = await _hub_contracts(served)
    await bucket.put(subjects.contract_key(STATION, "penetrant"), signed_envelope("penetrant", STATION, keys))
    await eventually(lambda: "penetrant" in agent.enforcer.revisions, what="penetrant active")
    refused = agent.decide(_gate("operate"), f.Facts())  # no certified operator, no checks today
    allowed = agent.decide(_gate("inspect"), f.Facts())
    assert (refused.outcome, allowed.outcome) == ("deny", "allow")
    # A module's decision through the runtime (as the job machine's request reaches it): timed too.
    await eventually(runtime.serving, what="the station's modules serving")
    assert "gatekeeper" in runtime.modules
    asked, _ = await runtime.handle("gatekeeper", framework.ModuleEvent("start", _gate("operate"), {}))
    # QA opened an NCR on the job, as its module records it: the station's figure counts it open.
    runtime.record(
        kind="qa.ncr.opened",
        subject="NCR-1",
        data={"job": "J-1", "id": "NCR-1", "open": True},
        actor=BADGE,
    )

    figures = await served.station_metrics()
    decisions = "smart_station_decisions_total"
    station = station_metrics.STATION_MODULE
    assert figures[(decisions, at(module=station, rule="station.no-valid-contract", outcome="deny"))] == 1
    assert figures[(decisions, at(module=station, rule="pt-operator-certified", outcome="deny"))] == 1
    assert figures[(decisions, at(module=station, rule="none", outcome="allow"))] == 1
    assert sum(v for (name, _), v in figures.items() if name == decisions) == 4
    reasons = (
        "smart_station_decision_reasons_total",
        at(module=station, rule="pt-near-vision", severity="deny"),
    )
    assert figures[reasons] == 1
    assert figures[("smart_station_decision_seconds_count", at(module=station))] == 3
    gatekeeper = [
        v for (name, labels), v in figures.items() if name == decisions and ("module", "gatekeeper") in labels
    ]
    assert gatekeeper == [1] and asked.outcome == "deny"
    assert figures[("smart_station_decision_seconds_count", at(module="gatekeeper"))] == 1
    assert figures[("smart_station_contract_revisions", at())] == 1
    assert figures[("smart_station_ncrs_open", at())] == 1
    assert figures[("smart_station_interlock_energised", at())] == 0
    # A second NCR on another job, then the first dispositioned and closed: the gauge follows both.
    runtime.record(
        kind="qa.ncr.opened", subject="NCR-2", data={"job": "J-2", "id": "NCR-2", "open": True}, actor=BADGE
    )
    assert (await served.station_metrics())[("smart_station_ncrs_open", at())] == 2
    runtime.record(
        kind="qa.ncr.closed",
        subject="NCR-1",
        data={"job": "J-1", "id": "NCR-1", "open": False, "disposition": "rework"},
        actor=BADGE,
    )
    assert (await served.station_metrics())[("smart_station_ncrs_open", at())] == 1
    assert agent.ledger is not None
    size = agent.ledger.size()

    async def shipped() -> bool:
        now_figures = await served.station_metrics()
        return (
            now_figures[("smart_station_ledger_lag_entries", at())] == 0
            and now_figures[("smart_station_ledger_entries", at())] >= size
        )

    await until(shipped, "ledger lag 0 on the station's /metrics")
    figures = await served.station_metrics()
    entries = figures[("smart_station_ledger_entries", at())]
    assert figures[("smart_station_ledger_shipped_entries_total", at())] == entries

    async def station_has(name: str, value: float, **labels: str) -> bool:
        return (await served.station_metrics()).get((name, at(**labels)), 0) >= value

    await until(lambda: station_has("smart_station_witness_rounds_total", 1, outcome="cosigned"), "cosigned")
    await until(lambda: station_has("smart_kiosk_hub_online", 1), "the kiosk online on /metrics")
    assert (await served.station_metrics())[("smart_station_leaf_connected", at())] == 1

    async def mirrors_caught_up() -> bool:  # the heartbeat measures the leaf's mirrors of hub buckets
        return (await served.station_metrics()).get(("smart_station_mirror_lag_messages", at())) == 0

    await until(mirrors_caught_up, "the station's mirrors level with the hub on /metrics")

    # The hub: every entry the station shipped ingested, none refused, the station's witness counted.
    async def hub_has(name: str, value: float, **labels: str) -> bool:
        return (await served.hub_metrics()).get((name, at(**labels)), 0) >= value

    await until(lambda: hub_has("smart_hub_ledger_entries_ingested_total", entries), "every entry ingested")
    await until(lambda: hub_has("smart_hub_witness_rounds_total", 1, outcome="cosigned"), "hub cosigned")
    hub = await served.hub_metrics()
    assert hub[("smart_hub_ledger_entries_ingested_total", at())] == entries  # each entry once
    assert hub[("smart_hub_ledger_batches_ingested_total", at())] >= 1
    assert not [key for key in hub if key[0] == "smart_hub_ledger_ingest_refusals_total"]
    assert hub[("smart_hub_ledger_blocked", at())] == 0
    assert hub[("smart_hub_ledger_alarms_open", ())] == 0

    # No label value and no text anywhere is the operator's badge or job (the ledger holds them).
    for text in (await served.text(served.station_url), await served.text(served.hub_url)):
        assert BADGE not in text and "J-1" not in text


async def test_metrics_bench_times_a_station_scrape_beside_an_empty_route(
    floor_factory: FloorFactory, keys: KeyStore, tmp_path: Path
) -> None:
    floor = floor_factory(stations=1)
    agent = agent_for(floor, STATION, keys, tmp_path)
    await agent.start()
    port = free_port()
    server, web = await serve_web(create_station_app(agent), "127.0.0.1", port)
    try:
        figures = await station_metrics.measure_station_metrics_ms(f"http://127.0.0.1:{port}", scrapes=4)
        shape = figures.to_json()
        assert set(shape) >= {"station_metrics_ms", "baseline_p95_ms", "scrapes", "metrics_bytes"}
        assert shape["scrapes"] == 4 and shape["metrics_bytes"] > 0
    finally:
        server.should_exit = True
        await asyncio.wait({web}, timeout=30)
        await agent.stop()


async def _hub_contracts(served: Served) -> KeyValue:
    return await served.intake.connection.jetstream().key_value(subjects.CONTRACTS_BUCKET)


def test_station_exposition_says_what_prometheus_client_would_for_the_same_decisions() -> None:
    """The station renders its decision series itself (for speed): the same samples as the library's."""
    ours = station_metrics.StationMetrics(STATION)
    registry = prometheus_client.CollectorRegistry()
    theirs = prometheus_client.Histogram(
        "smart_station_decision_seconds",
        "same",
        ["station", "module"],
        buckets=station_metrics.LATENCY_BUCKETS,
        registry=registry,
    )
    counted = prometheus_client.Counter(
        "smart_station_decisions", "same", ["station", "module", "rule", "outcome"], registry=registry
    )
    odd_rule = 'rule "quoted" \\ with\nnewline'
    for seconds in (0.0001, 0.0005, 0.003, 0.2, 7.0):
        ours.observe("guardian", seconds)
        theirs.labels(STATION, "guardian").observe(seconds)
    reasons = [{"rule": odd_rule, "message": "m", "severity": "deny"}]
    for _ in range(3):
        ours.decided("module.decision", {"module": "guardian", "outcome": "deny", "reasons": reasons})
        counted.labels(STATION, "guardian", odd_rule, "deny").inc()
    mine = samples(ours.text().decode())
    library = samples(prometheus_client.generate_latest(registry).decode())
    assert {k: v for k, v in mine.items() if k in library} == library
    assert set(library) <= set(mine)


def test_a_scrape_after_a_decision_shows_it_and_the_state_is_read_at_each_scrape() -> None:
    """The decision families are rendered once per change: never a stale copy after a new decision."""
    ours = station_metrics.StationMetrics(STATION)
    state = {"lag": 5}

    def figures() -> station_metrics.StationFigures:
        return station_metrics.StationFigures(
            ledger_entries=10,
            shipped_seq=9 - state["lag"],
            ledger_blocked=False,
            ledger_alarms=0,
            mirror_lag=None,
            revisions=1,
            connected=True,
        )

    ours.read_state(figures)
    allow = {"module": "qa", "outcome": "allow", "reasons": []}
    ours.decided("module.decision", allow)
    first = ours.text()
    assert ours.text() == first  # nothing moved: the same text
    ours.decided("module.decision", allow)
    ours.observe("qa", 0.002)
    state["lag"] = 0
    after = samples(ours.text().decode())
    labels = (("module", "qa"), ("outcome", "allow"), ("rule", "none"), ("station", STATION))
    assert after[("smart_station_decisions_total", labels)] == 2
    assert after[("smart_station_decision_seconds_count", (("module", "qa"), ("station", STATION)))] == 1
    assert after[("smart_station_ledger_lag_entries", (("station", STATION),))] == 0
    assert after[("smart_station_ledger_shipped_entries_total", (("station", STATION),))] == 10
    assert not [key for key in after if key[0] == "smart_station_mirror_lag_messages"]  # cannot say: absent
    types = {family.name: family.type for family in text_string_to_metric_families(ours.text().decode())}
    assert types["smart_station_ledger_shipped_entries"] == "counter"
    assert types["smart_station_ledger_lag_entries"] == "gauge"
    assert types["smart_station_decision_seconds"] == "histogram"
