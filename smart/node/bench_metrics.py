"""``smart bench metrics``: how long a station takes to serve ``/metrics``, beside an empty route.

Without a URL it starts a one-station floor (hub and leaf nats-servers) and the station's agent
on it in a temporary directory, records a day's worth of decision series into it (every module of the
station's kind, each with its rules and outcomes, latencies observed), serves the station's own
web app on a free loopback port and times ``/metrics`` against ``/metrics/baseline`` (an empty
route of the same server) in alternating chunks of the same run, from a scraping process of its
own (:mod:`smart.node.metrics_scraper`), and times the station's render in its process. With a
URL it times a running station (``smart up`` prints each ``station <id> metrics``; give the
base, without ``/metrics``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from smart.keys import KeyStore
from smart.node import metrics as station_metrics
from smart.node.agent import AgentConfig, NodeAgent
from smart.node.bench import scratch
from smart.node.web import create_station_app
from smart.runtime.background import BackgroundFloor
from smart.runtime.ports import free_port
from smart.runtime.up import serve_web
from smart.testing.plugin import make_settings

STATION = "pt-1"
#: The series a busy station carries: modules × rules × outcomes (a penetrant line's day).
MODULES = ("station", "gatekeeper", "guardian", "qa", "safety", "maintenance", "inventory", "vision")
RULES_PER_MODULE = 12
OUTCOMES = ("allow", "warn", "deny")


def fill(agent: NodeAgent) -> int:
    """Record decisions on every (module, rule, outcome) series, as the station's modules would."""
    recorded = 0
    for module in MODULES:
        for number in range(RULES_PER_MODULE):
            rule = f"{module}.rule-{number}"
            for outcome in OUTCOMES:
                reasons = (
                    [] if outcome == "allow" else [{"rule": rule, "message": "bench", "severity": outcome}]
                )
                kind = "gate.decision" if module == "station" else "module.decision"
                data = {
                    "module": None if module == "station" else module,
                    "outcome": outcome,
                    "reasons": reasons,
                }
                agent.record(kind=kind, subject="bench", data=data, actor=STATION)
                agent.metrics.observe(module, 0.001 * (number + 1))
                recorded += 1
    return recorded


async def _measure_own(floor: BackgroundFloor, root: Path, scrapes: int) -> station_metrics.ScrapeFigures:
    keys = KeyStore(root / "keys")
    keys.signing_key("hub")  # the station's trust anchor, as provisioning leaves it
    config = AgentConfig(
        station=STATION, leaf_url=floor.floor.leaves[STATION].url, data_dir=root / STATION, keys=keys
    )
    agent = NodeAgent(config)
    await agent.start()
    port = free_port()
    server, web = await serve_web(create_station_app(agent), "127.0.0.1", port)
    try:
        await agent.connected.wait()
        fill(agent)  # on the loop's thread: the node log is written from one thread
        base = f"http://127.0.0.1:{port}"
        scraped = await station_metrics.measure_station_metrics_ms(base, scrapes=scrapes)
        rendered = station_metrics.render_p95_ms(agent.metrics)
        return dataclasses.replace(scraped, render_p95_ms=rendered)
    finally:
        server.should_exit = True
        await web
        await agent.stop()


def run(scrapes: int = 200, url: str | None = None) -> station_metrics.ScrapeFigures:
    """For ``smart bench metrics`` and ``smart bench dashboards`` (key ``station_metrics_ms``)."""
    if url is not None:
        return asyncio.run(station_metrics.measure_station_metrics_ms(url.rstrip("/"), scrapes=scrapes))
    with scratch("smart-bench-metrics-") as root:
        settings = make_settings(root / "state", stations=1)
        with BackgroundFloor(settings, postgres=False) as floor:
            return asyncio.run(_measure_own(floor, root, scrapes))
