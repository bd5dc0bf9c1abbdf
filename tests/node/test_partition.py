"""A station cut off from the hub by a network partition keeps enforcing and catches up when it heals."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import nats

from smart.contracts import facts as f
from smart.hub.intake import LedgerIntake, register_stations
from smart.keys import KeyStore
from smart.ledger import verify as ledger_verify
from smart.ledger.hub_store import HubLog
from smart.runtime import nats as natsconf
from smart.runtime import ports
from smart.testing.partition import Link
from smart.testing.patience import STATE_DEADLINE_S
from smart.testing.plugin import FloorFactory
from tests.node.conftest import REFERENCE, Hub, LedgerDatabase, agent_for, eventually, now, signed_envelope


async def hub_links(monitor_port: int) -> int:
    """How many hub connections a station's leaf reports on its monitoring port (``/leafz``)."""
    async with httpx.AsyncClient(timeout=30) as client:
        return int((await client.get(f"http://127.0.0.1:{monitor_port}/leafz")).json()["leafnodes"])


async def eventually_async(
    probe: Callable[[], Awaitable[int]], wanted: int, *, what: str, deadline_s: float = STATE_DEADLINE_S
) -> None:
    """Wait until ``probe()`` gives ``wanted`` (a state, with a generous deadline)."""
    loop = asyncio.get_running_loop()
    deadline, found = loop.time() + deadline_s, None
    while loop.time() < deadline:
        if (found := await probe()) == wanted:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} not reached within {deadline_s} s (found {found}, wanted {wanted})")


async def test_partitioned_station_keeps_deciding_and_its_entries_arrive_once_after_the_partition_heals(
    floor_factory: FloorFactory, ledger_db: LedgerDatabase, keys: KeyStore, tmp_path: Path
) -> None:
    floor = floor_factory(stations=2)
    cut_off, connected = "pt-1", "mt-1"
    # Re-route pt-1's leaf connection through a link we can cut: same servers, one more hop.
    link = Link(listen_port=ports.free_port(), target_port=floor.settings.nats_leaf_port)
    await link.mend()
    leaf = floor.floor.leaves[cut_off]
    routed = natsconf.LeafServer(
        station=leaf.station,
        host=leaf.host,
        port=leaf.port,
        monitor_port=leaf.monitor_port,
        hub_leaf_port=link.listen_port,
        store_dir=leaf.store_dir,
    )
    floor.run(floor.floor.supervisor.stop_child(leaf.name))
    natsconf.write_config(floor.floor.layout.nats_config(leaf.name), floor.floor.nats_config_text(routed))
    floor.run(floor.floor.supervisor.start_child(leaf.name))

    assert floor.floor.hub is not None
    hub_connection = await nats.connect(floor.floor.hub.url, **floor.settings.hub_nats_signin())
    intake_log = HubLog.connect(
        ledger_db.app_url, key=keys.signing_key("hub"), admin=keys.signing_key("ledger-admin")
    )
    register_stations(intake_log, keys, [cut_off, connected])
    intake = LedgerIntake(hub_connection, intake_log, stations=[cut_off, connected])
    intake_task = asyncio.create_task(intake.run())
    reader = HubLog.connect(ledger_db.app_url, admin=keys.signing_key("ledger-admin"))
    agents = {s: agent_for(floor, s, keys, tmp_path) for s in (cut_off, connected)}
    try:
        for station, agent in agents.items():
            await agent.start()
            await Hub(hub_connection, keys).put_contract(
                station, REFERENCE[station], signed_envelope(REFERENCE[station], station, keys)
            )
        # pt-1's leaf was just restarted behind the link: its mirror's source across the leaf
        # connection can take several seconds to start under load (a wait, not a timed assertion).
        await eventually(
            lambda: all(a.enforcer.revisions for a in agents.values()),
            what="active",
            state=lambda: {s: a.enforcer.revisions for s, a in agents.items()},
        )
        revision = agents[cut_off].enforcer.revisions

        await link.cut()
        # Decide only once pt-1's own leaf says it has no hub connection, so every entry below is made
        # inside the partition; and the hub must not be reachable by any other path than the link
        # (it once advertised its own leaf port, and the leaf dialled it around the cut).
        await eventually_async(lambda: hub_links(leaf.monitor_port), 0, what="pt-1's leaf cut off")
        cut_off_ledger = agents[cut_off].ledger
        assert cut_off_ledger is not None
        made_before = cut_off_ledger.size()  # entries made before the partition may still arrive
        outcomes = set()
        for i in range(1000):
            for station, agent in agents.items():
                action = "step" if i % 2 else "operate"
                # the first step of the procedure: a step that names none is refused (pt-1's drying
                # limits could not be chosen); an operate with no records is refused
                event = f.Event(
                    action=action, at=now(), station=station, person="B-7", job=f"J-{i}", step="pre-clean"
                )
                outcomes.add((station, agent.decide(event, f.Facts()).outcome))
        assert outcomes == {(s, o) for s in agents for o in ("allow", "deny")}
        assert agents[cut_off].enforcer.revisions == revision
        sizes = {s: a.ledger.size() for s, a in agents.items() if a.ledger}
        await eventually(lambda: reader.node_size(connected) == sizes[connected], what="mt-1 shipped")
        assert await hub_links(leaf.monitor_port) == 0  # still cut off: the leaf found no way round
        assert reader.node_size(cut_off) <= made_before < sizes[cut_off]  # nothing decided inside crossed

        await link.mend()
        await eventually(
            lambda: reader.node_size(cut_off) == sizes[cut_off],
            what="pt-1 caught up",
            state=lambda: (reader.node_size(cut_off), sizes),
        )
        entries = [e for e in reader.entries(0) if e.node == cut_off]
        assert [e.node_seq for e in entries] == list(range(sizes[cut_off]))
        assert ledger_verify.verify_hub(
            reader.conn, log_key=keys.verifying_key("hub"), admin=keys.verifying_key("ledger-admin")
        ).ok
    finally:
        intake_task.cancel()
        intake.close()
        for agent in agents.values():
            await agent.stop()
        await link.cut()
        await hub_connection.close()
        reader.close()
        intake_log.close()
