"""A station's agent killed mid-append with the hub down: it comes back whole and ships everything once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime

import httpx
import nats
from nats.aio.client import Client as NatsClient

from smart.bus import subjects
from smart.hub.intake import LedgerIntake, register_stations
from smart.keys import KeyStore
from smart.ledger import verify as ledger_verify
from smart.ledger.hub_store import HubLog
from smart.runtime.background import BackgroundFloor
from smart.testing.plugin import FloorFactory
from tests.node.conftest import Hub, LedgerDatabase, eventually, signed_envelope

STATION = "pt-1"


def _start_agent(floor: BackgroundFloor) -> subprocess.Popen[bytes]:
    env = {**os.environ, **floor.settings.environment(), "SMART_SETTINGS_FILE": "/nonexistent.toml"}
    return subprocess.Popen(
        [sys.executable, "-m", "smart.node", "--station", STATION],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _status(floor: BackgroundFloor) -> dict[str, object] | None:
    try:
        response = httpx.get(
            f"http://127.0.0.1:{floor.settings.station_web_port(STATION)}/api/status", timeout=1
        )
    except httpx.HTTPError:
        return None
    result: dict[str, object] = response.json()
    return result


async def _decide(leaf: NatsClient, n: int) -> dict[str, object]:
    event = {"action": "step", "at": datetime.now(UTC).isoformat(), "station": STATION, "job": f"J-{n}"}
    reply = await leaf.request(subjects.decide(STATION), json.dumps({"event": event}).encode(), timeout=2)
    answer: dict[str, object] = json.loads(reply.data)
    return answer


async def test_agent_killed_mid_append_with_hub_down_keeps_its_chain_and_ships_it_once(
    floor_factory: FloorFactory, ledger_db: LedgerDatabase
) -> None:
    floor = floor_factory(stations=1)
    keys = KeyStore(floor.settings.key_directory)
    assert floor.floor.hub is not None
    hub_connection = await nats.connect(floor.hub_url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    intake_log = HubLog.connect(
        ledger_db.app_url, key=keys.signing_key("hub"), admin=keys.signing_key("ledger-admin")
    )
    register_stations(intake_log, keys, [STATION])
    intake = LedgerIntake(hub_connection, intake_log, stations=[STATION])
    intake_task = asyncio.create_task(intake.run())
    reader = HubLog.connect(ledger_db.app_url, admin=keys.signing_key("ledger-admin"))
    leaf = await nats.connect(floor.floor.leaves[STATION].url, max_reconnect_attempts=-1)
    agent = _start_agent(floor)
    try:
        await Hub(hub_connection, keys).put_contract(
            STATION, "penetrant", signed_envelope("penetrant", STATION, keys)
        )

        async def active_revision() -> str | None:
            with contextlib.suppress(Exception):
                answer = await _decide(leaf, -1)
                revisions = answer["decision"]["revisions"]  # type: ignore[index]
                return str(revisions.get("penetrant")) if revisions else None
            return None

        revision = None
        for _ in range(2400):  # up to 2 minutes: the agent is a process of its own on a busy machine
            revision = await active_revision()
            if revision:
                break
            await asyncio.sleep(0.05)
        assert revision, "the agent never activated the contract"

        floor.run(floor.floor.supervisor.stop_child("hub"))
        acknowledged: list[int] = []

        async def append_until_killed(lane: int) -> None:
            n = 0
            while True:
                try:
                    answer = await _decide(leaf, lane * 100_000 + n)
                except Exception:
                    return  # the agent is gone
                acknowledged.append(int(str(answer["entry"])))
                n += 1
                if len(acknowledged) == 300:
                    os.kill(agent.pid, signal.SIGKILL)  # while other requests are being appended

        await asyncio.gather(*(append_until_killed(lane) for lane in range(4)))
        agent.wait(10)
        assert len(acknowledged) >= 300

        agent = _start_agent(floor)  # the hub is still down
        after = None
        for _ in range(2400):  # up to 2 minutes: the agent is a process of its own on a busy machine
            after = await active_revision()
            if after:
                break
            await asyncio.sleep(0.05)
        assert after == revision, "the restarted agent must enforce the same revision from its store"
        status = _status(floor)
        assert status is not None
        size = int(status["ledger_size"])  # type: ignore[call-overload]
        assert max(acknowledged) < size  # every acknowledged entry survived the kill

        floor.run(floor.floor.supervisor.start_child("hub"))
        await eventually(
            lambda: reader.node_size(STATION) >= size,
            what="everything shipped",
            state=lambda: (reader.node_size(STATION), size, _status(floor)),
        )
        entries = [e for e in reader.entries(0) if e.node == STATION]
        assert [e.node_seq for e in entries] == list(range(len(entries)))  # no gap, no duplicate
        assert {e.node_seq for e in entries} >= set(acknowledged)
        assert ledger_verify.verify_hub(
            reader.conn, log_key=keys.verifying_key("hub"), admin=keys.verifying_key("ledger-admin")
        ).ok
    finally:
        agent.kill()
        agent.wait(10)
        intake_task.cancel()
        intake.close()
        await leaf.close()
        await hub_connection.close()
        reader.close()
        intake_log.close()
