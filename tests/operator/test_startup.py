"""Start-up: no hub key, no start; a failing start-up leaks no hub connection; probes and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import kmock
import kopf
import nats
import nats.js.errors
import pytest
import yaml
from kopf._core.engines.activities import ActivityError

from smart import ledger
from smart.bus import hub_roles, subjects
from smart.contracts import approval
from smart.keys import KeyStore
from smart.node import records
from smart.operator import handlers, metrics
from smart.runtime import ports
from smart.runtime.background import BackgroundFloor
from smart.testing.logs import captured
from smart.testing.patience import STATE_DEADLINE_S
from tests.charts.conftest import REPO, render
from tests.operator.conftest import CONTRACTS, STATIONS, Starter, declare, eventually
from tests.operator.test_operator import CONTRACT, distributed, station


def _environment(monkeypatch: pytest.MonkeyPatch, kube: str, nats_url: str, tmp_path: Path) -> Path:
    monkeypatch.setenv("SMART_KUBE_SERVER", kube)
    monkeypatch.setenv("SMART_NATS_URL", nats_url)
    monkeypatch.setenv("SMART_STATE_DIR", str(tmp_path / "operator"))
    monkeypatch.setenv("SMART_KEYS_DIR", str(tmp_path / "keys"))
    return tmp_path / "keys"


def _kopf(stop: asyncio.Event | None) -> asyncio.Task[None]:
    """kopf on the test's loop; ``stop`` None for a start that is to fail.

    kopf 1.45 leaves its own task waiting on the stop flag running when the operator ends for
    another reason (a failed start-up), then waits 5 s for it as for a handler of its own.
    """
    settings = kopf.OperatorSettings()
    settings.watching.server_timeout = 1
    settings.watching.client_timeout = 2
    return asyncio.create_task(
        kopf.operator(
            clusterwide=True, standalone=True, stop_flag=stop, settings=settings, registry=handlers.registry()
        )
    )


async def test_the_operator_refuses_to_start_without_the_provisioned_hub_key(
    kmock: kmock.KubernetesEmulator,
    nats_floor: BackgroundFloor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    declare(kmock)
    keys = _environment(monkeypatch, str(kmock.url), nats_floor.hub_url, tmp_path)
    caplog.set_level(logging.ERROR)
    with pytest.raises(ActivityError):
        await asyncio.wait_for(_kopf(None), 60)
    said = " ".join(r.getMessage() for r in caplog.records)
    assert f"no hub key at {keys / 'hub.key'}" in said  # names where it looked
    assert not (keys / "hub.key").exists()  # and made none up


async def test_a_failing_start_up_leaks_no_hub_connection_on_its_retries(
    kmock: kmock.KubernetesEmulator,
    nats_floor: BackgroundFloor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    declare(kmock)
    keys = _environment(monkeypatch, str(kmock.url), nats_floor.hub_url, tmp_path)
    store = KeyStore(keys)
    store.signing_key("hub")
    # Another writer holds the operator's ledger node: every start-up attempt fails after connecting.
    holder = ledger.NodeLog.open(tmp_path / "operator" / "ledger", node=handlers.LEDGER_NODE, keys=store)
    stop = asyncio.Event()
    logging_put_back = contextlib.ExitStack()
    logged = logging_put_back.enter_context(captured())
    task = _kopf(stop)
    monitor = f"http://127.0.0.1:{nats_floor.floor.hub.monitor_port}/connz?limit=1024"  # type: ignore[union-attr]

    async def operators_connected() -> int:
        async with aiohttp.ClientSession() as session, session.get(monitor) as response:
            connz = await response.json()
        return sum(1 for c in connz.get("connections") or [] if c.get("name") == "smart-operator")

    async def retried_three_times() -> bool:
        failures = [r for r in caplog.records if "startup" in r.getMessage() and "failed" in r.getMessage()]
        return len(failures) >= 3

    async def started() -> bool:
        return any(e["event"] == "operator started" for e in logged)

    try:
        await eventually(retried_three_times, patience=120)
        assert await operators_connected() == 0
        holder.close()  # the other writer goes: the next attempt starts, with one connection
        assert await eventually(lambda: _equal(operators_connected(), 1), patience=60)
        # It connects before it opens its ledger and says it started: wait for the line, not the socket.
        await eventually(started, patience=STATE_DEADLINE_S)
        password = urllib.parse.urlsplit(nats_floor.hub_url).password
        said = [repr(e) for e in logged if e["event"] == "operator started"]
        assert password and not any(password in line for line in said)  # no secret logged
        assert all(f"127.0.0.1:{urllib.parse.urlsplit(nats_floor.hub_url).port}" in line for line in said)
    finally:
        holder.close()
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, ActivityError):
            await asyncio.wait_for(task, STATE_DEADLINE_S)  # kopf's stop can take half a minute when loaded
        logging_put_back.close()


async def test_the_operator_makes_the_hubs_streams_and_buckets_at_start_and_keeps_them_on_a_restart(
    start_operator: Starter, nats_floor: BackgroundFloor
) -> None:
    """On Kubernetes nothing else makes them: without them the Floor's intake, the stations' mirrors
    and the Business feed have nothing to read. The floor fixture made them: take them away first."""
    made = [
        subjects.LEDGER_STREAM,
        hub_roles.PUBLISHED_STREAM,
        hub_roles.BUSINESS_FEED_STREAM,
        f"KV_{subjects.CONTRACTS_BUCKET}",
        f"KV_{subjects.STATION_STATUS_BUCKET}",
        f"KV_{records.RECORDS_BUCKET}",
        f"KV_{approval.BUCKET}",
    ]
    hub = await nats.connect(nats_floor.hub_url)
    js = hub.jetstream()
    try:
        for stream in made:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_stream(stream)
        api = await start_operator()
        assert {stream: (await js.stream_info(stream)).config.name for stream in made} == {s: s for s in made}
        assert (await js.stream_info(hub_roles.BUSINESS_FEED_STREAM)).config.mirror is not None
        await js.publish(subjects.ledger_subject("pt-1"), b"batch", headers={"Nats-Msg-Id": "restart-check"})
        await api.stop()
        await start_operator()  # a restart: what is there stays, nothing is made twice
        assert (await js.stream_info(subjects.LEDGER_STREAM)).state.messages == 1
    finally:
        await hub.close()


async def _equal(value: object, expected: int) -> bool:
    return bool(await value == expected)  # type: ignore[misc]


async def test_readiness_liveness_and_prometheus_metrics(start_operator: Starter) -> None:
    runner = await metrics.serve("127.0.0.1", 0, handlers.ready)
    port = runner.addresses[0][1]
    liveness = f"http://127.0.0.1:{ports.free_port()}/healthz"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                assert response.status == 503  # not started yet
            api = await start_operator(liveness=liveness)
            async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                assert response.status == 200
            async with session.get(liveness) as response:  # kopf's own endpoint, with our probe's answer
                assert response.status == 200
                assert (await response.json())["hub_nats"] is True
            await api.call("POST", STATIONS, station("pt-1", "inspection", "penetrant"))
            await api.call("POST", CONTRACTS, copy.deepcopy(CONTRACT))
            await eventually(lambda: distributed(api, "floor-basics", 1, 1))
            deployed = 'smart_operator_reconciles_total{outcome="deployed",resource="smartcontract"}'

            async def scraped() -> str:
                async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                    return await response.text()

            async def counted() -> bool:
                # The handler patches the status before it returns and is counted: wait for the count.
                return deployed in await scraped()

            await eventually(counted)
            text = await scraped()
        assert deployed in text
        assert "smart_operator_distribution_seconds_count" in text
        # Its own ledger's lag, read at scrape time: no intake runs here, so the entries of the
        # distribution are not receipted.
        lag = metrics.REGISTRY.get_sample_value("smart_operator_ledger_lag_entries")
        assert lag is not None and lag >= 1
        assert "smart_operator_errors_total" in text or "# TYPE smart_operator_errors_total counter" in text
    finally:
        await runner.cleanup()


def _operator_container(objects: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    (deployment,) = [
        o for o in objects if o.get("kind") == "Deployment" and "operator" in o["metadata"]["name"]
    ]
    containers = deployment["spec"]["template"]["spec"]["containers"]
    (container,) = [c for c in containers if c["name"] == "operator"]
    return dict(container)


def _probe_target(container: Mapping[str, Any], probe: str) -> tuple[str, int]:
    """(path, port number) a probe of ``container`` asks, its named port resolved."""
    get = container[probe]["httpGet"]
    port = get["port"]
    if isinstance(port, str):
        (port,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return str(get["path"]), int(port)


def _option(args: Sequence[str], name: str) -> str:
    return str(args[list(args).index(name) + 1])


@pytest.mark.parametrize("where", ["deploy", "chart"])
def test_the_kubelet_probes_ask_the_paths_and_ports_the_operator_serves(where: str) -> None:
    """Liveness asks kopf's endpoint where ``--liveness`` puts it; readiness asks ``/readyz`` on
    ``--metrics-port``, where :mod:`smart.operator.metrics` serves it (the test above reads both)."""
    if where == "deploy":
        text = (REPO / "deploy" / "operator.yaml").read_text()
        container = _operator_container(d for d in yaml.safe_load_all(text) if d)
    else:
        container = _operator_container(render())
    args = [str(a) for a in container["args"]]
    liveness = urllib.parse.urlsplit(_option(args, "--liveness"))
    assert _probe_target(container, "livenessProbe") == (liveness.path, liveness.port)
    served = {resource.canonical for resource in metrics.app(lambda: True).router.resources()}
    path, port = _probe_target(container, "readinessProbe")
    assert path in served and path == "/readyz"
    assert port == int(_option(args, "--metrics-port"))
