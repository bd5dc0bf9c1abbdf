"""Hub services' own node logs reach the hub log once, through a signed head, without the writer lock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg.conninfo import make_conninfo

from smart import ledger
from smart.hub.gathering import HubNodeGathering
from smart.keys import KeyStore
from smart.ledger import hub_store
from smart.testing.plugin import FreshDatabase


@pytest.fixture
def hub_log(database: FreshDatabase, tmp_path: Path) -> Iterator[hub_store.HubLog]:
    password = database.app_password
    hub_store.migrate(database.url, app_password=password)
    app_url = make_conninfo(database.url, user=hub_store.APP_ROLE, password=password)
    keys = KeyStore(tmp_path / "keys")
    with hub_store.HubLog.connect(
        app_url, key=keys.signing_key("hub"), admin=keys.signing_key("ledger-admin").verifying
    ) as log:
        yield log


def test_hub_service_logs_are_ingested_once_each_up_to_their_latest_signed_head(
    hub_log: hub_store.HubLog, tmp_path: Path
) -> None:
    keys = KeyStore(tmp_path / "keys")
    directory = tmp_path / "state" / "ledger"
    with ledger.NodeLog.open(directory, node="smart-embedded", keys=keys) as applying:
        for n in range(3):
            applying.append(kind="contract.deployed", subject=f"penetrant-{n}", data={"n": n}, actor="ops")
    # SMART-ID signs its chain heads with a key of its own name, not the node's.
    smartid = ledger.NodeLog.open(directory, node="smart-id", keys=keys, key_name="smart-id-ledger")
    try:
        smartid.append(kind="credential.issued", subject="C-1", data={}, actor="qm")
        smartid.sign_head()
        smartid.append(kind="credential.revoked", subject="C-1", data={}, actor="qm")  # no head yet

        gathering = HubNodeGathering(directory, hub_log, keys)
        first = gathering.gather_once()  # read while SMART-ID still holds its writer lock
        assert {g.node: g.entries for g in first} == {"smart-embedded": 3, "smart-id": 1}
        assert hub_log.node_size("smart-embedded") == 3 and hub_log.node_size("smart-id") == 1
        assert gathering.gather_once() == []  # nothing new: nothing ingested twice

        smartid.sign_head()
        assert [(g.node, g.entries) for g in gathering.gather_once()] == [("smart-id", 1)]
    finally:
        smartid.close()
    kinds = [entry.kind for entry in hub_log.entries(0)]
    assert sorted(kinds) == sorted(["contract.deployed"] * 3 + ["credential.issued", "credential.revoked"])


def test_a_hub_log_file_without_a_known_key_is_skipped_and_the_others_still_gathered(
    hub_log: hub_store.HubLog, tmp_path: Path
) -> None:
    keys = KeyStore(tmp_path / "keys")
    directory = tmp_path / "state" / "ledger"
    with ledger.NodeLog.open(directory, node="smart-embedded", keys=keys) as applying:
        applying.append(kind="contract.deployed", subject="x", data={}, actor="smart-embedded")
    strangers = KeyStore(tmp_path / "elsewhere")  # a log whose key this hub has never seen
    with ledger.NodeLog.open(directory, node="stray-node", keys=strangers) as stray:
        stray.append(kind="stray.noise", subject="x", data={}, actor="someone")

    gathered = HubNodeGathering(directory, hub_log, keys).gather_once()
    assert [(g.node, g.entries) for g in gathered] == [("smart-embedded", 1)]
    assert hub_log.node_size("stray-node") == 0
