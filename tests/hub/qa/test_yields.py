"""First-pass yield: a job once per station, once per part and customer, on QACentral and the dashboard.

The hub's indexes hold what HandoffCentral and QACentral's NCR index took from
the ledger (their indexing is walked end to end in ``tests/hub/means`` and
``tests/hub/audit``); here they hold a small floor whose every case the old
dashboard panel miscounted: J-1 handed off at pt-1 and sr-1 (one job, first
pass at both and for its part and customer), J-2 first pass at pt-1 but with
an NCR at sr-1 (opened and dispositioned: still one NCR), J-3 scrapped with an
NCR at pt-1 and never handed off (no PO: its customer is unknown), J-4 another
customer's. Grafana's yield panels read the same floor from the ledger's entries
(``ledger_log``) and must agree.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.types.json import Jsonb

from smart.grafana import queries
from smart.hub import means
from smart.hub.clients import store as clients_store
from smart.hub.dashboard import panels
from smart.hub.qa import store as qa_store
from smart.hub.service_log import ServiceNodeLog
from smart.keys import KeyStore
from tests.grafana.test_panel_sql import expand
from tests.hub.conftest import HubDatabase

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

#: (by, key) → (jobs, first pass), by the definition in smart.hub.qa.yields.
EXPECTED = {
    ("station", "pt-1"): (4, 3),  # J-1, J-2, J-4 through; J-3 with its NCR
    ("station", "sr-1"): (2, 1),  # J-1 through; J-2 with its NCR there
    ("part", "BRK-220"): (3, 2),  # J-1, J-2 (an NCR at sr-1), J-4: each once
    ("part", "BRK-300"): (1, 0),
    ("customer", "AEROSPAR"): (2, 1),  # J-1 and J-2 of PO-4411, each once
    ("customer", "LUNAIR"): (1, 1),
    ("customer", "unknown"): (1, 0),  # J-3: no hand-off carries its PO
}


HANDED = [  # station, job, po, part
    ("pt-1", "J-1", "PO-4411", "BRK-220"),
    ("sr-1", "J-1", "PO-4411", "BRK-220"),
    ("pt-1", "J-2", "PO-4411", "BRK-220"),
    ("sr-1", "J-2", "PO-4411", "BRK-220"),  # reworked after its NCR, then handed off
    ("pt-1", "J-4", "PO-77", "BRK-220"),
]
NCRS = [  # station, ncr, kind, job, part
    ("sr-1", "NCR-sr-1-1", "opened", "J-2", "BRK-220"),
    ("sr-1", "NCR-sr-1-1", "dispositioned", "J-2", "BRK-220"),
    ("pt-1", "NCR-pt-1-1", "opened", "J-3", "BRK-300"),
]


def _floor(url: str) -> None:
    handed, ncrs = HANDED, NCRS
    with psycopg.connect(url, autocommit=True) as conn:
        for code, po in (("AEROSPAR", "PO-4411"), ("LUNAIR", "PO-77")):
            conn.execute(
                "INSERT INTO clients.clients (code, name, retention, nadcap_required, added_by)"
                " VALUES (%s, %s, '10y', true, 'qm')",
                (code, code.title()),
            )
            conn.execute(
                "INSERT INTO clients.purchase_orders (po, client, received_on, added_by)"
                " VALUES (%s, %s, %s, 'qm')",
                (po, code, AT.date()),
            )
        for idx, (station, job, po, part) in enumerate(handed, start=1):
            conn.execute(
                "INSERT INTO handoff_jobs (station, job, po, line, part, handed_off_at, ledger_idx, node_seq,"
                " entry_hash) VALUES (%s, %s, %s, '1', %s, %s, %s, %s, %s)",
                (station, job, po, part, AT, idx, idx, bytes(32)),
            )
        for idx, (station, ncr, kind, job, part) in enumerate(ncrs, start=100):
            conn.execute(
                "INSERT INTO qa.ncr_events (ledger_idx, station, ncr, kind, job, part, record, at, node_seq,"
                " entry_hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (idx, station, ncr, kind, job, part, Jsonb({"id": ncr}), AT, idx, bytes(32)),
            )
        # the same floor as the ledger's entries Grafana's panels read (their signatures are not theirs
        # to check: the intake verified them on the way in)
        entries = [
            (station, {"kind": "job.handoff", "subject": job, "data": {"record": {"po": po, "part": part}}})
            for station, job, po, part in handed
        ] + [
            (station, {"kind": f"qa.ncr.{kind}", "subject": job, "data": {"id": n, "job": job, "part": part}})
            for station, n, kind, job, part in ncrs
        ]
        for idx, (station, body) in enumerate(entries, start=1):
            entry = json.dumps({**body, "ts": AT.isoformat()}).encode()
            conn.execute(
                "INSERT INTO ledger_entries (idx, node, node_seq, entry) VALUES (%s, %s, %s, %s)",
                (idx, station, idx, entry),
            )


@pytest.fixture
def floor(hub_db: HubDatabase) -> Iterator[HubDatabase]:
    means.migrate(hub_db.owner_url)
    clients_store.migrate(hub_db.owner_url)
    _floor(hub_db.owner_url)
    yield hub_db


def test_a_job_counts_once_per_station_part_and_customer_on_qacentral_and_the_dashboard(
    floor: HubDatabase, tmp_path: Path
) -> None:
    qa = qa_store.QaCentral(
        floor.app_url,
        ledger=ServiceNodeLog(tmp_path / "ledger", KeyStore(tmp_path / "keys"), node=qa_store.NODE),
        stations=["pt-1", "sr-1"],
    )
    try:
        found = qa.first_pass_yield()
    finally:
        qa.close()
    assert {(y.by, y.key): (y.jobs, y.first_pass) for y in found} == EXPECTED
    assert {(y.by, y.key): y.rate for y in found}[("station", "sr-1")] == 0.5

    with psycopg.connect(floor.owner_url) as conn:  # the dashboard's own connection: tuple rows
        panel = panels.first_pass_yield(conn, panels.Day.of(AT, ZoneInfo("UTC")))
    shown: dict[tuple[str, str], Any] = {}
    for by, key, jobs, rate in panel.rows:
        good, total = (int(n) for n in jobs.text.split("/"))
        shown[(by.text, key.text)] = (total, good)
        assert rate.css == ("good" if good == total else "warn")
    assert shown == EXPECTED


def test_grafanas_yield_panels_count_the_same_floor_the_same_way(floor: HubDatabase) -> None:
    start, end = AT - timedelta(hours=1), AT + timedelta(hours=1)
    with psycopg.connect(floor.owner_url) as conn:
        found = {
            by: {tuple(r[:3]) for r in conn.execute(expand(panel.sql, start, end).encode())}
            for by, panel in (
                ("station", queries.YIELD_BY_STATION),
                ("part", queries.YIELD_BY_PART),
                ("customer", queries.YIELD_BY_CUSTOMER),
            )
        }
    names = {"AEROSPAR": "Aerospar", "LUNAIR": "Lunair"}  # Grafana shows the client's name
    assert found == {
        by: {(names.get(key, key), jobs, good) for (of, key), (jobs, good) in EXPECTED.items() if of == by}
        for by in ("station", "part", "customer")
    }


def test_without_clientmanagers_schema_every_job_is_an_unknown_customers_still_counted_once(
    hub_db: HubDatabase, tmp_path: Path
) -> None:
    means.migrate(hub_db.owner_url)
    with psycopg.connect(hub_db.owner_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO handoff_jobs (station, job, po, part, handed_off_at, ledger_idx, node_seq,"
            " entry_hash) VALUES ('pt-1', 'J-1', 'PO-1', 'P', %s, 1, 1, %s),"
            " ('sr-1', 'J-1', 'PO-1', 'P', %s, 2, 2, %s)",
            (AT, bytes(32), AT, bytes(32)),
        )
    qa = qa_store.QaCentral(
        hub_db.app_url,
        ledger=ServiceNodeLog(tmp_path / "ledger", KeyStore(tmp_path / "keys"), node=qa_store.NODE),
        stations=["pt-1", "sr-1"],
    )
    try:
        found = {(y.by, y.key): (y.jobs, y.first_pass) for y in qa.first_pass_yield()}
    finally:
        qa.close()
    assert found == {
        ("customer", "unknown"): (1, 1),
        ("part", "P"): (1, 1),
        ("station", "pt-1"): (1, 1),
        ("station", "sr-1"): (1, 1),
    }
