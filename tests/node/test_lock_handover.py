"""Two agents of one station on one node: exactly one enforces at a time, and the other takes over.

A station rebooted while the hub was away runs its systemd fallback (``smart node run``, every
module in-process); when the hub comes back the station's pods start too (the agent's pod with
``--modules none``). The node log's writer lock decides: the second waits in standby with no
connection to the leaf, and takes over the moment the first is gone (here it is killed, as a
crash or an OOM kill would end it), continuing the same chain. The leaf's own monitoring counts
the agents connected to it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import nats

from smart.keys import KeyStore
from smart.ledger import NodeLogReader
from smart.modules import framework
from smart.node import records
from smart.runtime.background import BackgroundFloor
from tests.node.conftest import Hub
from tests.node.test_job_walkthrough import deploy

DEADLINE_S = 240.0


def start_agent(env: dict[str, str], log_path: Path, *modules: str) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "smart.node", "--station", "pt-1", *modules],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def agents_on_leaf(monitor: str) -> int:
    async with httpx.AsyncClient(timeout=5) as client:
        found = (await client.get(f"{monitor}/connz")).json().get("connections") or []
    return sum(1 for c in found if c.get("name") == "smart-node-pt-1")


async def until(what: str, check: object) -> None:
    assert callable(check)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while loop.time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"{what} not reached within {DEADLINE_S} s")


async def test_the_systemd_agent_and_the_pod_agent_hand_over_the_station_one_at_a_time(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    settings = nats_floor.floor.settings
    env = {**os.environ, **settings.environment(), "SMART_KEYS_DIR": str(keys.directory)}
    await records.ensure_records_bucket(hub.connection.jetstream())
    await deploy(hub, "penetrant")
    leaf = nats_floor.floor.leaves["pt-1"]
    monitor = f"http://{leaf.host}:{leaf.monitor_port}"
    client = await nats.connect(leaf.url)
    ledger_file = settings.station_data_dir("pt-1") / "ledger" / "pt-1.sqlite3"

    async def answering() -> bool:
        try:
            reply = await client.request(
                framework.subject("pt-1", "policy-node-storage", "active"),
                json.dumps(
                    {"event": {"action": "query", "at": "2026-06-01T12:00:00+00:00", "station": "pt-1"}}
                ).encode(),
                timeout=2,
            )
        except Exception:
            return False
        return bool(json.loads(reply.data).get("effects", {}).get("active"))

    systemd = start_agent(env, tmp_path / "systemd.log")
    pod: subprocess.Popen[bytes] | None = None
    try:
        await until("the systemd agent enforcing", answering)
        pod = start_agent(env, tmp_path / "pod.log", "--modules", "none")
        await until("the pod agent in standby", lambda: _logged(tmp_path / "pod.log", "station.standby"))
        assert pod.poll() is None and await agents_on_leaf(monitor) == 1  # one enforces, one waits
        with NodeLogReader(ledger_file) as reader:
            before = len(reader.entries(0, 10**9))

        systemd.send_signal(signal.SIGKILL)  # a crash: no clean stop, the kernel drops the lock
        systemd.wait(timeout=30)
        await until("the pod agent took over", lambda: _logged(tmp_path / "pod.log", "station.took_over"))
        await until("one agent on the leaf again", lambda: _count_is(monitor, 1))
        assert pod.poll() is None
        # it enforces: a module's process asks the ports of the agent that now holds the station
        from smart.node.module_run import ModuleProcess

        module = ModuleProcess(
            "policy-node-storage", station_id="pt-1", leaf_url=leaf.url, data_dir=tmp_path / "m", timeout_s=5
        )
        await module.start()
        try:
            await until("the station answering again", answering)
        finally:
            await module.stop()
        with NodeLogReader(ledger_file) as reader:
            after = reader.entries(0, 10**9)
        assert len(after) > before  # the same chain, continued by the new writer
        assert [e.node_seq for e in after] == list(range(len(after)))
    finally:
        await client.close()
        for process in (systemd, pod):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()


async def _logged(path: Path, event: str) -> bool:
    return event in await asyncio.to_thread(path.read_text, errors="replace")


async def _count_is(monitor: str, count: int) -> bool:
    return await agents_on_leaf(monitor) == count
