"""The hub's global log: node batches, once each, in one gapless Merkle-tree log with signed checkpoints."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from smart.keys import KeyStore
from smart.ledger import checkpoint, hub_store, merkle, synthetic
from smart.ledger.node_store import NodeLog
from smart.ledger.store import LogStore
from smart.testing.plugin import FreshDatabase

from .conftest import HubDatabase


def _enrol(hub: hub_store.HubLog, keys: KeyStore, *nodes: str) -> None:
    for node in nodes:
        hub.register_node(node, keys.signing_key(node).verifying)


def test_batches_get_gapless_global_indexes_and_a_signed_checkpoint(
    hub: hub_store.HubLog, keys: KeyStore
) -> None:
    _enrol(hub, keys, "pt-1", "mt-1")
    pt = synthetic.chain("pt-1", keys.signing_key("pt-1"), 10, batch_size=4)
    mt = synthetic.chain("mt-1", keys.signing_key("mt-1"), 5, batch_size=5)
    results = [hub.ingest(b) for b in (pt[0], mt[0], pt[1], pt[2])]
    assert [(r.first_index, r.count) for r in results] == [(0, 4), (4, 5), (9, 4), (13, 2)]
    assert hub.size() == 15
    stored = hub.entries(0)
    assert [e.raw for e in stored] == [e.raw for b in (pt[0], mt[0], pt[1], pt[2]) for e in b.entries]
    signed = hub.checkpoint()
    assert signed.checkpoint == checkpoint.Checkpoint(
        hub_store.ORIGIN, 15, merkle.root([merkle.leaf_hash(e.raw) for e in stored])
    )
    assert signed.verify(keys.signing_key("hub").verifying) == []
    assert hub.node_size("pt-1") == 10 and hub.node_size("mt-1") == 5


def test_proofs_from_the_store_verify_for_every_index_and_size(hub: hub_store.HubLog, keys: KeyStore) -> None:
    _enrol(hub, keys, "pt-1")
    for batch in synthetic.chain("pt-1", keys.signing_key("pt-1"), 700, batch_size=233):
        hub.ingest(batch)
    leaves = [merkle.leaf_hash(e.raw) for e in hub.entries(0)]
    for size in (1, 233, 256, 466, 513, 700):
        root = merkle.root(leaves[:size])
        for index in {0, size // 2, size - 1}:
            merkle.verify_inclusion(index, size, leaves[index], hub.inclusion_proof(index, size), root)
        for old in (1, 255, 256, 300):
            if old <= size:
                proof = hub.consistency_proof(old, size)
                merkle.verify_consistency(old, size, merkle.root(leaves[:old]), root, proof)


def test_a_replayed_batch_is_a_no_op(hub: hub_store.HubLog, keys: KeyStore) -> None:
    _enrol(hub, keys, "pt-1")
    batches = synthetic.chain("pt-1", keys.signing_key("pt-1"), 6, batch_size=3)
    hub.ingest(batches[0])
    hub.ingest(batches[1])
    again = hub.ingest(batches[0])
    assert again.count == 0 and hub.size() == 6


def test_a_conflicting_entry_is_refused_and_raises_a_fork_alarm(
    hub: hub_store.HubLog, keys: KeyStore
) -> None:
    _enrol(hub, keys, "pt-1")
    key = keys.signing_key("pt-1")
    hub.ingest(synthetic.chain("pt-1", key, 3, batch_size=3)[0])
    rewritten = synthetic.chain("pt-1", key, 3, batch_size=3)[0]  # same seqs, other timestamps
    with pytest.raises(hub_store.ForkAlarm, match="pt-1 #0 differs"):
        hub.ingest(rewritten)
    assert hub.alarms() == [("pt-1", 0, "#0 differs from the entry already in the log")]
    assert hub.size() == 3


def test_a_batch_after_a_gap_is_refused(hub: hub_store.HubLog, keys: KeyStore) -> None:
    _enrol(hub, keys, "pt-1")
    batches = synthetic.chain("pt-1", keys.signing_key("pt-1"), 6, batch_size=2)
    hub.ingest(batches[0])
    with pytest.raises(hub_store.ChainGap, match="ship from #2"):
        hub.ingest(batches[2])


def test_a_head_signed_by_another_key_is_refused(hub: hub_store.HubLog, keys: KeyStore) -> None:
    _enrol(hub, keys, "pt-1")
    forged = synthetic.chain("pt-1", keys.signing_key("mallory"), 2, batch_size=2)[0]
    with pytest.raises(hub_store.IngestError, match="does not verify"):
        hub.ingest(forged)


@pytest.mark.parametrize("statement", ["UPDATE {t} SET node = node", "DELETE FROM {t}", "TRUNCATE {t}"])
@pytest.mark.parametrize("table", hub_store.TABLES)
def test_the_app_role_cannot_change_the_ledger(hub_db: HubDatabase, table: str, statement: str) -> None:
    with psycopg.connect(hub_db.app_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement.format(t=table).replace("SET node = node", "SET " + _a_column(table)))


@pytest.mark.parametrize(
    "statement",
    ["UPDATE ledger_entries SET idx = idx", "DELETE FROM ledger_entries", "TRUNCATE ledger_entries"],
)
def test_even_the_owner_is_stopped_by_the_append_only_trigger(
    hub: hub_store.HubLog, hub_db: HubDatabase, keys: KeyStore, statement: str
) -> None:
    _enrol(hub, keys, "pt-1")
    hub.ingest(synthetic.chain("pt-1", keys.signing_key("pt-1"), 2, batch_size=2)[0])
    with psycopg.connect(hub_db.owner_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM ledger_entries").fetchone() == (2,)


def _a_column(table: str) -> str:
    column = {
        "ledger_witnesses": "name",
        "ledger_subtrees": "level",
        "ledger_checkpoints": "size",
        "ledger_registrations": "name",
        "ledger_alarm_decisions": "decision",
    }.get(table, "node")
    if table == "ledger_cosignatures":
        column = "size"
    return f"{column} = {column}"


def test_node_and_hub_stores_answer_the_same_reading_methods(
    hub: hub_store.HubLog, keys: KeyStore, tmp_path: Path
) -> None:
    _enrol(hub, keys, "pt-1")
    with NodeLog(tmp_path / "pt-1.sqlite3", node="pt-1", key=keys.signing_key("pt-1")) as node_log:
        for n in range(5):
            node_log.append(kind="qa.result", subject=f"part:PN-{n}", data={"ok": True}, actor="person:jane")
        batch = node_log.batch(0)
        assert batch is not None
        hub.ingest(batch)
        stores: list[LogStore] = [node_log, hub]
        assert all(isinstance(store, LogStore) for store in stores)
        assert [store.entries(1, 4) for store in stores] == [node_log.entries(1, 4)] * 2
        assert [store.size() for store in stores] == [5, 5]


def test_batches_taken_together_judge_each_as_if_it_came_alone_and_share_one_checkpoint(
    hub: hub_store.HubLog, keys: KeyStore
) -> None:
    _enrol(hub, keys, "pt-1", "mt-1")
    pt = synthetic.chain("pt-1", keys.signing_key("pt-1"), 12, batch_size=3)
    mt = synthetic.chain("mt-1", keys.signing_key("mt-1"), 6, batch_size=3)
    hub.ingest(pt[0])
    rewritten = synthetic.chain("mt-1", keys.signing_key("mt-1"), 6, batch_size=3)  # a fork of mt-1
    forged = synthetic.chain("pt-1", keys.signing_key("mallory"), 3, batch_size=3)[0]
    outcomes = hub.ingest_many([pt[0], mt[0], pt[2], pt[1], mt[0], rewritten[1], mt[1], pt[2], forged, pt[3]])
    kinds = [type(o).__name__ for o in outcomes]
    assert kinds == [
        "Ingested",  # pt #0-2 again: a replay, nothing new
        "Ingested",  # mt #0-2
        "ChainGap",  # pt #6-8 before #3-5
        "Ingested",  # pt #3-5
        "Ingested",  # mt #0-2 again, within the same transaction: nothing new
        "ForkAlarm",  # mt #3-5 of another chain
        "Ingested",  # mt #3-5
        "Ingested",  # pt #6-8, now in order
        "IngestError",  # a head signed by another key
        "Ingested",  # pt #9-11
    ]
    taken = [o for o in outcomes if isinstance(o, hub_store.Ingested)]
    assert [(o.first_index, o.count) for o in taken] == [
        (-1, 0),
        (3, 3),
        (6, 3),
        (-1, 0),
        (9, 3),
        (12, 3),
        (15, 3),
    ]
    signed = {o.checkpoint.text() for o in taken if o.checkpoint is not None}
    assert len(signed) == 1 and hub.checkpoint().text() in signed
    stored = hub.entries(0)
    order = [pt[0], mt[0], pt[1], mt[1], pt[2], pt[3]]
    assert [e.raw for e in stored] == [e.raw for b in order for e in b.entries]
    assert hub.checkpoint().checkpoint == checkpoint.Checkpoint(
        hub_store.ORIGIN, 18, merkle.root([merkle.leaf_hash(e.raw) for e in stored])
    )
    assert [(node, seq) for node, seq, _ in hub.alarms()] == [("mt-1", 3)]


def _verifier(owner_url: str, role: str) -> str | None:
    """The role's stored SCRAM verifier (the bootstrap owner may read pg_authid): a new salt at every
    ALTER ROLE … PASSWORD, so it shows whether a migration set the password again."""
    with psycopg.connect(owner_url) as conn:
        row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)).fetchone()
    return None if row is None else row[0]


def test_migrating_a_second_database_leaves_the_app_role_and_the_first_ones_connections_alone(
    hub_db: HubDatabase, database: FreshDatabase
) -> None:
    """The app role is the server's: a migration whose password already signs in does not set it again."""
    other = f"{database.name}_b"
    with psycopg.connect(database.url_for("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{other}"')
    try:
        before = _verifier(hub_db.owner_url, hub_store.APP_ROLE)
        with psycopg.connect(hub_db.app_url) as first:  # the first database's app connection, open
            hub_store.migrate(database.url_for(other), app_password=database.app_password)
            assert _verifier(hub_db.owner_url, hub_store.APP_ROLE) == before
            assert first.execute("SELECT count(*) FROM ledger_entries").fetchone() == (0,)
        with psycopg.connect(hub_db.app_url) as again:  # and a new one still signs in
            assert again.execute("SELECT count(*) FROM ledger_entries").fetchone() == (0,)
    finally:
        with psycopg.connect(database.url_for("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{other}" WITH (FORCE)')


def test_a_role_without_login_or_with_another_password_is_given_the_password(database: FreshDatabase) -> None:
    """Created without login (another schema's migration), or a secret file replaced to rotate it."""
    role = f"app_{database.name}"
    with psycopg.connect(database.url, autocommit=True) as owner:
        hub_store.ensure_role(owner, role, None)
    try:
        with psycopg.connect(database.url) as conn:
            assert not hub_store.signs_in(conn, role, "first")
        hub_store.migrate(database.url, app_role=role, app_password="first")
        with psycopg.connect(database.url) as conn:
            assert hub_store.signs_in(conn, role, "first")
        hub_store.migrate(database.url, app_role=role, app_password="rotated")
        with psycopg.connect(database.url) as conn:
            assert hub_store.signs_in(conn, role, "rotated") and not hub_store.signs_in(conn, role, "first")
    finally:
        with psycopg.connect(database.url, autocommit=True) as owner:
            owner.execute(f'DROP OWNED BY "{role}"')
            owner.execute(f'DROP ROLE "{role}"')
