"""A node's own log: durable appends, one writer, read by range, every entry covered by a signed head."""

from __future__ import annotations

import base64
import itertools
import json
import sqlite3
from pathlib import Path

import pytest

from smart import ledger
from smart.keys import KeyStore


def _open(tmp_path: Path, node: str = "pt-1", **kwargs: float) -> ledger.NodeLog:
    keys = KeyStore(tmp_path / "keys")
    return ledger.NodeLog(
        tmp_path / "ledger" / f"{node}.sqlite3", node=node, key=keys.signing_key(node), **kwargs
    )


def _record(log: ledger.NodeLog, n: int) -> list[ledger.Entry]:
    return [
        log.append(
            kind="gate.decision", subject=f"part:PN-{i}", data={"allow": i % 2 == 0}, actor="person:jane"
        )
        for i in range(n)
    ]


def test_appended_entries_form_a_gapless_linked_chain(tmp_path: Path) -> None:
    with _open(tmp_path) as log:
        entries = _record(log, 5)
    assert [e.node_seq for e in entries] == [0, 1, 2, 3, 4]
    assert entries[0].prev == ledger.GENESIS
    assert all(later.prev == earlier.hash for earlier, later in itertools.pairwise(entries))


def test_entries_are_on_disk_when_append_returns(tmp_path: Path) -> None:
    log = _open(tmp_path)
    entry = _record(log, 1)[0]
    with sqlite3.connect(log.path) as other:
        assert other.execute("SELECT entry FROM ledger_entries WHERE node_seq = 0").fetchone()[0] == entry.raw
    log.close()


def test_entries_are_read_back_by_sequence_range(tmp_path: Path) -> None:
    with _open(tmp_path) as log:
        entries = _record(log, 10)
        assert log.entries(3, 6) == entries[3:6]
        assert log.entries(8) == entries[8:]
        assert log.size() == 10


def test_a_reopened_log_continues_its_chain(tmp_path: Path) -> None:
    with _open(tmp_path) as log:
        first = _record(log, 3)
    with _open(tmp_path) as log:
        more = log.append(kind="qa.result", subject="part:PN-9", data={}, actor="person:jane")
    assert (more.node_seq, more.prev) == (3, first[-1].hash)


def test_only_one_writer_per_node(tmp_path: Path) -> None:
    with _open(tmp_path), pytest.raises(ledger.NodeLogBusy, match="already open"):
        _open(tmp_path)


def test_a_log_refuses_to_be_opened_as_another_node(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "keys")
    path = tmp_path / "shared.sqlite3"
    ledger.NodeLog(path, node="pt-1", key=keys.signing_key("pt-1")).close()
    with pytest.raises(ledger.NodeLogError, match="belongs to node 'pt-1'"):
        ledger.NodeLog(path, node="mt-1", key=keys.signing_key("mt-1"))


def test_a_shipped_batch_ends_with_a_head_signed_by_the_node(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "keys")
    with _open(tmp_path, head_interval=3600) as log:
        entries = _record(log, 7)
        batch = log.batch(2, limit=4)
    assert batch is not None
    batch.check()
    assert [e.node_seq for e in batch.entries] == [2, 3, 4, 5]
    assert (batch.head.node_seq, batch.head.entry_hash) == (5, entries[5].hash)
    assert batch.head.verify(keys.verifying_key("pt-1"))


def test_the_head_is_signed_every_few_seconds_while_appending(tmp_path: Path) -> None:
    with _open(tmp_path, head_interval=0.0) as log:
        entries = _record(log, 3)
        heads = log.heads()
    assert [h.node_seq for h in heads] == [0, 1, 2]
    assert heads[-1].entry_hash == entries[-1].hash


def test_closing_the_log_signs_its_last_entry(tmp_path: Path) -> None:
    with _open(tmp_path, head_interval=3600) as log:
        entries = _record(log, 4)
    with _open(tmp_path) as log:
        head = log.head()
    assert head is not None and (head.node_seq, head.entry_hash) == (3, entries[-1].hash)


def test_a_shipped_batch_survives_the_wire(tmp_path: Path) -> None:
    with _open(tmp_path) as log:
        _record(log, 3)
        batch = log.batch(0)
    assert batch is not None
    assert ledger.Batch.from_bytes(batch.to_bytes()) == batch


def test_a_shipment_carries_the_stored_bytes_verbatim_after_one_json_line(tmp_path: Path) -> None:
    with _open(tmp_path) as log:
        entries = _record(log, 3)
        shipment = log.shipment(0)
    assert shipment is not None
    line, _, rest = shipment.payload.partition(b"\n")
    assert b"entries" not in line and rest == b"".join(e.raw for e in entries)
    assert ledger.Batch.from_bytes(shipment.payload).entries == tuple(entries)


def test_a_batch_whose_lengths_do_not_add_up_is_refused(tmp_path: Path) -> None:
    with _open(tmp_path) as log:
        _record(log, 2)
        shipment = log.shipment(0)
    assert shipment is not None
    with pytest.raises(ledger.BatchError, match="lengths"):
        ledger.Batch.from_bytes(shipment.payload + b" ")
    line, _, rest = shipment.payload.partition(b"\n")
    with pytest.raises(ledger.BatchError):  # one byte moved from the first entry to the second
        sizes = [int(n) for n in line.split(b'"sizes":[')[1].split(b"]")[0].split(b",")]
        moved = line.replace(f"[{sizes[0]},{sizes[1]}]".encode(), f"[{sizes[0] - 1},{sizes[1] + 1}]".encode())
        ledger.Batch.from_bytes(moved + b"\n" + rest)


def test_a_batch_in_the_first_wire_form_is_still_read(tmp_path: Path) -> None:
    """Batches shipped in base64 before the hub's upgrade may still wait in its stream."""
    with _open(tmp_path) as log:
        _record(log, 3)
        batch = log.batch(0)
    assert batch is not None
    first_form = json.dumps(
        {
            "node": batch.node,
            "head": batch.head.to_json(),
            "entries": [base64.b64encode(e.raw).decode() for e in batch.entries],
        },
        separators=(",", ":"),
    ).encode()
    assert ledger.Batch.from_bytes(first_form) == batch


def test_a_reader_beside_the_writer_hands_out_entries_only_through_a_signed_head(tmp_path: Path) -> None:
    with _open(tmp_path, head_interval=3600) as log:
        entries = _record(log, 5)
        log.sign_head()  # covers #0..#4
        _record(log, 2)  # #5, #6: not covered by a head yet
        with ledger.NodeLogReader(log.path) as reader:  # the writer still holds its lock
            assert reader.node == "pt-1"
            batch = reader.signed_batch(0, limit=100)
            assert batch is not None and batch.entries == tuple(entries)
            batch.check()
            assert reader.signed_batch(5) is None
            assert reader.head() == log.head()


def test_the_own_check_goes_on_from_the_last_sound_entry_and_names_the_first_bad_one(tmp_path: Path) -> None:
    log = _open(tmp_path)
    try:
        _record(log, 10)
        log.sign_head()
        first = log.check()
        assert (first.verified, first.problem) == (9, None)
        entries = _record(log, 5)
        later = log.check(first.verified + 1, first.last_hash)
        assert (later.verified, later.problem, later.last_hash) == (14, None, entries[-1].hash)
        with sqlite3.connect(log.path) as db:
            (raw,) = db.execute("SELECT entry FROM ledger_entries WHERE node_seq = 12").fetchone()
            db.execute(
                "UPDATE ledger_entries SET entry = ? WHERE node_seq = 12", (raw.replace(b"PN-2", b"PN-3"),)
            )
        damaged = log.check(first.verified + 1, first.last_hash)
        assert damaged.verified == 11
        assert damaged.problem is not None and damaged.problem.startswith(
            "pt-1#12: does not match its stored hash"
        )
        assert log.check(0, ledger.GENESIS).problem == damaged.problem
    finally:
        log.close()
