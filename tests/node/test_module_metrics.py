"""A module run as a process of its own serves ``/metrics``: its decisions, their latency, its leaf.

A real ``smart module run standards --metrics-port P`` process on a real leaf, started before the
station's agent: its ``/metrics`` says it is connected and not yet serving (no agent answers its
ports), then serving once the agent is up; after known requests its decision counts equal the
``module.decision`` entries the agent wrote for it, each timed once, and an unreadable request is
an error counted apart. The endpoint itself (h11 on the process's loop) is checked on its own:
kept-alive scrapes, HEAD, 404, 405 and a malformed request.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import nats
import pytest
from prometheus_client.parser import text_string_to_metric_families

from smart.contracts import facts as f
from smart.keys import KeyStore
from smart.modules import framework
from smart.node import metrics_endpoint, records
from smart.node.metrics import deciding_rule
from smart.node.station import StationRuntime
from smart.runtime.background import BackgroundFloor
from smart.runtime.ports import free_port
from smart.testing.patience import STATE_DEADLINE_S
from tests.node.conftest import Hub, agent_for, eventually
from tests.node.test_job_walkthrough import AT, PENETRANT_SHOP, deploy, entries, publish

MODULE = "standards"
#: A module process imports its module on a busy machine: minutes, not seconds, to answer.
STARTUP_S = 240.0

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def of(found: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(v for (n, have), v in found.items() if n == name and set(labels.items()) <= set(have))


async def scrape(url: str) -> Samples | None:
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(url)
    except httpx.HTTPError:
        return None
    response.raise_for_status()
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(response.text)


async def scraped_until(url: str, what: str, check: object) -> Samples:
    """Scrape ``url`` until ``check(samples)`` holds (the suite's generous deadline)."""
    assert callable(check)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_S
    while loop.time() < deadline:
        found = await scrape(url)
        if found is not None and check(found):
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} not seen on {url} within {STARTUP_S} s (last: {found})")


def module_process(leaf_url: str, port: int, tmp_path: Path) -> subprocess.Popen[bytes]:
    """``smart module run standards --station pt-1`` configured as its DaemonSet pod is (by env)."""
    with open(tmp_path / "module.log", "wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "smart", "module", "run", MODULE, "--station", "pt-1"],
            env={
                **os.environ,
                "SMART_STATE_DIR": str(tmp_path / "module-state"),
                "SMART_LEAF_URL": leaf_url,
                "SMART_MODULE_METRICS_PORT": str(port),
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def test_a_module_process_serves_its_decisions_latency_and_connection_on_its_own_metrics(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    await records.ensure_records_bucket(hub.connection.jetstream())
    await deploy(hub, "penetrant")
    await publish(hub, "pt-1", PENETRANT_SHOP)
    leaf_url = nats_floor.floor.leaves["pt-1"].url
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    process = module_process(leaf_url, port, tmp_path)
    runtime: StationRuntime | None = None
    client = await nats.connect(leaf_url)
    try:
        # No agent yet: on the leaf, waiting for the agent's ports, deciding nothing.
        waiting = await scraped_until(
            url, "the module connected to its leaf", lambda s: of(s, "smart_module_leaf_connected") == 1
        )
        labels = {"station": "pt-1", "module": MODULE}
        assert waiting[("smart_module_serving", tuple(sorted(labels.items())))] == 0
        assert of(waiting, "smart_module_decisions_total") == 0
        assert process.poll() is None, (tmp_path / "module.log").read_text()

        runtime = StationRuntime(agent_for(nats_floor, "pt-1", keys, tmp_path), hosted=frozenset())
        await runtime.start()
        await eventually(
            lambda: runtime is not None and runtime.serving(), what="the agent serving its ports"
        )
        await scraped_until(url, "the module serving", lambda s: of(s, "smart_module_serving", **labels) == 1)

        subject = framework.subject("pt-1", MODULE, "start")
        people = ("op-7", "op-7", "nobody-known")
        for person in people:
            event = f.Event(action="operate", at=AT, station="pt-1", person=person)
            request = {"event": records.plain(event), "body": {}}
            reply = json.loads((await client.request(subject, json.dumps(request).encode(), timeout=30)).data)
            assert "outcome" in reply and reply["entry"] >= 0, reply
        unreadable = json.loads((await client.request(subject, b"{}", timeout=30)).data)
        assert "error" in unreadable

        found = await scraped_until(
            url, "every decision counted", lambda s: of(s, "smart_module_decisions_total") == len(people)
        )
        # What the process counted is what the agent wrote for it, series by series.
        written = Counter(
            (deciding_rule(e.data["outcome"], e.data["reasons"]), e.data["outcome"])
            for e in entries(runtime, "module.decision")
            if e.data["module"] == MODULE
        )
        assert sum(written.values()) == len(people)
        for (rule, outcome), count in written.items():
            assert of(found, "smart_module_decisions_total", **labels, rule=rule, outcome=outcome) == count
        assert of(found, "smart_module_decision_seconds_count", **labels) == len(people)
        assert 0 < of(found, "smart_module_decision_seconds_sum", **labels) < STATE_DEADLINE_S
        assert of(found, "smart_module_decision_seconds_bucket", **labels, le="+Inf") == len(people)
        assert of(found, "smart_module_request_errors_total", **labels, kind="unreadable") == 1
        # The agent counts them too (it recorded them), but has no latency for a module not in its process.
        station = samples(runtime.agent.metrics.text().decode())
        assert of(station, "smart_station_decisions_total", module=MODULE) == len(people)
        assert of(station, "smart_station_decision_seconds_count", module=MODULE) == 0
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        await client.close()
        if runtime is not None:
            await runtime.stop()
    assert process.returncode == 0, (tmp_path / "module.log").read_text()


async def test_the_module_metrics_endpoint_speaks_http_to_a_scraper_and_to_nothing_else() -> None:
    renders: list[int] = []

    def render() -> bytes:
        renders.append(1)
        return b"# TYPE smart_module_x gauge\nsmart_module_x 1.0\n"

    server = await metrics_endpoint.serve_metrics(render, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{metrics_endpoint.bound_port(server)}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            for _ in range(3):  # one kept-alive connection, as Prometheus scrapes
                response = await client.get("/metrics")
                assert response.status_code == 200 and response.text.endswith("smart_module_x 1.0\n")
            head = await client.head("/metrics")
            assert head.status_code == 200 and head.content == b""
            assert int(head.headers["content-length"]) == len(response.content)
            assert (await client.get("/healthz")).text == "ok\n"
            assert (await client.get("/other")).status_code == 404
            posted = await client.post("/metrics", content=b"x")
            assert posted.status_code == 405 and posted.headers["allow"] == "GET, HEAD"
        assert len(renders) == 4  # three GETs and the HEAD; nothing rendered for the others

        def garbage() -> bytes:
            with socket.create_connection(
                ("127.0.0.1", metrics_endpoint.bound_port(server)), timeout=10
            ) as s:
                s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
                return s.recv(4096)

        answer = await asyncio.to_thread(garbage)
        assert answer.startswith(b"HTTP/1.1 400 ")
    finally:
        server.close()
        await server.wait_closed()


pytestmark = pytest.mark.timeout(900)
