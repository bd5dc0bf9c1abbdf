"""The packet's trainee section on a job a trainee did at a real pt-1 under a supervisor's badge.

tr-1 (a PT trainee) is refused alone, then badges in with op-7 (Level 2 PT) beside them and walks
J-1 to its hand-off; the packet says who performed, under whose supervision, and op-7's PT
certification at the time of the work against what the penetrant contract asks of a supervisor.
Then the shop finds that op-7's certification was void before the job (revoked with an earlier
effective date, as a record correction reaches a station): the packet still shows what the station
knew then, and shows that by today's record op-7 was NOT qualified to supervise at the time.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from smart.hub.audit import index
from smart.hub.audit.packet import Item, Packet
from smart.hub.audit.service import AuditCentral
from smart.keys import KeyStore
from smart.ledger import hub_store
from smart.node import records
from smart.runtime.background import BackgroundFloor
from smart.testing.plugin import FreshDatabase
from tests.node.conftest import REPO, Hub, eventually, hub, keys  # noqa: F401  (fixtures)
from tests.node.test_job_walkthrough import (
    AT,
    PENETRANT_SHOP,
    PENETRANT_START,
    PENETRANT_STEPS,
    at,
    bench,
    entries,
    reading,
)

VOID_FROM = AT - timedelta(days=1)  # op-7's certification, found void after the job, from the day before


def _trainee(made: Packet) -> Item:
    found = [i for s in made.sections for i in s.items if i.key == "trainee" and "J-1" in i.title]
    assert len(found) == 1, [i.title for s in made.sections for i in s.items if i.key == "trainee"]
    return found[0]


async def test_a_trainee_job_names_the_supervisor_and_whether_they_qualified_at_the_time(
    nats_floor: BackgroundFloor,
    hub: Hub,  # noqa: F811  (the fixture imported above)
    keys: KeyStore,  # noqa: F811
    database: FreshDatabase,
    tmp_path: Path,
) -> None:
    async with bench(nats_floor, hub, keys, tmp_path / "stations", "pt-1", "penetrant", PENETRANT_SHOP) as pt:
        uva = {"uv-a-intensity": reading(1180, "µW/cm²"), "ambient-white-light": reading(1.5, "fc")}
        assert (await pt.check("uv-a-intensity", uva))["outcome"] == "allow"
        assert (await pt.check("tam-panel"))["outcome"] == "allow"
        alone = await pt.job("badge", person="tr-1", at=at(-1))
        assert not alone["allowed"] and "supervisor" in alone["reasons"][0]["message"]
        assert (await pt.job("badge", person="tr-1", supervisor="op-7", at=at(0)))["allowed"]
        scanned = await pt.job(
            "scan", job="J-1", po="PO-4411", line="1", part="BRK-220", serial="SN-002", at=at(1)
        )
        assert scanned["allowed"], scanned["reasons"]
        gate = await pt.job("start", at=at(2), **PENETRANT_START)
        assert gate["allowed"], gate["reasons"]
        for minutes, step in enumerate(PENETRANT_STEPS, start=3):
            assert (await pt.job("step", at=at(minutes * 15), **step))["allowed"], step
        # a trainee signs nothing: the Level 3 takes the job over, with a reason, to sign the results
        assert (await pt.job("badge", person="l3-1", at=at(198)))["allowed"]
        taken = await pt.job("take-over", reason="sign tr-1's inspection", at=at(199))
        assert taken["allowed"], taken["reasons"]
        released = await pt.job("release", signer="l3-1", at=at(200))
        assert released["allowed"], released["reasons"]
        assert (await pt.job("handoff", at=at(201)))["state"] == "handed-off"

        hub_log = hub_store.HubLog.connect(database.url, key=keys.signing_key("hub"))
        index.migrate(database.url)
        central = AuditCentral(
            database.url,
            log_key=keys.verifying_key("hub"),
            admin=keys.verifying_key("ledger-admin"),
            contracts_dir=REPO / "contracts",
        )
        try:
            ledger = pt.runtime.agent.ledger
            assert ledger is not None

            def at_hub() -> bool:
                return hub_log.node_size("pt-1") >= ledger.size()

            await eventually(at_hub, what="pt-1's job at the hub", deadline_s=120)
            then = _trainee(central.packet(job="J-1"))
            facts = dict(then.facts)
            assert facts["performed by"] == "tr-1 (PT trainee)"
            assert facts["under the supervision of"] == "op-7"
            assert facts["required to supervise"].startswith("level-2+ PT")
            assert facts["supervisor qualified at the time (record then)"] == "yes"
            assert any(k.startswith("supervisor's certification at the work (record then") for k in facts)
            assert "PT level-2" in next(v for k, v in facts.items() if k.startswith("supervisor's cert"))
            assert then.note is None and "supervisor qualified at the time (record now)" not in facts
            assert int(facts["decisions"].split()[0]) >= 1  # the start gate, with the supervisor beside
            assert then.question.checklist == "AC7114"

            # the correction: op-7's PT certification void from before the job
            op7 = next(p for p in PENETRANT_SHOP["person"] if p.id == "op-7")
            void = replace(
                op7,
                certifications=tuple(
                    replace(c, revoked=True, revoked_at=VOID_FROM) for c in op7.certifications
                ),
            )
            received = len(entries(pt.runtime, "record.received"))
            await records.publish_record(hub.connection.jetstream(), "pt-1", "person", "op-7", void)
            await eventually(
                lambda: len(entries(pt.runtime, "record.received")) > received, what="the correction at pt-1"
            )
            await eventually(at_hub, what="the correction at the hub", deadline_s=120)
            now = _trainee(central.packet(job="J-1"))
            facts = dict(now.facts)
            assert facts["supervisor qualified at the time (record then)"] == "yes"  # what pt-1 knew
            assert facts["supervisor qualified at the time (record now)"] == "NO"
            void_row = next(v for k, v in facts.items() if "(record now" in k and "certification" in k)
            assert "no PT certification valid" in void_row and "revoked with effect from" in void_row
            assert now.note is not None and "op-7 was NOT qualified to supervise PT" in now.note
            assert len(now.cites) > len(then.cites)  # the correcting record is cited
        finally:
            central.close()
            hub_log.close()
