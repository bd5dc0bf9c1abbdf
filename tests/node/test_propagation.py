"""Issue 6, must-show 1: applied reference contracts become active on every station they select."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import nats

from smart.bus import subjects
from smart.contracts import manifests
from smart.contracts.models import SmartContract
from smart.embedded import driver
from smart.keys import KeyStore
from smart.node.agent import AgentConfig, NodeAgent
from smart.testing.plugin import FloorFactory
from tests.node.conftest import REPO, eventually


async def test_applying_the_reference_contracts_activates_each_on_all_six_stations_it_selects(
    floor_factory: FloorFactory, tmp_path: Path
) -> None:
    floor = floor_factory(stations=6)
    settings = floor.settings
    keys = KeyStore(settings.key_directory)
    keys.signing_key("hub")  # the hub key exists before the stations are provisioned with it
    agents = [
        NodeAgent(AgentConfig(station=s, leaf_url=leaf.url, data_dir=tmp_path / s, keys=keys))
        for s, leaf in floor.floor.leaves.items()
    ]
    assert len(agents) == 6
    for agent in agents:
        await agent.start()
    try:
        applied = await driver.load_contracts(settings, REPO / "contracts")  # what `smart up` applies
        contracts = [a for a in applied if a.kind == "SmartContract"]
        seeded = f"seeded from {REPO / 'contracts'}/: synced"  # the first start seeds the floor
        assert len(contracts) == 6 and all(a.outcome.startswith(seeded) for a in contracts), contracts

        # What the hub put in KV for each station is what each station must hold active.
        hub = await nats.connect(driver.hub_url(settings), **settings.hub_nats_signin())
        try:
            bucket = await hub.jetstream().key_value(subjects.CONTRACTS_BUCKET)
            wanted: dict[str, dict[str, str]] = {agent.station: {} for agent in agents}
            for loaded in manifests.load([REPO / "contracts"]):
                if not isinstance(loaded.manifest, SmartContract):
                    continue
                name = loaded.manifest.metadata.name
                for station in wanted:
                    try:
                        entry = await bucket.get(subjects.contract_key(station, name))
                    except nats.js.errors.KeyNotFoundError:
                        continue
                    assert entry.value is not None
                    wanted[station][name] = str(json.loads(entry.value)["revision"])
        finally:
            await hub.close()
        assert all(wanted.values()), f"every station is selected by some contract: {wanted}"

        await eventually(
            lambda: all(agent.enforcer.revisions == wanted[agent.station] for agent in agents),
            what="each station's contracts active",
            state=lambda: {agent.station: agent.enforcer.revisions for agent in agents},
        )
        for agent in agents:
            assert agent.store is not None
            for name, revision in wanted[agent.station].items():
                assert [h.revision for h in agent.store.history(name)][-1] == revision
    finally:
        await asyncio.gather(*(agent.stop() for agent in agents))
