"""The hub goes away and comes back: stations keep deciding, and every entry reaches the hub once."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import nats

from smart.contracts import facts as f
from smart.hub.intake import LedgerIntake, register_stations
from smart.hub.streams import ensure_hub_streams
from smart.keys import KeyStore
from smart.ledger import verify as ledger_verify
from smart.ledger.hub_store import HubLog
from smart.testing.plugin import FloorFactory
from tests.node.conftest import REFERENCE, Hub, LedgerDatabase, agent_for, eventually, now, signed_envelope

ENTRIES = 10_000


def _events(station: str, n: int) -> list[f.Event]:
    """Alternately a pre-clean step (allowed: no rule of the reference contracts judges it; a step
    naming no step is refused where a rule's limits depend on the step) and the station's main
    action by someone the station knows nothing about (denied)."""
    denied = "ship" if station == "sr-1" else "operate"
    return [
        f.Event(action="step", at=now(), station=station, job=f"J-{i}", step="pre-clean")
        if i % 2
        else f.Event(action=denied, at=now(), station=station, person="B-1042", job=f"J-{i}")
        for i in range(n)
    ]


async def test_stations_decide_through_a_hub_outage_and_every_entry_is_ingested_once_and_cosigned(
    floor_factory: FloorFactory, ledger_db: LedgerDatabase, keys: KeyStore, tmp_path: Path
) -> None:
    floor = floor_factory(stations=6)
    stations = list(floor.floor.leaves)
    assert floor.floor.hub is not None
    hub_connection = await nats.connect(floor.hub_url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    await ensure_hub_streams(hub_connection.jetstream())
    hub = Hub(hub_connection, keys)
    intake_log = HubLog.connect(
        ledger_db.app_url, key=keys.signing_key("hub"), admin=keys.signing_key("ledger-admin")
    )
    register_stations(intake_log, keys, stations)
    intake = LedgerIntake(hub_connection, intake_log, stations=stations)
    hub_log = HubLog.connect(
        ledger_db.app_url, admin=keys.signing_key("ledger-admin")
    )  # the test reads on a connection of its own
    intake_task = asyncio.create_task(intake.run())
    agents = [agent_for(floor, station, keys, tmp_path) for station in stations]
    try:
        for agent in agents:
            await agent.start()
        for station in stations:
            await hub.put_contract(
                station, REFERENCE[station], signed_envelope(REFERENCE[station], station, keys)
            )
        await eventually(
            lambda: all(a.enforcer.revisions for a in agents), what="contracts active everywhere"
        )
        revisions = {a.station: a.enforcer.revisions for a in agents}

        floor.run(floor.floor.supervisor.stop_child("hub"))
        outcomes: dict[str, set[str]] = {}
        per_station = ENTRIES // len(agents)
        for agent in agents:
            for event in _events(agent.station, per_station):
                outcomes.setdefault(agent.station, set()).add(agent.decide(event, f.Facts()).outcome)
        assert all(found == {"allow", "deny"} for found in outcomes.values()), outcomes
        assert {a.station: a.enforcer.revisions for a in agents} == revisions
        await asyncio.sleep(0.5)
        assert hub_log.size() < sum(a.ledger.size() for a in agents if a.ledger)  # nothing got through

        floor.run(floor.floor.supervisor.start_child("hub"))
        sizes = {a.station: a.ledger.size() for a in agents if a.ledger}
        assert sum(sizes.values()) >= ENTRIES
        await eventually(
            lambda: hub_log.size() == sum(sizes.values()),
            what="all ingested",
            state=lambda: (
                hub_log.size(),
                {s: hub_log.node_size(s) for s in stations},
                {a.station: a.status()["shipped_seq"] for a in agents},
                intake.ingested_batches,
                intake.refused_batches,
            ),
        )

        for station, size in sizes.items():
            assert hub_log.node_size(station) == size
        indexed = hub_log.entries(0)
        assert len({(e.node, e.node_seq) for e in indexed}) == len(indexed)  # no duplicate
        for station in stations:
            seqs = [e.node_seq for e in indexed if e.node == station]
            assert seqs == list(range(sizes[station]))  # order per node kept, no gap
        report = ledger_verify.verify_hub(
            hub_log.conn, log_key=keys.verifying_key("hub"), admin=keys.verifying_key("ledger-admin")
        )
        assert report.ok, report

        async def cosigned_by_all() -> bool:
            await intake.witness_round()
            signed = hub_log.checkpoint()
            witnesses = [keys.verifying_key(f"witness-{s}") for s in stations]
            return len(signed.verify(keys.verifying_key("hub"), witnesses)) == len(stations)

        for _ in range(50):
            if await cosigned_by_all():
                break
            await asyncio.sleep(0.1)
        assert await cosigned_by_all()
        assert intake.refused_batches == 0
        assert gc.isenabled()  # the backlog is in: the intake no longer holds the collector off
    finally:
        intake_task.cancel()
        intake.close()
        for agent in agents:
            await agent.stop()
        hub_log.close()
        intake_log.close()
        await hub_connection.close()
