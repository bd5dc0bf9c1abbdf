"""``smart ledger verify`` finds tampering done behind the hub's back and names the first bad index.

The attacker here is the database superuser with the append-only triggers
switched off (``session_replication_role = replica``): the strongest
position short of holding the keys. One changed byte in any column, a
deleted row or two swapped rows must each make verify exit 1 naming the
index where the damage is.
"""

from __future__ import annotations

import psycopg
import pytest

from smart.keys import KeyStore
from smart.ledger import hub_store, verify

from .conftest import HubDatabase, LedgerCli, three_stations

# Index 137 is pt-1#57, in the middle of a batch; 159 ends a batch (its entry is named by a
# signed head); 0 is the first entry; 359 the last.
MIDDLE, HEAD, FIRST, LAST = 137, 159, 0, 359


def _tamper(hub_db: HubDatabase, *statements: str) -> None:
    with psycopg.connect(hub_db.owner_url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # triggers off: a superuser can
        for statement in statements:
            conn.execute(statement)


@pytest.fixture
def shop_log(hub: hub_store.HubLog, keys: KeyStore) -> hub_store.HubLog:
    three_stations(hub, keys)
    return hub


def test_an_untouched_ledger_verifies(shop_log: hub_store.HubLog, ledger_cli: LedgerCli) -> None:
    result = ledger_cli("ledger", "verify")
    assert result.exit_code == 0, result.stdout
    assert "ok: 360 entries from 3 nodes, 9 checkpoints" in result.stdout


ONE_BYTE_CHANGES = {
    "idx": "UPDATE ledger_entries SET idx = idx # (1::bigint << 40) WHERE idx = {i}",
    "node": "UPDATE ledger_entries SET node = overlay(node placing 'x' from 2 for 1) WHERE idx = {i}",
    "node_seq": "UPDATE ledger_entries SET node_seq = node_seq # (1 << 20) WHERE idx = {i}",
    "entry (actor)": (
        "UPDATE ledger_entries SET entry = set_byte(entry, 12, get_byte(entry, 12) # 1) WHERE idx = {i}"
    ),
    "entry (data)": (
        "UPDATE ledger_entries SET entry = overlay(entry placing 'PO-3' from position('PO-2' in entry) for 4)"
        " WHERE idx = {i}"
    ),
    "entry (prev)": (
        'UPDATE ledger_entries SET entry = set_byte(entry, position(\'"prev":"\' in entry) + 9,'
        ' get_byte(entry, position(\'"prev":"\' in entry) + 9) # 1) WHERE idx = {i}'
    ),
    "entry (last byte)": (
        "UPDATE ledger_entries SET entry = set_byte(entry, length(entry) - 1, 93) WHERE idx = {i}"
    ),
}


@pytest.mark.parametrize("index", [MIDDLE, HEAD, FIRST, LAST])
@pytest.mark.parametrize("column", list(ONE_BYTE_CHANGES))
def test_one_changed_byte_in_any_column_is_named_at_its_index(
    shop_log: hub_store.HubLog, hub_db: HubDatabase, ledger_cli: LedgerCli, column: str, index: int
) -> None:
    _tamper(hub_db, ONE_BYTE_CHANGES[column].format(i=index))
    result = ledger_cli("ledger", "verify")
    assert result.exit_code == 1, result.stdout
    assert result.stdout.startswith(f"FAILED at index {index}:"), result.stdout


@pytest.mark.parametrize("index", [MIDDLE, HEAD, FIRST, LAST])
def test_a_deleted_row_is_named(
    shop_log: hub_store.HubLog, hub_db: HubDatabase, ledger_cli: LedgerCli, index: int
) -> None:
    _tamper(hub_db, f"DELETE FROM ledger_entries WHERE idx = {index}")
    result = ledger_cli("ledger", "verify")
    assert result.exit_code == 1
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"FAILED at index {index}:"), result.stdout
    assert "missing" in first or "not in the log" in first


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (MIDDLE, 250),  # pt-1 and mt-1 entries far apart
        (MIDDLE, MIDDLE + 1),  # neighbours in the same batch of pt-1
        (HEAD, HEAD + 1),  # the end of pt-1's batch and the start of mt-1's
        (FIRST, LAST),
    ],
)
def test_two_swapped_rows_are_named(
    shop_log: hub_store.HubLog, hub_db: HubDatabase, ledger_cli: LedgerCli, first: int, second: int
) -> None:
    _tamper(
        hub_db,
        f"UPDATE ledger_entries SET idx = -1 WHERE idx = {first}",
        f"UPDATE ledger_entries SET idx = {first} WHERE idx = {second}",
        f"UPDATE ledger_entries SET idx = {second} WHERE idx = -1",
    )
    result = ledger_cli("ledger", "verify")
    assert result.exit_code == 1
    assert result.stdout.startswith(f"FAILED at index {first}:"), result.stdout


@pytest.mark.parametrize(
    ("statement", "index", "why"),
    [
        (
            "UPDATE ledger_heads SET signature = set_byte(signature, 0, get_byte(signature, 0) # 1)"
            " WHERE idx = 159",
            HEAD,
            "signed head #79 does not verify",
        ),
        (
            "UPDATE ledger_subtrees SET hash = set_byte(hash, 5, get_byte(hash, 5) # 1)",
            255,
            "stored subtree (level 8, index 0) differs",
        ),
        (
            "UPDATE ledger_checkpoints SET root = set_byte(root, 0, get_byte(root, 0) # 1) WHERE size = 200",
            199,
            "do not have the root of the checkpoint of size 200",
        ),
        (
            "UPDATE ledger_checkpoints SET note = replace(note, E'\\n200\\n', E'\\n201\\n') WHERE size = 200",
            199,
            "checkpoint of size 200",
        ),
    ],
)
def test_tampered_heads_subtrees_and_checkpoints_are_named(
    shop_log: hub_store.HubLog,
    hub_db: HubDatabase,
    ledger_cli: LedgerCli,
    statement: str,
    index: int,
    why: str,
) -> None:
    _tamper(hub_db, statement)
    result = ledger_cli("ledger", "verify")
    assert result.exit_code == 1
    assert result.stdout.startswith(f"FAILED at index {index}:"), result.stdout
    assert why in result.stdout.splitlines()[0]


@pytest.mark.parametrize("column", ["entry (data)", "node_seq", "idx"])
def test_the_two_process_verifier_names_the_same_index(
    shop_log: hub_store.HubLog, hub_db: HubDatabase, keys: KeyStore, column: str
) -> None:
    _tamper(hub_db, ONE_BYTE_CHANGES[column].format(i=MIDDLE))
    with psycopg.connect(hub_db.owner_url, autocommit=True) as conn:
        report = verify.verify_hub(
            conn, log_key=keys.verifying_key("hub"), admin=keys.verifying_key("ledger-admin"), parallel=True
        )
    assert report.first is not None and report.first.index == MIDDLE


def test_a_full_verify_also_proves_every_entry_canonical(
    shop_log: hub_store.HubLog, hub_db: HubDatabase, ledger_cli: LedgerCli
) -> None:
    assert ledger_cli("ledger", "verify", "--full").exit_code == 0
    _tamper(hub_db, ONE_BYTE_CHANGES["entry (data)"].format(i=MIDDLE))
    result = ledger_cli("ledger", "verify", "--full")
    assert result.exit_code == 1
    assert result.stdout.startswith(f"FAILED at index {MIDDLE}:")


def test_verify_explains_in_json(
    shop_log: hub_store.HubLog, hub_db: HubDatabase, ledger_cli: LedgerCli
) -> None:
    _tamper(hub_db, ONE_BYTE_CHANGES["entry (data)"].format(i=MIDDLE))
    result = ledger_cli("ledger", "verify", "--json")
    assert result.exit_code == 1
    assert f'"index": {MIDDLE}' in result.stdout
