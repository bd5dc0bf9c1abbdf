"""HandoffCentral: handed-off job records, indexed once per station from the hub log, read behind sign-in."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from smart import ledger
from smart.contracts import facts as f
from smart.hub import handoff_central
from smart.hub.gathering import HubNodeGathering
from smart.hub.intake import LedgerIntake, register_stations
from smart.keys import KeyStore
from smart.ledger import hub_store
from smart.runtime.background import BackgroundFloor
from smart.testing.cli import invoke
from smart.testing.patience import STATE_DEADLINE_S
from tests.hub.conftest import HubDatabase, sign_in, signed_in_pages
from tests.node.conftest import Hub, eventually, hub, keys  # noqa: F401 - the fixtures
from tests.node.test_job_other_stations import UT_SHOP, UT_START
from tests.node.test_job_walkthrough import AT, at, bench


def _record(job: str, serial: str, signer: str = "op-7") -> dict[str, Any]:
    return {
        "id": job,
        "steps": ["pre-clean", "inspect"],
        "measurements": {},
        "signed_by": signer,
        "ncrs": [],
        "quantities": {},
        "coc_signed_by": None,
        "serials": [serial],
        "po": "PO-4411",
        "line": "1",
        "part": "BRK-220",
    }


def _hand_off(log: ledger.NodeLog, job: str, serial: str, *, signer: str = "op-7") -> ledger.Entry:
    return log.append(
        kind="job.handoff",
        subject=job,
        data={
            "job": job,
            "station": log.node,
            "record": _record(job, serial, signer),
            "released": {
                "entry": 3,
                "verb": "release",
                "at": "2026-06-01T12:00:01.000000Z",
                "releasedAt": "2026-06-01T15:20:00+00:00",
            },
        },
        actor=signer,
    )


def test_each_job_is_indexed_once_per_station_with_its_place_in_the_ledger_and_a_repeat_is_ignored(
    hub_db: HubDatabase, tmp_path: Path
) -> None:
    key_store = KeyStore(tmp_path / "keys")
    directory = tmp_path / "ledger"
    with (
        ledger.NodeLog.open(directory, node="pt-1", keys=key_store) as pt,
        ledger.NodeLog.open(directory, node="sr-1", keys=key_store) as sr,
        hub_store.HubLog.connect(
            hub_db.app_url, key=key_store.signing_key("hub"), admin=key_store.signing_key("ledger-admin")
        ) as hub_log,
    ):
        pt.append(kind="job.transition", subject="J-1", data={"verb": "release"}, actor="op-7")
        first = _hand_off(pt, "J-1", "SN-002")
        _hand_off(pt, "J-1", "SN-999", signer="someone-else")  # asked again: not a second hand-off
        _hand_off(pt, "J-2", "SN-001")
        shipped = _hand_off(sr, "J-1", "SN-002", signer="ship-3")  # the same job, later, at shipping
        pt.sign_head()
        sr.sign_head()
        HubNodeGathering(directory, hub_log, key_store).gather_once()

        central = handoff_central.HandoffCentral.connect(hub_db.app_url)
        try:
            assert central.index_once() == 3 and central.repeats == 1
            assert central.index_once() == 0  # nothing new: nothing added
            again = handoff_central.HandoffCentral.connect(hub_db.app_url)  # a restarted service
            assert again.index_once() == 0
            again.close()
        finally:
            central.close()

        with psycopg.connect(hub_db.app_url, autocommit=True) as conn:
            (at_pt, at_sr) = handoff_central.job(conn, "J-1")
            assert (at_pt.station, at_pt.signed_by, at_pt.serials) == ("pt-1", "op-7", ("SN-002",))
            assert (at_pt.po, at_pt.line, at_pt.part) == ("PO-4411", "1", "BRK-220")
            assert (
                at_pt.released_at is not None and at_pt.released_at.isoformat() == "2026-06-01T15:20:00+00:00"
            )
            assert at_pt.node_seq == first.node_seq and at_pt.entry_hash == first.hash.hex()
            stored = hub_log.entries(at_pt.ledger_idx, at_pt.ledger_idx + 1)[0]
            assert stored.hash == first.hash  # the row points at the very entry in the hub log
            assert (at_sr.station, at_sr.signed_by, at_sr.node_seq) == ("sr-1", "ship-3", shipped.node_seq)
            assert [j.job for j in handoff_central.jobs(conn, station="pt-1")] == ["J-2", "J-1"]
            assert [j.job for j in handoff_central.jobs(conn, serial="SN-001")] == ["J-2"]
            assert handoff_central.jobs(conn, serial="SN-999") == []
            with pytest.raises(ValueError, match="limit must be at least 1"):
                handoff_central.jobs(conn, limit=0)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("UPDATE handoff_jobs SET signed_by = 'forger'")  # the app role only adds rows


def _indexed_at_the_hub(hub_db: HubDatabase, tmp_path: Path, job: str) -> tuple[ledger.Entry, KeyStore]:
    """``job`` handed off at pt-1, gathered into the hub log and indexed; its entry and the keys."""
    key_store = KeyStore(tmp_path / "keys")
    directory = tmp_path / "ledger"
    with (
        ledger.NodeLog.open(directory, node="pt-1", keys=key_store) as pt,
        hub_store.HubLog.connect(
            hub_db.app_url, key=key_store.signing_key("hub"), admin=key_store.signing_key("ledger-admin")
        ) as hub_log,
    ):
        entry = _hand_off(pt, job, "SN-002")
        pt.sign_head()
        HubNodeGathering(directory, hub_log, key_store).gather_once()
    central = handoff_central.HandoffCentral.connect(hub_db.app_url)
    try:
        central.index_once()
    finally:
        central.close()
    return entry, key_store


@pytest.fixture
def jobs_page(hub_db: HubDatabase) -> Iterator[TestClient]:
    with signed_in_pages(hub_db, handoff_central.router) as client:
        yield client


def test_the_jobs_api_needs_a_sign_in_with_records_read_and_answers_from_the_index(
    hub_db: HubDatabase, jobs_page: TestClient, tmp_path: Path
) -> None:
    entry, _ = _indexed_at_the_hub(hub_db, tmp_path, "J-1")

    assert jobs_page.get("/api/jobs").status_code == 401
    anonymous = jobs_page.get("/jobs", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    sign_in(jobs_page, "op-7")
    assert jobs_page.get("/jobs").status_code == 403
    assert jobs_page.get("/api/jobs").status_code == 403  # an operator does not read others' records
    sign_in(jobs_page, "nadcap-auditor")
    (listed,) = jobs_page.get("/api/jobs", params={"po": "PO-4411"}).json()
    assert listed["job"] == "J-1" and listed["station"] == "pt-1" and listed["signedBy"] == "op-7"
    assert listed["ledger"]["nodeSeq"] == entry.node_seq and listed["ledger"]["entryHash"] == entry.hash.hex()
    assert "record" not in listed
    shown = jobs_page.get("/api/jobs/J-1").json()
    assert shown["handoffs"][0]["record"]["steps"] == ["pre-clean", "inspect"]
    missing = jobs_page.get("/api/jobs/J-404")
    assert missing.status_code == 404 and "no job J-404" in missing.json()["detail"]
    assert jobs_page.get("/api/jobs", params={"limit": 0}).status_code == 422

    # The same index as pages for the quality manager and the auditor.
    page = jobs_page.get("/jobs", params={"po": "PO-4411"})
    assert page.status_code == 200 and 'data-job="J-1"' in page.text
    assert entry.hash.hex()[:16] in page.text and "op-7" in page.text
    assert "that matches" in jobs_page.get("/jobs", params={"po": "PO-0"}).text
    detail = jobs_page.get("/jobs/J-1")
    assert detail.status_code == 200 and "pre-clean" in detail.text and entry.hash.hex() in detail.text
    assert jobs_page.get("/jobs/J-404").status_code == 404


async def test_a_job_handed_off_at_a_station_is_found_at_the_hub_once(
    nats_floor: BackgroundFloor,
    hub: Hub,  # noqa: F811
    keys: KeyStore,  # noqa: F811
    hub_db: HubDatabase,
    tmp_path: Path,
) -> None:
    intake_log = hub_store.HubLog.connect(
        hub_db.app_url, key=keys.signing_key("hub"), admin=keys.signing_key("ledger-admin")
    )
    register_stations(intake_log, keys, ["ut-1"])
    intake = LedgerIntake(hub.connection, intake_log, stations=["ut-1"])
    running = asyncio.create_task(intake.run())
    central = handoff_central.HandoffCentral.connect(hub_db.app_url)
    try:
        async with bench(nats_floor, hub, keys, tmp_path, "ut-1", "ultrasonic", UT_SHOP) as ut:
            assert (await ut.job("badge", person="op-7", at=at(0)))["allowed"]
            scan = {"job": "J-2", "po": "PO-4411", "line": "1", "part": "BRK-220", "serial": "SN-001"}
            assert (await ut.job("scan", at=at(1), **scan))["allowed"]
            assert (await ut.job("start", at=at(2), **UT_START))["allowed"]
            for n, step in enumerate(["calibrate", "scan", "evaluate"], start=3):
                assert (await ut.job("step", step=step, at=at(n * 10)))["allowed"]
            assert (await ut.job("release", signer="op-7", at=at(100)))["state"] == "released"
            handed = await ut.job("handoff", at=at(101))
            assert handed["state"] == "handed-off" and handed["handoff"]["recorded"]
            seq = handed["handoff"]["entry"]

            def indexed() -> bool:
                central.index_once()
                return central.indexed == 1

            await eventually(indexed, what="the hand-off indexed at the hub")
            with psycopg.connect(hub_db.app_url, autocommit=True) as conn:
                (found,) = handoff_central.job(conn, "J-2")
            assert (found.station, found.node_seq, found.signed_by) == ("ut-1", seq, "op-7")
            assert (found.po, found.line, found.part, found.serials) == (
                "PO-4411",
                "1",
                "BRK-220",
                ("SN-001",),
            )
            assert found.released_at is not None and found.released_at.isoformat() == at(100)
            event = f.Event(action="release", at=AT, station="ut-1", job="J-2")
            # The station learns the hub took the entry from the intake's receipt, which may come
            # a moment after the hub indexed it: wait for the station to say so.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + STATE_DEADLINE_S
            asked = await ut.module("handoff", "job", event)
            while not asked["effects"]["atHub"] and loop.time() < deadline:
                await asyncio.sleep(0.1)
                asked = await ut.module("handoff", "job", event)
            assert asked["effects"]["atHub"], "the station was never told the hub holds its hand-off"
            assert asked["effects"]["entry"] == seq
            assert central.index_once() == 0
    finally:
        central.close()
        running.cancel()
        intake.close()
        intake_log.close()


def test_smart_jobs_lists_and_shows_handed_off_jobs_and_says_when_a_job_never_arrived(
    hub_db: HubDatabase, tmp_path: Path
) -> None:
    entry, key_store = _indexed_at_the_hub(hub_db, tmp_path, "J-7")
    env = {
        "SMART_DATABASE_URL": hub_db.owner_url,
        "SMART_KEYS_DIR": str(key_store.directory),
        "SMART_STATE_DIR": str(tmp_path / "state"),
        "SMART_SETTINGS_FILE": str(tmp_path / "no-settings.toml"),
    }

    def smart(*args: str) -> Any:
        return invoke(*args, env=env)

    listed = smart("jobs", "list", "--station", "pt-1", "--json")
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.stdout)
    assert row["job"] == "J-7" and row["ledger"]["entryHash"] == entry.hash.hex()
    shown = smart("jobs", "show", "J-7")
    assert shown.exit_code == 0 and "J-7" in shown.stdout and f"pt-1#{entry.node_seq}" in shown.stdout
    missing = smart("jobs", "show", "J-404")
    assert missing.exit_code == 1 and "no job J-404 has been handed off to the hub" in missing.stderr


async def test_the_index_keeps_up_after_its_database_connection_is_cut(
    hub_db: HubDatabase, tmp_path: Path
) -> None:
    key_store = KeyStore(tmp_path / "keys")
    directory = tmp_path / "ledger"
    central = handoff_central.HandoffCentral.connect(hub_db.app_url)
    running = asyncio.create_task(central.run(every_s=0.05))
    try:
        pid = central.conn.info.backend_pid
        with psycopg.connect(hub_db.owner_url, autocommit=True) as owner:
            owner.execute("SELECT pg_terminate_backend(%s)", (pid,))  # the database drops the service
        with (
            ledger.NodeLog.open(directory, node="pt-1", keys=key_store) as pt,
            hub_store.HubLog.connect(
                hub_db.app_url, key=key_store.signing_key("hub"), admin=key_store.signing_key("ledger-admin")
            ) as hub_log,
        ):
            _hand_off(pt, "J-9", "SN-001")
            pt.sign_head()
            HubNodeGathering(directory, hub_log, key_store).gather_once()
        await eventually(lambda: central.indexed == 1, what="the hand-off indexed on a new connection")
        assert central.conn.info.backend_pid != pid
    finally:
        running.cancel()
        central.close()
