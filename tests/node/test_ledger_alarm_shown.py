"""A fork the hub refuses is seen where people look: the kiosk, the stack light, the hub's status.

A real fork on a live floor: the station's SD card is cloned onto a second Pi, which writes its
own next entry and ships it first (signed with the station's key, as the clone holds it); the
station's own next entry then conflicts with what the hub holds, and the hub refuses it with a
fork alarm. The station's ledger alarm goes through its alert board (the AlertBroadcast module's
``raise``): the kiosk's alert panel shows it and the tower, on gpiozero's MockFactory pins,
turns from green to amber. Under ``smart up`` (the agent in a process of its own, as on a Pi) the
hub's status page and ``/api/status`` show the station's ledger blocked, with the fork's reason.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
from fastapi.testclient import TestClient
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from smart import ledger
from smart.bus import receipts, subjects
from smart.contracts import facts as f
from smart.hub.intake import LedgerIntake, register_stations
from smart.hub.web.app import create_app
from smart.keys import KeyStore
from smart.ledger.hub_store import HubLog
from smart.modules.safety import gpio, pins
from smart.node.kiosk.app import Kiosk
from smart.node.run import follow_alerts
from smart.node.web import create_station_app
from smart.runtime.background import BackgroundFloor
from smart.runtime.floor import Floor
from smart.testing.patience import STATE_DEADLINE_S
from smart.testing.plugin import make_settings
from tests.node.conftest import Hub, LedgerDatabase, eventually
from tests.node.test_job_walkthrough import AT, PENETRANT_SHOP, bench

STATION = "pt-1"
PIN_MAP = pins.PinMap(green=5, amber=6, red=13, buzzer=19, relay=26, estop=17)


async def ship_from_a_clone(hub: NatsClient, ledger_dir: Path, keys: KeyStore, tmp_path: Path) -> int:
    """Clone the station's node log (its SD card copied onto another Pi), write one entry there
    and ship it to the hub as the station; once the hub holds it, return how many entries it holds.

    The station's own next entry then has the same node_seq and other bytes: a fork.
    """
    clone_dir = tmp_path / "cloned-pi"
    clone_dir.mkdir()
    name = f"{STATION}.sqlite3"
    with sqlite3.connect(ledger_dir / name) as source, sqlite3.connect(clone_dir / name) as copy:
        source.backup(copy)  # a consistent copy of the live WAL database
    answers: asyncio.Queue[receipts.Receipt] = asyncio.Queue()

    async def on_receipt(message: Msg) -> None:
        await answers.put(receipts.Receipt.from_bytes(message.data))

    listening = await hub.subscribe(receipts.receipt_subject(STATION), cb=on_receipt)
    try:
        with ledger.NodeLog.open(clone_dir, node=STATION, keys=keys) as clone:
            seq = clone.size()
            clone.append(kind="gate.decision", subject="J-clone", data={"outcome": "allow"}, actor=STATION)
            shipment = clone.shipment(seq, limit=1, max_bytes=512 * 1024)
        assert shipment is not None
        await hub.jetstream().publish(
            subjects.ledger_subject(STATION),
            shipment.payload,
            headers={"Nats-Msg-Id": f"{shipment.message_id}#clone"},
        )
        while True:  # the intake's word on it (as the station hears it too)
            receipt = await asyncio.wait_for(answers.get(), STATE_DEADLINE_S)
            if receipt.hub_has > seq:
                assert receipt.status == "accepted", receipt
                return receipt.hub_has
    finally:
        await listening.unsubscribe()


def _lamps(hardware: gpio.StationGpio) -> Callable[[], list[str]]:
    colours: tuple[pins.Role, ...] = ("green", "amber", "red")

    def lit() -> list[str]:
        return [c for c in colours if bool(hardware.factory.pin(PIN_MAP.pin(c)).state)]

    return lit


async def test_a_fork_reaches_the_kiosks_alert_panel_through_the_alert_board_and_turns_the_tower_amber(
    nats_floor: BackgroundFloor, hub: Hub, keys: KeyStore, tmp_path: Path
) -> None:
    # A lease far longer than the test: the relay stays energised, so only the board can dim green.
    hardware = gpio.simulated(PIN_MAP, lease_s=3600, on_estop=lambda pressed: None)
    lamps = _lamps(hardware)
    try:
        async with bench(nats_floor, hub, keys, tmp_path, STATION, "penetrant", PENETRANT_SHOP) as pt:
            agent = pt.runtime.agent
            assert agent.connection is not None and agent.ledger is not None
            await follow_alerts(agent.connection, STATION, hardware)
            kiosk = Kiosk(pt.runtime)
            event = f.Event(action="alert", at=AT, station=STATION, person="op-7")
            await pt.module("alert-broadcast", "gate", event, {"outcome": "allow"})
            hardware.interlock.decide("allow", job="J-1", revision=agent.enforcer.revisions["penetrant"])
            await eventually(
                lambda: lamps() == ["green"], what="green: the station allowed to work", state=kiosk.board
            )
            await eventually(
                lambda: agent.status()["ledger_lag"] == 0, what="the station's ledger all at the hub"
            )

            held = await ship_from_a_clone(hub.connection, agent.config.data_dir / "ledger", keys, tmp_path)
            assert agent.ledger.size() == held - 1  # the station has not written its own entry yet
            agent.record(kind="gate.decision", subject="J-own", data={"outcome": "allow"}, actor=STATION)

            await eventually(lambda: lamps() == ["amber"], what="amber: the ledger alarm on the tower")
            board = kiosk.board()
            assert board is not None
            (alert,) = [a for a in board["alerts"] if a["id"] == "ledger-shipping"]
            assert (alert["severity"], alert["source"]) == ("warning", "ledger")
            assert "fork" in alert["message"] and "alarm #1" in alert["message"], alert
            app = create_station_app(agent, kiosk)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://kiosk"
            ) as client:
                banner = (await client.get("/kiosk/api/banner")).json()
            assert banner["light"] == "amber"
            raised = [e for e in agent.ledger.entries(held - 1) if e.kind == "alert.raised"]
            assert [e.subject for e in raised] == ["ledger-shipping"]  # by the board, on the ledger
            assert "ledger.shipping_blocked" in [e.kind for e in agent.ledger.entries(held - 1)]
    finally:
        hardware.close()


async def test_under_smart_up_the_hubs_status_page_and_api_show_a_forked_station_blocked(
    state_root: Path, ledger_db: LedgerDatabase, tmp_path: Path
) -> None:
    settings = make_settings(state_root / "up", stations=1, heartbeat_s=0.2)
    floor = Floor(settings, postgres=False, node_agents=True)  # the station's agent as `smart node run`
    await floor.start()
    intake: LedgerIntake | None = None
    task: asyncio.Task[None] | None = None
    opened: list[NatsClient] = []
    assert floor.hub is not None
    connection = await nats.connect(
        floor.hub.url, **floor.settings.hub_nats_signin(), max_reconnect_attempts=-1, reconnect_time_wait=0.2
    )
    keys = KeyStore(settings.key_directory)
    intake_log = HubLog.connect(
        ledger_db.app_url, key=keys.signing_key("hub"), admin=keys.signing_key("ledger-admin")
    )
    try:
        register_stations(intake_log, keys, [STATION])
        intake = LedgerIntake(connection, intake_log, stations=[STATION])
        task = asyncio.create_task(intake.run())
        leaf = await nats.connect(floor.leaves[STATION].url)
        opened.append(leaf)

        async def decide(job: str) -> dict[str, Any]:
            request = {
                "event": {
                    "action": "step",
                    "at": datetime.now(UTC).isoformat(),
                    "station": STATION,
                    "job": job,
                }
            }
            reply = await leaf.request(subjects.decide(STATION), json.dumps(request).encode(), timeout=10)
            answer: dict[str, Any] = json.loads(reply.data)
            return answer

        def heard() -> dict[str, Any]:
            last = floor.heartbeats.get(STATION)
            return last[1].model_dump() if last is not None else {}

        await decide("J-1")
        await eventually(
            lambda: heard().get("ledger_lag") == 0 and (heard().get("ledger_size") or 0) > 0,
            what="the station's ledger all at the hub",
            state=heard,
        )
        ledger_dir = settings.station_data_dir(STATION) / "ledger"
        held = await ship_from_a_clone(connection, ledger_dir, keys, tmp_path)
        assert (await decide("J-own"))["entry"] == held - 1  # its own entry where the clone's is

        async def shown() -> dict[str, Any] | None:
            status = await floor.status()
            (agent,) = [s for s in status.services if s.name == f"node-{STATION}"]
            return agent.model_dump() if agent.ledger_blocked else None

        found: dict[str, Any] | None = None
        deadline = asyncio.get_running_loop().time() + STATE_DEADLINE_S
        while found is None and asyncio.get_running_loop().time() < deadline:
            found = await shown()
            await asyncio.sleep(0.1)
        assert found is not None, "the station's ledger never shown blocked"

        with TestClient(create_app(floor.status)) as client:
            page = client.get("/admin/status").text
            api = client.get("/api/status").json()
        row = page[page.index(f'data-service="node-{STATION}"') :]
        row = row[: row.index("</tr>")]
        # The first refusal names the fork alarm; later batches are refused as blocked by it: either
        # way the row says blocked, which alarm holds it and that it is a fork.
        assert ">blocked</span>" in row and "ledger blocked: " in row, row
        detail = row[row.index('<td class="detail">') :]
        assert "alarm #1" in detail and "fork" in detail, detail
        (station,) = [s for s in api["services"] if s["name"] == f"node-{STATION}"]
        assert station["healthy"] is False and api["healthy"] is False
        assert "alarm #1" in station["ledger_blocked"] and "fork" in station["ledger_blocked"]
        assert station["detail"] == f"ledger blocked: {station['ledger_blocked']}"
        (alarm,) = intake_log.ledger_alarms(open_only=True)
        assert (alarm.node, alarm.kind) == (STATION, "fork")
        assert (await decide("J-after"))["decision"]["outcome"] in ("allow", "deny")  # still enforcing
    finally:
        for nats_client in opened:
            await nats_client.close()
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if intake is not None:
            intake.close()
        intake_log.close()
        await connection.close()
        await floor.stop()
