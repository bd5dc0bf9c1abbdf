"""One walked floor for every audit test: the demo PO received at sr-1, inspected at pt-1, shipped at sr-1.

The walk runs once for the package (it costs a floor of real servers): the
hub's work services enter, review and release PO-4411 line 1; node agents at
pt-1 and sr-1 (the reference contracts, their own leaves) do the daily checks,
the inspection and the shipment; their ledgers reach the hub through the
intake and the services' logs through the gathering. After the job, the shop's
records move on as a real shop's do: the UV-A meter's next calibration finds
it out of tolerance, op-7's near-vision exam lapses (it was 300 days old at
the time of the work), and op-7's PT certification is revoked. Then the floor
stops and only the hub's database and keys remain: what an auditor's packet is
built from.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
from psycopg.conninfo import make_conninfo

from smart.contracts import facts as f
from smart.hub import work as work_module
from smart.hub.gathering import HubNodeGathering
from smart.hub.intake import LedgerIntake, register_stations
from smart.hub.streams import ensure_hub_streams
from smart.hub.work import WorkServices
from smart.keys import KeyStore
from smart.ledger import hub_store
from smart.ledger.hub_store import HubLog
from smart.node import records
from smart.node.station import StationRuntime
from smart.runtime import demo_shop
from smart.runtime.background import BackgroundFloor
from smart.testing.plugin import fresh_database, make_settings
from tests.node.conftest import Hub, agent_for, eventually
from tests.node.test_job_walkthrough import (
    AT,
    PENETRANT_STEPS,
    Bench,
    at,
    deploy,
    entries,
    reading,
    walk_penetrant_to_the_gate,
)

DAY = timedelta(days=1)
#: op-7's near-vision exam was this old at the time of the work: valid then, lapsed 65 days later.
VISION_DAYS = 300
#: When the UV-A meter's next calibration found it out of tolerance (after the job).
OUT_OF_TOLERANCE_AT = AT + 20 * DAY
#: When op-7's PT certification was revoked (after the job).
REVOKED_AT = AT + 40 * DAY
SR_PEOPLE = (f.Person("ship-1"), f.Person("qm-1", authorities=("coc-signature", "quality-manager")))


@dataclass(frozen=True, slots=True)
class Walked:
    """What is left of the walked floor: the hub's database (owner and app role) and the keys."""

    owner_url: str
    app_url: str
    keys: KeyStore
    ledger_dir: Path
    root: Path


def _pt_shop() -> dict[str, list[Any]]:
    shop = demo_shop.penetrant_shop(AT)
    shop["person"] = [
        replace(p, exams=(f.Exam("near-vision", AT - VISION_DAYS * DAY, "jaeger-1-12in"), *p.exams[1:]))
        if p.id == "op-7"
        else p
        for p in shop["person"]
    ]
    return shop


async def _walk(floor: BackgroundFloor, walked: Walked) -> None:
    assert floor.floor.hub is not None
    keys = walked.keys
    connection = await nats.connect(floor.floor.hub.url, **floor.settings.hub_nats_signin())
    js = connection.jetstream()
    await ensure_hub_streams(js)
    await records.ensure_records_bucket(js)
    hub = Hub(connection, keys)
    stations = list(floor.floor.leaves)
    work = WorkServices(walked.app_url, keys=keys, ledger_dir=walked.ledger_dir, stations=stations, js=js)
    hub_log = HubLog.connect(
        walked.app_url, key=keys.signing_key("hub"), admin=keys.signing_key("ledger-admin")
    )
    register_stations(hub_log, keys, stations)
    intake = LedgerIntake(connection, hub_log, stations=stations)
    intake_task = asyncio.create_task(intake.run())
    runtimes: list[StationRuntime] = []
    clients: list[Any] = []
    try:
        await deploy(hub, "penetrant")
        await deploy(hub, "shipping-receiving")
        pt_shop = _pt_shop()
        for kind, values in pt_shop.items():
            for value in values:
                await records.publish_record(js, "pt-1", kind, records.fact_key(kind, value), value)
        for person in SR_PEOPLE:
            await records.publish_record(js, "sr-1", "person", person.id, person)
        released = await demo_shop.load_work(work, AT)
        assert released is not None and released.stations == ("pt-1", "sr-1")
        benches: dict[str, Bench] = {}
        expected = {"pt-1": sum(len(v) for v in pt_shop.values()) + 2, "sr-1": len(SR_PEOPLE) + 2}
        for station in ("pt-1", "sr-1"):
            runtime = StationRuntime(agent_for(floor, station, keys, walked.root / "stations"))
            await runtime.start()
            runtimes.append(runtime)
            client = await nats.connect(floor.floor.leaves[station].url)
            clients.append(client)
            await eventually(
                lambda r=runtime: r.serving() and "gatekeeper" in r.modules, what=f"{station} up"
            )
            await eventually(
                lambda r=runtime, n=expected[station]: len(entries(r, "record.received")) >= n,
                what=f"{station} records mirrored",
                deadline_s=120,
            )
            benches[station] = Bench(runtime, client, hub)
        pt, sr = benches["pt-1"], benches["sr-1"]

        assert (await sr.job("badge", person="ship-1", at=at(0)))["allowed"]
        received = await sr.job(
            "receive",
            job="R-1",
            po="PO-4411",
            line="1",
            part="BRK-220",
            serial="SN-002",
            received=2,
            at=at(1),
        )
        assert received["allowed"], received["reasons"]

        uva = {"uv-a-intensity": reading(1180, "µW/cm²"), "ambient-white-light": reading(1.5, "fc")}
        assert (await pt.check("uv-a-intensity", uva))["outcome"] == "allow"
        assert (await pt.check("tam-panel"))["outcome"] == "allow"
        # a block that fired: op-9's near-vision exam is 13 months old, so the gate refuses op-9
        assert not (await pt.job("badge", person="op-9", at=at(-5)))["allowed"]
        gate = await walk_penetrant_to_the_gate(pt)
        assert gate["allowed"], gate["reasons"]
        for minutes, step in enumerate(PENETRANT_STEPS, start=3):
            assert (await pt.job("step", at=at(minutes * 15), **step))["allowed"], step
        assert (await pt.job("release", signer="op-7", at=at(200)))["allowed"]
        assert (await pt.job("handoff", at=at(201)))["state"] == "handed-off"

        assert (await sr.job("badge", person="qm-1", at=at(259)))["allowed"]
        shipped = await sr.job("ship", quantities={"accepted": 2}, signCoc=True, at=at(260))
        assert shipped["allowed"], shipped["reasons"]

        # after the job the shop's records move on
        meter = next(e for e in pt_shop["equipment"] if e.id == "UV-METER-1")
        assert meter.calibration is not None
        recalled = replace(
            meter,
            calibration=f.Calibration(OUT_OF_TOLERANCE_AT, in_tolerance=False),
            calibrations=(meter.calibration,),
        )
        await records.publish_record(js, "pt-1", "equipment", "UV-METER-1", recalled)
        op7 = next(p for p in pt_shop["person"] if p.id == "op-7")
        revoked = replace(
            op7,
            certifications=tuple(replace(c, revoked=True, revoked_at=REVOKED_AT) for c in op7.certifications),
        )
        await records.publish_record(js, "pt-1", "person", "op-7", revoked)
        await eventually(
            lambda: len(entries(pt.runtime, "record.received")) >= expected["pt-1"] + 2,
            what="the later records at pt-1",
            deadline_s=120,
        )

        gathering = HubNodeGathering(walked.ledger_dir, hub_log, keys)

        def shipped_to_hub() -> bool:
            gathering.gather_once()
            return all(
                r.agent.ledger is not None and hub_log.node_size(r.station) >= r.agent.ledger.size()
                for r in runtimes
            )

        await eventually(shipped_to_hub, what="both stations' ledgers at the hub", deadline_s=180)

        def cosigned() -> bool:
            return len([s for s in hub_log.checkpoint().signatures if s.is_cosignature]) >= 2

        await eventually(cosigned, what="the latest checkpoint cosigned by pt-1 and sr-1", deadline_s=120)
    finally:
        for client in clients:
            await client.close()
        for runtime in runtimes:
            await runtime.stop()
        intake_task.cancel()
        await asyncio.gather(intake_task, return_exceptions=True)
        intake.close()
        hub_log.close()
        await work.stop()
        await connection.close()


@pytest.fixture(scope="package")
def walked(postgres_floor: BackgroundFloor) -> Iterator[Walked]:
    with fresh_database(postgres_floor) as fresh:
        owner_url, password = fresh.url, fresh.app_password
        hub_store.migrate(owner_url, app_password=password)
        work_module.migrate(owner_url)
        app_url = make_conninfo(owner_url, user=hub_store.APP_ROLE, password=password)
        root = Path(tempfile.mkdtemp(prefix="smart-audit-"))
        keys = KeyStore(root / "keys")
        keys.signing_key("hub")
        state = Walked(owner_url, app_url, keys, root / "hub-ledger", root)
        floor = BackgroundFloor(make_settings(root / "floor", stations=6), postgres=False).start()
        try:
            asyncio.run(_walk(floor, state))
        finally:
            floor.stop()
        try:
            yield state
        finally:
            shutil.rmtree(root, ignore_errors=True)


def when(offset_minutes: float) -> datetime:
    return AT + timedelta(minutes=offset_minutes)
