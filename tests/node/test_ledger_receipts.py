"""A station's shipping never stalls in silence: the hub's receipt moves its cursor, refusals come back.

Real NATS (hub and the station's leaf), real PostgreSQL, the real intake and agent. The station's
SQLite files are edited by the test as a person with a shell on the Pi would.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import psycopg
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql
from psycopg.conninfo import make_conninfo

from smart.bus import subjects
from smart.contracts import facts as f
from smart.hub.gathering import HubNodeGathering
from smart.hub.intake import LedgerIntake, register_stations
from smart.hub.streams import ensure_hub_streams
from smart.hub.web.status import ledger_trouble
from smart.keys import KeyStore
from smart.ledger import NodeLog, hub_store
from smart.ledger.hub_store import HubLog
from smart.node.agent import NodeAgent
from smart.runtime.background import BackgroundFloor
from smart.testing.cli import invoke
from smart.testing.plugin import FloorFactory, FreshDatabase
from tests.node.conftest import LedgerDatabase, agent_for, eventually, now

STATION = "pt-1"


@dataclass
class Shop:
    floor: BackgroundFloor
    hub: HubLog  # the test's own reading connection
    intake: LedgerIntake
    keys: KeyStore
    data: Path
    alerts: list[dict[str, Any]]
    leaf: NatsClient

    def agent(self) -> NodeAgent:
        return agent_for(self.floor, STATION, self.keys, self.data)

    def ledger_file(self) -> Path:
        return self.data / STATION / "ledger" / f"{STATION}.sqlite3"


@pytest.fixture
async def shop(
    floor_factory: FloorFactory, ledger_db: LedgerDatabase, keys: KeyStore, tmp_path: Path
) -> AsyncIterator[Shop]:
    floor = floor_factory(stations=1)
    assert floor.floor.hub is not None
    connection = await nats.connect(
        floor.hub_url,
        **floor.settings.hub_nats_signin(),
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.2,
    )
    await ensure_hub_streams(connection.jetstream())
    intake_log = HubLog.connect(
        ledger_db.app_url, key=keys.signing_key("hub"), admin=keys.signing_key("ledger-admin")
    )
    register_stations(intake_log, keys, [STATION])
    intake = LedgerIntake(connection, intake_log, stations=[STATION])
    task = asyncio.create_task(intake.run())
    reader = HubLog.connect(ledger_db.app_url, admin=keys.signing_key("ledger-admin").verifying)
    leaf = await nats.connect(floor.floor.leaves[STATION].url)
    alerts: list[dict[str, Any]] = []

    async def on_alert(message: Msg) -> None:
        alerts.append(json.loads(message.data))

    await leaf.subscribe(subjects.alert(STATION), cb=on_alert)
    try:
        yield Shop(floor, reader, intake, keys, tmp_path / "stations", alerts, leaf)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await leaf.close()
        await connection.close()
        intake.close()
        intake_log.close()
        reader.close()


def _work(agent: NodeAgent, count: int) -> None:
    for n in range(count):
        agent.decide(f.Event(action="step", at=now(), station=STATION, job=f"J-{n}"), f.Facts())


async def _all_taken(shop: Shop, agent: NodeAgent) -> None:
    own = agent.ledger
    assert own is not None
    await eventually(
        lambda: shop.hub.node_size(STATION) == own.size() and agent.status()["ledger_lag"] == 0,
        deadline_s=60,
        what="every entry taken by the hub and the station's cursor on it",
        state=lambda: (shop.hub.node_size(STATION), agent.status()),
    )


def _append_raw(path: Path, raw: bytes) -> None:
    """Put ``raw`` after the last entry of the node log at ``path`` (the agent stopped)."""
    with sqlite3.connect(path) as db:
        seq = db.execute("SELECT max(node_seq) FROM ledger_entries").fetchone()[0] + 1
        db.execute(
            "INSERT INTO ledger_entries (node_seq, hash, entry) VALUES (?, ?, ?)",
            (seq, hashlib.sha256(raw).digest(), raw),
        )


def _last(path: Path) -> tuple[int, bytes]:
    with sqlite3.connect(path) as db:
        seq, digest = db.execute(
            "SELECT node_seq, hash FROM ledger_entries ORDER BY node_seq DESC LIMIT 1"
        ).fetchone()
    return int(seq), bytes(digest)


async def test_an_entry_with_a_duplicated_key_is_refused_at_ingest_and_the_station_is_told_and_alerts(
    shop: Shop,
) -> None:
    agent = shop.agent()
    await agent.start()
    _work(agent, 5)
    await _all_taken(shop, agent)
    await agent.stop()

    seq, prev = _last(shop.ledger_file())
    canonical = (
        '{"actor":"pt-1","contract":null,"data":{"outcome":"allow"},"kind":"gate.decision","node":"pt-1",'
        f'"node_seq":{seq + 1},"prev":"{prev.hex()}","subject":"gate","ts":"2026-06-01T12:00:00.000000Z"}}'
    )
    # Read first-wins it says "deny"; read last-wins (as orjson and the hub do) it says "allow".
    twice = canonical.replace(
        '"data":{"outcome":"allow"}', '"data":{"outcome":"deny"},"data":{"outcome":"allow"}'
    )
    _append_raw(shop.ledger_file(), twice.encode())

    agent = shop.agent()
    await agent.start()
    try:
        await eventually(
            lambda: agent.status()["ledger_blocked"] is not None, deadline_s=60, what="the station told"
        )
        reason = agent.status()["ledger_blocked"]
        assert "not RFC 8785 canonical JSON: key 'data' appears twice" in reason
        assert shop.hub.node_size(STATION) == seq + 1  # nothing of it taken
        alarms = shop.hub.ledger_alarms(open_only=True)
        assert [(a.node, a.node_seq, a.kind) for a in alarms] == [(STATION, seq + 1, "refused")]
        assert "appears twice" in alarms[0].detail
        await eventually(
            lambda: any("appears twice" in str(a.get("message")) for a in shop.alerts), what="the alert"
        )
        assert any(a["severity"] == "warning" for a in shop.alerts)  # amber, not red
        assert agent.ledger is not None
        kinds = [e.kind for e in agent.ledger.entries(seq + 2)]
        assert "ledger.shipping_blocked" in kinds
        blocked, _ = ledger_trouble(agent.status())
        assert blocked is not None and "appears twice" in blocked
        # Both /metrics say it: the hub's refusal, its open alarm and the station blocked.
        hub = _samples(await shop.intake.metrics_text())
        assert (
            hub[("smart_hub_ledger_ingest_refusals_total", (("kind", "refused"), ("station", STATION)))] >= 1
        )
        assert hub[("smart_hub_ledger_alarms_raised_total", (("kind", "refused"),))] == 1
        assert hub[("smart_hub_ledger_alarms_open", ())] == 1
        assert hub[("smart_hub_ledger_blocked", (("station", STATION),))] == 1
        station = _samples(agent.metrics.text())
        assert station[("smart_station_ledger_blocked", (("station", STATION),))] == 1
        assert station[("smart_station_ledger_alarms", (("station", STATION),))] >= 1
        assert station[("smart_station_ledger_lag_entries", (("station", STATION),))] >= 1

        before = agent.ledger.size()
        decision = agent.decide(f.Event(action="step", at=now(), station=STATION, job="J-after"), f.Facts())
        assert decision.outcome in ("allow", "deny") and agent.ledger.size() == before + 1  # still enforcing
        assert shop.hub.node_size(STATION) == seq + 1
    finally:
        await agent.stop()


async def test_a_transient_gap_heals_and_a_fork_stays_blocked_until_an_administrator_decides(
    shop: Shop, ledger_db: LedgerDatabase, tmp_path: Path
) -> None:
    agent = shop.agent()
    await agent.start()
    _work(agent, 10)
    await _all_taken(shop, agent)
    await agent.stop()

    # A cursor ahead of the hub (the hub restored from a backup, a receipt misread): the station
    # ships from #26, the hub says it holds 10, the station re-ships from #10 by itself.
    with NodeLog.open(shop.data / STATION / "ledger", node=STATION, keys=shop.keys) as own:
        for n in range(20):
            own.append(kind="gate.decision", subject=f"J-{n}", data={"n": n}, actor=STATION)
    with sqlite3.connect(shop.data / STATION / "store.sqlite3") as store:
        store.execute("UPDATE ship_cursor SET shipped_seq = 25 WHERE node = ?", (STATION,))
    agent = shop.agent()
    await agent.start()
    await _all_taken(shop, agent)
    assert agent.status()["ledger_blocked"] is None
    await agent.stop()

    # The station's log cut back to #20 (edited, or restored from an old copy) and written anew:
    # the hub holds another #20..#29. That is a fork: blocked until an administrator decides.
    with sqlite3.connect(shop.ledger_file()) as db:
        db.execute("DELETE FROM ledger_entries WHERE node_seq >= 20")
        db.execute("DELETE FROM ledger_heads WHERE node_seq >= 20")
    agent = shop.agent()
    await agent.start()
    try:
        _work(agent, 15)
        await eventually(
            lambda: agent.status()["ledger_blocked"] is not None, deadline_s=60, what="the fork seen"
        )
        # The first refusal names the fork alarm; every later batch is refused as blocked by it.
        # Either way the station says which alarm holds it and that it is a fork.
        blocked = agent.status()["ledger_blocked"]
        assert "alarm #1" in blocked and "fork" in blocked, blocked
        await eventually(lambda: any("fork" in str(a.get("message")) for a in shop.alerts), what="alert")
        (alarm,) = shop.hub.ledger_alarms(open_only=True)
        assert (alarm.node, alarm.kind) == (STATION, "fork")
        held = shop.hub.node_size(STATION)
        _work(agent, 3)  # still enforcing and recording; nothing more taken
        await asyncio.sleep(1)
        assert shop.hub.node_size(STATION) == held and agent.status()["ledger_lag"] > 0

        env = {
            "SMART_DATABASE_URL": ledger_db.owner_url,
            "SMART_KEYS_DIR": str(shop.keys.directory),
            "SMART_STATE_DIR": str(tmp_path / "state"),
            "SMART_SETTINGS_FILE": str(tmp_path / "no-settings.toml"),
        }
        listed = invoke("ledger", "alarms", env=env)
        assert (
            listed.exit_code == 0 and f"#{alarm.id}" in listed.stdout and "blocks its ledger" in listed.stdout
        )
        decided = invoke(
            "ledger",
            "alarms",
            "decide",
            str(alarm.id),
            "--decision",
            "station pt-1 log restored from an older copy; re-imaged",
            "--by",
            "admin:a.lee",
            env=env,
        )
        assert decided.exit_code == 0, decided.stdout + decided.stderr
        assert invoke("ledger", "alarms", env=env).stdout.strip() != listed.stdout.strip()
        gathering = HubNodeGathering(tmp_path / "state" / "ledger", shop.intake.hub_log, shop.keys)
        assert [g.node for g in gathering.gather_once()] == ["ledger-admin"]
        (entry,) = [e for e in shop.hub.entries(0) if e.kind == "ledger.alarm_decided"]
        assert entry.actor == "admin:a.lee" and entry.data["id"] == alarm.id
    finally:
        await agent.stop()


async def test_a_hub_restored_from_an_older_backup_is_caught_by_the_witnesses_in_one_round(
    floor_factory: FloorFactory, database: FreshDatabase, keys: KeyStore, tmp_path: Path
) -> None:
    floor = floor_factory(stations=1)
    assert floor.floor.hub is not None
    connection = await nats.connect(
        floor.hub_url,
        **floor.settings.hub_nats_signin(),
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.2,
    )
    await ensure_hub_streams(connection.jetstream())
    password = database.app_password
    hub_store.migrate(database.url, app_password=password)
    admin = keys.signing_key("ledger-admin")

    def app_url(name: str) -> str:
        return make_conninfo(database.url_for(name), user=hub_store.APP_ROLE, password=password)

    async def run_intake(name: str) -> tuple[LedgerIntake, HubLog, asyncio.Task[None]]:
        hub_log = HubLog.connect(app_url(name), key=keys.signing_key("hub"), admin=admin)
        register_stations(hub_log, keys, [STATION])
        intake = LedgerIntake(connection, hub_log, stations=[STATION])
        return intake, hub_log, asyncio.create_task(intake.run())

    async def stop_intake(running: tuple[LedgerIntake, HubLog, asyncio.Task[None]]) -> None:
        intake, hub_log, task = running
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        intake.close()
        hub_log.close()

    agent = agent_for(floor, STATION, keys, tmp_path / "stations")
    await agent.start()
    try:
        running = await run_intake(database.name)
        witness = agent._witness
        assert witness is not None and agent.ledger is not None
        _work(agent, 10)
        size = agent.ledger.size()
        await eventually(
            lambda: witness.latest is not None and witness.latest.size == size, deadline_s=60, what="cosigned"
        )
        await stop_intake(running)
        backup = f"{database.name}_backup"
        with psycopg.connect(database.url_for("postgres"), autocommit=True) as owner:  # the night's backup
            owner.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(backup), sql.Identifier(database.name)
                )
            )

        running = await run_intake(database.name)
        _work(agent, 10)
        size = agent.ledger.size()
        await eventually(
            lambda: witness.latest is not None and witness.latest.size == size, deadline_s=60, what="cosigned"
        )
        cosigned = witness.latest
        assert cosigned is not None
        await stop_intake(running)

        # The hub's database restored from that backup: the witnesses see it at the first round.
        intake, restored, _task = running = await run_intake(backup)
        await eventually(
            lambda: intake.witness_outcomes.get(STATION, "").startswith("refused"),
            deadline_s=60,
            what="the station's answer to the restored hub",
            state=lambda: intake.witness_outcomes,
        )
        assert "smaller than size 20 this witness cosigned" in intake.witness_outcomes[STATION]
        assert "ledger-witness" in agent.ledger_alarms  # the station's side: recorded and alerted
        assert any(e.kind == "ledger.witness_refused" for e in agent.ledger.entries(size))
        (alarm,) = [a for a in restored.ledger_alarms() if a.kind == "witness"]  # the hub's side
        assert alarm.node == "witness-pt-1" and "rolled back" in alarm.detail
        env = {
            "SMART_DATABASE_URL": database.url_for(backup),
            "SMART_KEYS_DIR": str(keys.directory),
            "SMART_STATE_DIR": str(tmp_path / "state"),
            "SMART_SETTINGS_FILE": str(tmp_path / "no-settings.toml"),
        }
        verified = invoke("ledger", "verify", env=env)
        assert verified.exit_code == 1
        assert (
            f"the hub's latest checkpoint (size 10) is older than the checkpoint of size {cosigned.size} "
            "witness-pt-1 cosigned" in verified.stdout
        ), verified.stdout

        # The station re-ships what the restored hub lacks; with the same history the witness agrees again.
        _work(agent, 1)
        await eventually(
            lambda: restored.node_size(STATION) == agent.ledger.size() if agent.ledger else False,
            deadline_s=60,
            what="the restored hub refilled from the station",
        )
        await eventually(
            lambda: "ledger-witness" not in agent.ledger_alarms,
            deadline_s=60,
            what="the witness agreeing again",
        )
        await stop_intake(running)
    finally:
        await agent.stop()
        await connection.close()


async def test_a_station_finds_its_own_log_edited_after_shipping(shop: Shop) -> None:
    agent = shop.agent()
    await agent.start()
    _work(agent, 10)
    await _all_taken(shop, agent)
    await agent.stop()
    with sqlite3.connect(shop.ledger_file()) as db:  # someone with a shell on the Pi
        (raw,) = db.execute("SELECT entry FROM ledger_entries WHERE node_seq = 4").fetchone()
        assert b'"J-4"' in raw
        db.execute(
            "UPDATE ledger_entries SET entry = ? WHERE node_seq = 4", (raw.replace(b'"J-4"', b'"J-9"'),)
        )

    agent = shop.agent()
    await agent.start()
    try:
        await eventually(lambda: "ledger-self-check" in agent.ledger_alarms, deadline_s=60, what="found")
        message = agent.ledger_alarms["ledger-self-check"]["message"]
        assert "pt-1#4: does not match its stored hash" in message
        _, alarms = ledger_trouble(agent.status())
        assert alarms and "pt-1#4" in alarms[0]
        await eventually(lambda: any("pt-1#4" in str(a.get("message")) for a in shop.alerts), what="alerted")
        assert agent.ledger is not None
        (found,) = [e for e in agent.ledger.entries(10) if e.kind == "ledger.self_check_failed"]
        assert found.data["verified_through"] == 3
    finally:
        await agent.stop()


def _samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }
