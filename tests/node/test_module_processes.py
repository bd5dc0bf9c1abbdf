"""Every module as a process of its own, as the DaemonSets run them, decides exactly as in-process.

The station's leaf and hub are real; the agent (``StationRuntime`` hosting no
module, as the agent's pod runs it) serves the ports; each module the
penetrant contract needs runs as ``smart module run <module> --station pt-1``
in a separate process. A penetrant job walks badge → scan → gate → steps →
release → hand-off through them, and every decision any module took is on
the node ledger, written by the agent alone. The same walk runs in-process
for comparison.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NatsClient

from smart.contracts import facts as f
from smart.keys import KeyStore
from smart.modules import framework
from smart.node import records
from smart.node.kiosk.app import Kiosk
from smart.node.station import StationRuntime
from smart.runtime.background import BackgroundFloor
from smart.testing.patience import STATE_DEADLINE_S
from tests.node.conftest import Hub, agent_for, eventually
from tests.node.test_job_walkthrough import (
    AT,
    PENETRANT_SHOP,
    PENETRANT_STEPS,
    Bench,
    at,
    deploy,
    entries,
    publish,
    reading,
    walk_penetrant_to_the_gate,
)

#: A module process imports the whole package on a busy machine: minutes, not seconds, to answer.
STARTUP_S = 240.0


def module_process(module: str, leaf_url: str, state_dir: Path, log_dir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SMART_STATE_DIR": str(state_dir), "SMART_LOG_LEVEL": "INFO"}
    log = open(log_dir / f"{module}.log", "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "smart", "module", "run", module, "--station", "pt-1", "--leaf-url", leaf_url],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


async def answers(client: NatsClient, module: str) -> bool:
    """The module's process is subscribed: a request it cannot read gets its error (nothing recorded)."""
    try:
        reply = await client.request(framework.subject("pt-1", module, "probe"), b"{}", timeout=1)
    except Exception:
        return False
    return "error" in json.loads(reply.data)


@contextlib.asynccontextmanager
async def station(
    floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path, *, own_processes: bool
) -> AsyncIterator[tuple[Bench, dict[str, subprocess.Popen[bytes]]]]:
    await records.ensure_records_bucket(hub.connection.jetstream())
    await deploy(hub, "penetrant")
    count = await publish(hub, "pt-1", PENETRANT_SHOP)
    runtime = StationRuntime(
        agent_for(floor, "pt-1", keys, tmp_path), hosted=frozenset() if own_processes else None
    )
    await runtime.start()
    leaf_url = floor.floor.leaves["pt-1"].url
    client = await nats.connect(leaf_url)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        await eventually(lambda: "penetrant" in runtime.agent.enforcer.revisions, what="penetrant active")
        await eventually(lambda: runtime.serving(), what="the agent serving its ports", deadline_s=60)
        await eventually(
            lambda: len(entries(runtime, "record.received")) >= count, what="hub records mirrored"
        )
        wanted = runtime.wanted_modules()
        if own_processes:
            assert runtime.modules == {}, "the agent hosts no module"
            logs = tmp_path / "module-logs"
            logs.mkdir()
            for module in sorted(wanted):
                processes[module] = module_process(module, leaf_url, tmp_path / "module-state", logs)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + STARTUP_S
            waiting = set(wanted)
            while waiting and loop.time() < deadline:
                for module in sorted(waiting):
                    assert processes[module].poll() is None, (logs / f"{module}.log").read_text()
                    if await answers(client, module):
                        waiting.discard(module)
                await asyncio.sleep(0.2)
            assert not waiting, f"module processes not answering: {sorted(waiting)}"
        else:
            assert set(runtime.modules) == wanted
        yield Bench(runtime, client, hub), processes
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        await client.close()
        await runtime.stop()


async def walk(pt: Bench) -> None:
    """A penetrant job from the morning checks to its hand-off; every reply's decision on the ledger."""
    uva = await pt.check(
        "uv-a-intensity",
        {"uv-a-intensity": reading(1180, "µW/cm²"), "ambient-white-light": reading(1.5, "fc")},
    )
    assert uva["outcome"] == "allow", uva
    assert (await pt.check("tam-panel"))["outcome"] == "allow"
    gate = await walk_penetrant_to_the_gate(pt)
    assert gate["allowed"] and gate["state"] == "gated", gate["reasons"]
    assert gate["light"] == "green"
    replies = [gate]
    for minutes, step in enumerate(PENETRANT_STEPS, start=3):
        done = await pt.job("step", at=at(minutes * 15), **step)
        assert done["allowed"], (step, done["reasons"])
        replies.append(done)
    released = await pt.job("release", signer="op-7", at=at(200))
    assert released["allowed"] and released["state"] == "released", released["reasons"]
    handed = await pt.job("handoff", at=at(201))
    assert handed["state"] == "handed-off", handed
    replies += [released, handed]

    assert pt.runtime.agent.ledger is not None
    log = pt.runtime.agent.ledger
    for reply in replies:  # each decision the job machine was answered with is durable on the ledger
        for decided in reply["decisions"]:
            (entry,) = log.entries(decided["entry"], decided["entry"] + 1)
            assert entry.kind == "module.decision" and entry.data["module"] == decided["module"]
    (handoff,) = pt.entries("job.handoff")
    assert handed["handoff"]["entry"] == handoff.node_seq and handoff.data["record"]["signed_by"] == "op-7"
    decisions = pt.entries("module.decision")
    assert {e.data["module"] for e in decisions} >= {
        "gatekeeper",
        "maintenance",
        "safety",
        "standards",
        "inventory",
        "qa",
        "guardian",
        "compliance",
        "handoff",
    }
    revision = pt.runtime.agent.enforcer.revisions["penetrant"]
    assert all(e.contract == f"penetrant@{revision}" for e in decisions)
    assert pt.denials() == {}
    job = pt.runtime.facts().jobs["J-1"]
    assert job.steps == tuple(step["step"] for step in PENETRANT_STEPS) and job.signed_by == "op-7"
    assert log.verify() == []  # one writer: the chain is whole


async def kiosk_shows_an_alert_raised_by_alert_broadcast(pt: Bench, kiosk: Kiosk) -> None:
    """The kiosk's alert panel holds an alert AlertBroadcast raised, wherever AlertBroadcast runs."""
    event = f.Event(action="operate", at=AT, station="pt-1", person="op-7")
    raised = await pt.module(
        "alert-broadcast",
        "raise",
        event,
        {"severity": "critical", "source": "safety", "message": "fume extraction stopped", "key": "fume"},
    )
    assert raised["outcome"] == "allow", raised

    def shown() -> list[str]:
        board = kiosk.board() or {}
        return [alert["message"] for alert in board.get("alerts", ())]

    await eventually(lambda: "fume extraction stopped" in shown(), what="the alert on the kiosk's board")
    assert kiosk.banner()["light"] == "red"


async def test_a_penetrant_job_walks_through_every_module_in_a_process_of_its_own(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with station(nats_floor, hub, keys, tmp_path, own_processes=True) as (pt, processes):
        assert set(processes) >= {"gatekeeper", "guardian", "qa", "handoff", "alert-broadcast"}
        kiosk = Kiosk(pt.runtime)
        assert pt.runtime.agent.connection is not None
        await kiosk.follow_alerts(pt.runtime.agent.connection)
        await walk(pt)
        await kiosk_shows_an_alert_raised_by_alert_broadcast(pt, kiosk)
        assert all(p.poll() is None for p in processes.values()), "every module process still runs"


async def test_the_same_penetrant_job_walks_through_the_modules_in_process(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    async with station(nats_floor, hub, keys, tmp_path, own_processes=False) as (pt, processes):
        assert processes == {}
        await walk(pt)
        await kiosk_shows_an_alert_raised_by_alert_broadcast(pt, Kiosk(pt.runtime))


async def test_a_module_process_whose_agent_cannot_record_answers_an_error_not_a_decision(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    """With the agent gone, a module's decision cannot be made durable: the asker gets an error."""
    from smart.node.module_run import ModuleProcess

    leaf_url = nats_floor.floor.leaves["pt-1"].url
    async with station(nats_floor, hub, keys, tmp_path, own_processes=False) as (pt, _):
        # A generous wait for the agent's answer (recording is slow on a busy machine): the refusal
        # below is the leaf's "no responders", at once, not a timeout.
        module = ModuleProcess(
            "standards", station_id="pt-1", leaf_url=leaf_url, data_dir=tmp_path, timeout_s=STATE_DEADLINE_S
        )
        await module.start()

        async def ask(event: f.Event) -> dict[str, Any]:
            subject = framework.subject("pt-1", "standards", "start")
            request = json.dumps({"event": records.plain(event), "body": {}}).encode()
            reply = await pt.client.request(subject, request, timeout=STATE_DEADLINE_S)
            answer: dict[str, Any] = json.loads(reply.data)
            return answer

        try:
            await pt.runtime._stop_module("standards")  # only the process answers standards now
            event = f.Event(action="operate", at=AT, station="pt-1", person="op-7")
            allowed = await ask(event)
            assert "outcome" in allowed and allowed["entry"] >= 0, allowed  # recorded by the agent
            await pt.runtime._subscriptions.pop("ports").unsubscribe()  # the agent stops serving its ports
            assert pt.runtime.agent.connection is not None
            await pt.runtime.agent.connection.flush()  # the leaf has dropped the subscription
            refused = await ask(event)
            assert "did not answer" in refused["error"], refused
        finally:
            await module.stop()


#: What a module process has no use for: the hub's database drivers, the web stack, the cluster client,
#: the agent and the job machine, the hub (a Pi runs fourteen of these processes in its memory).
NOT_IN_A_MODULE_PROCESS = (
    "psycopg",
    "sqlalchemy",
    "fastapi",
    "starlette",
    "uvicorn",
    "kubernetes",
    "kopf",
    "joserfc",
    "smart.hub",
    "smart.runtime",
    "smart.node.agent",
    "smart.node.job",
    "smart.node.station",
    "smart.ledger.hub_store",
)


def test_a_module_process_loads_only_what_a_module_needs() -> None:
    """``smart module run`` with every module class loaded imports none of the hub's libraries."""
    probe = (
        "import sys\n"
        "from smart.node import module_run\n"
        "from smart import logs, settings\n"
        "manifests = module_run.framework.load_manifests()\n"
        "for name in manifests: module_run.runnable(name, manifests)\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    ran = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    loaded = set(ran.stdout.split())
    wrong = sorted(n for n in NOT_IN_A_MODULE_PROCESS if any(m == n or m.startswith(f"{n}.") for m in loaded))
    assert wrong == [], f"a module process imports {wrong}"
    assert {"smart.modules.gatekeeper.module", "nats"} <= loaded  # the probe loaded modules


pytestmark = pytest.mark.timeout(900)
