"""Start-up: no hub key, no start; a failing start-up leaks no hub connection; readiness and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from pathlib import Path

import aiohttp
import kmock
import kopf
import pytest
from kopf._core.engines.activities import ActivityError

from smart import ledger
from smart.keys import KeyStore
from smart.operator import handlers, metrics
from smart.runtime.background import BackgroundFloor
from tests.operator.conftest import CONTRACTS, STATIONS, Starter, declare, eventually
from tests.operator.test_operator import CONTRACT, distributed, station


def _environment(monkeypatch: pytest.MonkeyPatch, kube: str, nats_url: str, tmp_path: Path) -> Path:
    monkeypatch.setenv("SMART_KUBE_SERVER", kube)
    monkeypatch.setenv("SMART_NATS_URL", nats_url)
    monkeypatch.setenv("SMART_STATE_DIR", str(tmp_path / "operator"))
    monkeypatch.setenv("SMART_KEYS_DIR", str(tmp_path / "keys"))
    return tmp_path / "keys"


def _kopf(stop: asyncio.Event) -> asyncio.Task[None]:
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
        await asyncio.wait_for(_kopf(asyncio.Event()), 60)
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
    task = _kopf(stop)
    monitor = f"http://127.0.0.1:{nats_floor.floor.hub.monitor_port}/connz?limit=1024"  # type: ignore[union-attr]

    async def operators_connected() -> int:
        async with aiohttp.ClientSession() as session, session.get(monitor) as response:
            connz = await response.json()
        return sum(1 for c in connz.get("connections") or [] if c.get("name") == "smart-operator")

    async def retried_three_times() -> bool:
        failures = [r for r in caplog.records if "startup" in r.getMessage() and "failed" in r.getMessage()]
        return len(failures) >= 3

    try:
        await eventually(retried_three_times, patience=120)
        assert await operators_connected() == 0
        holder.close()  # the other writer goes: the next attempt starts, with one connection
        assert await eventually(lambda: _equal(operators_connected(), 1), patience=60)
    finally:
        holder.close()
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, ActivityError):
            await asyncio.wait_for(task, 30)


async def _equal(value: object, expected: int) -> bool:
    return bool(await value == expected)  # type: ignore[misc]


async def test_readiness_and_prometheus_metrics(start_operator: Starter) -> None:
    runner = await metrics.serve("127.0.0.1", 0, handlers.ready)
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                assert response.status == 503  # not started yet
            api = await start_operator()
            async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                assert response.status == 200
            await api.call("POST", STATIONS, station("pt-1", "inspection", "penetrant"))
            await api.call("POST", CONTRACTS, copy.deepcopy(CONTRACT))
            await eventually(lambda: distributed(api, "floor-basics", 1, 1))
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                text = await response.text()
        assert 'smart_operator_reconciles_total{outcome="deployed",resource="smartcontract"}' in text
        assert "smart_operator_distribution_seconds_count" in text
        assert "smart_operator_errors_total" in text or "# TYPE smart_operator_errors_total counter" in text
    finally:
        await runner.cleanup()
