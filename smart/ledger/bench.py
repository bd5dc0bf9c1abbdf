"""The ledger benchmark: hub ingest against a plain COPY, node durable appends, verifying a million entries.

Each figure is measured next to a baseline taken in the same run on the
same machine, so the ratio means something even where absolute numbers do
not travel: hub ingest (chained, signature-checked, Merkle-integrated,
checkpointed, batched with COPY) against a COPY of the same rows, in the
same batches, into a table with no keys, no constraints and no checks.
"""

from __future__ import annotations

import itertools
import secrets
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
import psycopg
from psycopg import sql

from smart.keys import KeyStore
from smart.ledger import hub_store, synthetic, trust, verify
from smart.ledger.batch import Batch
from smart.ledger.entry import Entry
from smart.ledger.node_store import NodeLog

NODES = ("pt-1", "mt-1", "ut-1", "ht-1", "cp-1", "sr-1")


@dataclass(frozen=True, slots=True)
class Figures:
    ingest_per_s: float
    plain_insert_per_s: float
    ingest_time_ratio: float
    node_appends_per_s: float
    raw_sqlite_commits_per_s: float
    verify_1m_s: float
    #: Reading the same batches off the wire as the intake does (every entry proved RFC 8785
    #: canonical at the door), beside the same read without that proof, alternating.
    wire_read_per_s: float
    wire_read_unchecked_per_s: float
    verify_entries: int
    ingest_entries: int
    batch_size: int

    def as_json(self) -> dict[str, float | int]:
        return asdict(self)


def _fresh_database(admin_url: str) -> tuple[str, Callable[[], None]]:
    name = f"bench_{secrets.token_hex(6)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(admin_url, dbname=name)

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    return url, drop


def _interleave(chains: list[Iterator[Batch]]) -> Iterator[Batch]:
    """Batches of all nodes in arrival order: one from each node in turn, made as they are needed."""
    for round_ in itertools.zip_longest(*chains):
        yield from (batch for batch in round_ if batch is not None)


def _six_nodes(
    url: str, keys: KeyStore, entries: int, batch_size: int
) -> tuple[hub_store.HubLog, Iterator[Batch]]:
    per_node = entries // len(NODES)
    chains = [synthetic.fast_chain(n, keys.signing_key(n), per_node, batch_size=batch_size) for n in NODES]
    hub = hub_store.HubLog.connect(
        url, key=keys.signing_key(hub_store.HUB_KEY), admin=keys.signing_key(trust.ADMIN_KEY)
    )
    for node in NODES:
        hub.register_node(node, keys.signing_key(node).verifying)
    return hub, _interleave(chains)


def _build_log(url: str, keys: KeyStore, entries: int, batch_size: int) -> None:
    """Ingest ``entries`` from six nodes through the real path."""
    hub, batches = _six_nodes(url, keys, entries, batch_size)
    with hub:
        for batch in batches:
            hub.ingest(batch)


def measure_wire_read(keys: KeyStore, *, entries: int, batch_size: int) -> tuple[float, float]:
    """(entries/s read with the canonical check, entries/s read without it) of the same batches."""
    per_node = entries // len(NODES)
    chains = [synthetic.fast_chain(n, keys.signing_key(n), per_node, batch_size=batch_size) for n in NODES]
    checked_s = unchecked_s = 0.0
    count = 0
    for batch in _interleave(chains):
        payload = batch.to_bytes()
        started = time.perf_counter()
        Batch.from_bytes(payload)
        checked_s += time.perf_counter() - started
        started = time.perf_counter()
        line, _, rest = payload.partition(b"\n")
        sizes, at = orjson.loads(line)["sizes"], 0
        for size in sizes:
            Entry.from_bytes(rest[at : at + size], canonical=False)
            at += size
        unchecked_s += time.perf_counter() - started
        count += len(batch.entries)
    return count / checked_s, count / unchecked_s


def measure_ingest(admin_url: str, keys: KeyStore, *, entries: int, batch_size: int) -> tuple[float, float]:
    """(hub ingest entries/s, plain COPY entries/s) for the same rows in the same batches.

    The two alternate batch by batch, each committing its own transaction,
    so both meet the same disk and the same neighbours on a shared machine.
    """
    url, drop = _fresh_database(admin_url)
    try:
        hub_store.migrate(url)
        hub, batches = _six_nodes(url, keys, entries, batch_size)
        ingest_s = plain_s = 0.0
        count = 0
        copy_sql = "COPY plain_entries (idx, node, node_seq, entry) FROM STDIN (FORMAT BINARY)"
        with hub, psycopg.connect(url, autocommit=True) as plain:
            plain.execute("CREATE TABLE plain_entries (idx bigint, node text, node_seq bigint, entry bytea)")
            for batch in batches:
                started = time.perf_counter()
                done = hub.ingest(batch)
                ingest_s += time.perf_counter() - started
                rows = [
                    (done.first_index + i, e.node, e.node_seq, e.raw) for i, e in enumerate(batch.entries)
                ]
                started = time.perf_counter()
                with plain.transaction(), plain.cursor() as cur, cur.copy(copy_sql) as copy:
                    copy.set_types(["int8", "text", "int8", "bytea"])
                    for row in rows:
                        copy.write_row(row)
                plain_s += time.perf_counter() - started
                count += done.count
        return count / ingest_s, count / plain_s
    finally:
        drop()


def measure_node_appends(directory: Path, keys: KeyStore, *, appends: int) -> tuple[float, float]:
    """(durable NodeLog appends/s, raw SQLite FULL-sync single-row commits/s) in ``directory``.

    The two alternate in runs of 100, so both meet the same disk.
    """
    raw = sqlite3.connect(directory / "raw.sqlite3", isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=FULL")
    raw.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
    payload = b"x" * 300
    raw_s = node_s = 0.0
    with NodeLog(directory / "node.sqlite3", node="pt-1", key=keys.signing_key("pt-1")) as node_log:
        for start in range(0, appends, 100):
            run = range(start, min(start + 100, appends))
            started = time.perf_counter()
            for k in run:
                raw.execute("INSERT INTO t VALUES (?, ?)", (k, payload))
            raw_s += time.perf_counter() - started
            started = time.perf_counter()
            for n in run:
                node_log.append(
                    kind="gate.decision",
                    subject=f"part:PN-{n % 977:04d}/SN-{n:07d}",
                    data={
                        "allow": True,
                        "equipment": "pt-1-tank-1",
                        "reasons": ["badge ok", "certified level 2"],
                    },
                    actor="person:op-1",
                    contract="3f1c9a0e5b7d2c4a",
                )
            node_s += time.perf_counter() - started
    raw.close()
    return appends / node_s, appends / raw_s


def measure_verify(admin_url: str, keys: KeyStore, *, entries: int, batch_size: int) -> float:
    """Seconds for ``smart ledger verify``'s full check of a log of ``entries`` built by real ingest."""
    url, drop = _fresh_database(admin_url)
    try:
        hub_store.migrate(url)
        _build_log(url, keys, entries, batch_size)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            started = time.perf_counter()
            report = verify.verify_hub(
                conn, log_key=keys.verifying_key(hub_store.HUB_KEY), admin=keys.verifying_key(trust.ADMIN_KEY)
            )
            seconds = time.perf_counter() - started
        if not report.ok:
            raise AssertionError(f"benchmark log does not verify: {report.first}")
        return seconds
    finally:
        drop()


def run(
    admin_url: str,
    *,
    ingest_entries: int = 120_000,
    verify_entries: int = 1_000_000,
    batch_size: int = 1000,
    appends: int = 3000,
    progress: Callable[[str], None] = lambda _: None,
) -> Figures:
    """Every figure of ``smart bench ledger`` against the PostgreSQL server at ``admin_url``."""
    with tempfile.TemporaryDirectory(prefix="smart-bench-ledger-") as tmp:
        keys = KeyStore(Path(tmp) / "keys")
        progress(f"hub ingest of {ingest_entries} entries vs plain COPY …")
        ingest, plain = measure_ingest(admin_url, keys, entries=ingest_entries, batch_size=batch_size)
        progress(f"reading {ingest_entries} entries off the wire, with and without the canonical check …")
        wire, unchecked = measure_wire_read(keys, entries=ingest_entries, batch_size=batch_size)
        progress(f"node durable appends ({appends}) …")
        node_rate, raw_rate = measure_node_appends(Path(tmp), keys, appends=appends)
        progress(f"building and verifying a log of {verify_entries} entries …")
        verify_s = measure_verify(admin_url, keys, entries=verify_entries, batch_size=5000)
    count = ingest_entries // len(NODES) * len(NODES)
    return Figures(
        ingest_per_s=round(ingest, 1),
        plain_insert_per_s=round(plain, 1),
        ingest_time_ratio=round(plain / ingest, 3),
        node_appends_per_s=round(node_rate, 1),
        raw_sqlite_commits_per_s=round(raw_rate, 1),
        wire_read_per_s=round(wire, 1),
        wire_read_unchecked_per_s=round(unchecked, 1),
        verify_1m_s=round(verify_s * 1_000_000 / (verify_entries // len(NODES) * len(NODES)), 3),
        verify_entries=verify_entries // len(NODES) * len(NODES),
        ingest_entries=count,
        batch_size=batch_size,
    )
