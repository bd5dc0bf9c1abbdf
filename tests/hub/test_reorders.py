"""The reorder board: stations' reorder signals from the hub log, open until cleared, read behind sign-in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from smart import ledger
from smart.hub import reorders
from smart.hub.gathering import HubNodeGathering
from smart.keys import KeyStore
from smart.ledger import hub_store
from tests.hub.conftest import HubDatabase, sign_in, signed_in_pages


def _raise(log: ledger.NodeLog, material: str, quantity: float) -> ledger.Entry:
    return log.append(
        kind=reorders.RAISED,
        subject=material,
        data={
            "station": log.node,
            "material": material,
            "quantity": quantity,
            "unit": "L",
            "projected": 3.5,
            "minStock": 8,
            "message": f"{material} will be below 8 L in 14 days",
        },
        actor="op-7",
    )


def _clear(log: ledger.NodeLog, material: str, signal: ledger.Entry) -> ledger.Entry:
    return log.append(
        kind=reorders.CLEARED,
        subject=material,
        data={"station": log.node, "material": material, "signal": signal.node_seq, "projected": 20},
        actor="op-7",
    )


@pytest.fixture
def reorder_pages(hub_db: HubDatabase) -> Iterator[TestClient]:
    with signed_in_pages(hub_db, reorders.router) as client:
        yield client


def test_open_signals_are_the_raised_ones_no_clearing_names_each_taken_once(
    hub_db: HubDatabase, reorder_pages: TestClient, tmp_path: Path
) -> None:
    keys = KeyStore(tmp_path / "keys")
    directory = tmp_path / "ledger"
    with (
        ledger.NodeLog.open(directory, node="pt-1", keys=keys) as pt,
        ledger.NodeLog.open(directory, node="mt-1", keys=keys) as mt,
        hub_store.HubLog.connect(
            hub_db.app_url, key=keys.signing_key("hub"), admin=keys.signing_key("ledger-admin")
        ) as hub_log,
    ):
        penetrant = _raise(pt, "penetrant", 12)
        developer = _raise(pt, "developer", 4)
        _clear(pt, "penetrant", penetrant)  # a lot arrived
        again = _raise(pt, "penetrant", 6)  # and ran low again later: a new signal
        particles = _raise(mt, "magnetic-particles", 2)
        pt.append(kind="job.transition", subject="J-1", data={"verb": "badge"}, actor="op-7")
        pt.sign_head()
        mt.sign_head()
        HubNodeGathering(directory, hub_log, keys).gather_once()

    board = reorders.ReorderBoard.connect(hub_db.app_url)
    try:
        assert board.index_once() == 5
        assert board.index_once() == 0
        restarted = reorders.ReorderBoard.connect(hub_db.app_url)
        assert restarted.index_once() == 0  # reading the log again adds nothing
        restarted.close()
    finally:
        board.close()

    with psycopg.connect(hub_db.app_url, autocommit=True) as conn:
        still_open = reorders.open_reorders(conn)
        assert {(r.station, r.material, r.node_seq) for r in still_open} == {
            ("pt-1", "developer", developer.node_seq),
            ("pt-1", "penetrant", again.node_seq),
            ("mt-1", "magnetic-particles", particles.node_seq),
        }
        assert [r.material for r in reorders.open_reorders(conn, station="mt-1")] == ["magnetic-particles"]
        assert next(r for r in still_open if r.material == "developer").entry_hash == developer.hash.hex()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM reorder_events")  # the app role only adds rows

    assert reorder_pages.get("/api/reorders").status_code == 401
    sign_in(reorder_pages, "op-7")
    assert reorder_pages.get("/reorders").status_code == 403
    sign_in(reorder_pages, "nadcap-auditor")
    listed = reorder_pages.get("/api/reorders", params={"station": "pt-1"}).json()
    assert sorted((r["material"], r["quantity"]) for r in listed) == [("developer", 4.0), ("penetrant", 6.0)]
    page = reorder_pages.get("/reorders")
    assert page.status_code == 200 and 'data-material="magnetic-particles"' in page.text
    assert "developer will be below 8 L in 14 days" in page.text
    assert "No station is waiting" in reorder_pages.get("/reorders", params={"station": "ut-1"}).text
