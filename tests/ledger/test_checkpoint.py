"""Checkpoints are C2SP signed notes; witnesses cosign only one consistent history, and so does the hub.

The signed-note known answer is the PeterNeumann example of Go's reference
implementation (golang.org/x/mod/sumdb/note, note_test.go), which the C2SP
signed-note spec was written from: Ed25519 is deterministic, so the same key
and text must give the same signature line byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from smart.keys import KeyStore, SigningKey
from smart.ledger import batch, checkpoint, hub_store, merkle, synthetic, witness

from .conftest import HubDatabase, enrol

GO_SKEY_SEED = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"  # PRIVATE+KEY+PeterNeumann+c74f20a3+…
GO_TEXT = (
    b"If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
)
GO_LINE = (
    "\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_note_signatures_match_the_c2sp_reference_example() -> None:
    seed = base64.b64decode(GO_SKEY_SEED)[1:]  # first byte is the algorithm (1 = Ed25519)
    key = SigningKey("PeterNeumann", Ed25519PrivateKey.from_private_bytes(seed))
    assert checkpoint.note_key_hash(key.name, key.verifying.raw).hex() == "c74f20a3"
    line = checkpoint.NoteSignature(
        key.name, checkpoint.note_key_hash(key.name, key.verifying.raw), key.sign(GO_TEXT)
    ).line()
    assert line == GO_LINE


def test_a_checkpoint_is_a_c2sp_tlog_checkpoint_note(keys: KeyStore) -> None:
    hub = keys.signing_key("hub")
    point = checkpoint.Checkpoint("smart.local/ledger", 8, bytes(range(32)))
    signed = checkpoint.SignedCheckpoint(point, (checkpoint.sign(point, hub),))
    lines = signed.text().split("\n")
    assert lines[:4] == ["smart.local/ledger", "8", base64.b64encode(bytes(range(32))).decode(), ""]
    assert lines[4].startswith("\u2014 hub ") and lines[5] == ""
    raw = base64.b64decode(lines[4].split(" ")[2])
    assert raw[:4] == hashlib.sha256(b"hub\n\x01" + hub.verifying.raw).digest()[:4]
    assert hub.verifying.verify(raw[4:], point.body())
    assert checkpoint.SignedCheckpoint.parse(signed.text()) == signed


def test_a_cosignature_follows_c2sp_tlog_cosignature_v1(keys: KeyStore) -> None:
    station = keys.signing_key("witness-pt-1")
    point = checkpoint.Checkpoint("smart.local/ledger", 8, bytes(32))
    line = checkpoint.cosign(point, station, timestamp=1_700_000_000)
    raw = base64.b64decode(line.line().split(" ")[2])
    assert raw[:4] == hashlib.sha256(b"witness-pt-1\n\x04" + station.verifying.raw).digest()[:4]
    assert int.from_bytes(raw[4:12], "big") == 1_700_000_000
    message = b"cosignature/v1\ntime 1700000000\n" + point.body()
    assert station.verifying.verify(raw[12:], message)


def _pt_1(hub: hub_store.HubLog, keys: KeyStore) -> list[batch.Batch]:
    """pt-1's chain in batches of 20, the first six (120 entries) already in the log."""
    enrol(hub, keys, "pt-1")
    batches = synthetic.chain("pt-1", keys.signing_key("pt-1"), 200, batch_size=20)
    for shipped in batches[:6]:
        hub.ingest(shipped)
    return batches


def _rewritten(size: int, hub: SigningKey) -> tuple[checkpoint.SignedCheckpoint, list[bytes]]:
    """A different history of ``size`` entries signed with the hub's own key (a compromised hub)."""
    leaves = [merkle.leaf_hash(b"forged %d" % n) for n in range(size)]
    point = checkpoint.Checkpoint(hub_store.ORIGIN, size, merkle.root(leaves))
    return checkpoint.SignedCheckpoint(point, (checkpoint.sign(point, hub),)), leaves


def test_a_witness_refuses_a_rewritten_log_and_accepts_the_next_consistent_checkpoint(
    hub: hub_store.HubLog, keys: KeyStore
) -> None:
    batches = _pt_1(hub, keys)
    station = keys.signing_key("witness-pt-1")
    hub.register_witness(station.verifying)
    seen = witness.Witness(station, log_key=keys.signing_key("hub").verifying, origin=hub_store.ORIGIN)
    first = hub.witness(seen)
    assert first.verify(keys.signing_key("hub").verifying, [station.verifying]) == ["witness-pt-1"]

    forged, leaves = _rewritten(150, keys.signing_key("hub"))

    def forged_subtree(level: int, index: int) -> bytes:
        return merkle.root(leaves[index << level : (index + 1) << level])

    proof = merkle.prove(merkle.consistency_ranges(120, 150), forged_subtree)
    with pytest.raises(witness.WitnessRefusal, match="not consistent with size 120"):
        seen.cosign(forged, proof)
    assert seen.latest == first.checkpoint

    hub.ingest(batches[6])
    second = hub.witness(seen)
    assert second.checkpoint.size == 140
    assert second.verify(keys.signing_key("hub").verifying, [station.verifying]) == ["witness-pt-1"]


def test_a_witness_refuses_a_checkpoint_the_log_did_not_sign(keys: KeyStore) -> None:
    station = keys.signing_key("witness-pt-1")
    seen = witness.Witness(station, log_key=keys.signing_key("hub").verifying, origin=hub_store.ORIGIN)
    forged, _ = _rewritten(4, keys.signing_key("mallory"))
    with pytest.raises(witness.WitnessRefusal, match="not signed by the log"):
        seen.cosign(forged, [])


def test_a_witness_remembers_what_it_saw_across_restarts(keys: KeyStore, tmp_path: Path) -> None:
    state = tmp_path / "witness.json"
    hub = keys.signing_key("hub")
    real, _ = _rewritten(10, hub)
    w = witness.Witness(
        keys.signing_key("witness-pt-1"), log_key=hub.verifying, origin=hub_store.ORIGIN, state_path=state
    )
    w.cosign(real, [])
    again = witness.Witness(
        keys.signing_key("witness-pt-1"), log_key=hub.verifying, origin=hub_store.ORIGIN, state_path=state
    )
    assert again.latest == real.checkpoint
    other = checkpoint.Checkpoint(hub_store.ORIGIN, 10, bytes(32))
    with pytest.raises(witness.WitnessRefusal):
        again.cosign(checkpoint.SignedCheckpoint(other, (checkpoint.sign(other, hub),)), [])


def test_the_hub_signer_refuses_a_checkpoint_inconsistent_with_its_last(keys: KeyStore) -> None:
    hub = keys.signing_key("hub")
    real_leaves = [merkle.leaf_hash(b"entry %d" % n) for n in range(10)]
    last = checkpoint.Checkpoint(hub_store.ORIGIN, 10, merkle.root(real_leaves))
    signer = checkpoint.CheckpointSigner(hub, origin=hub_store.ORIGIN, last=last)
    forged, leaves = _rewritten(12, hub)

    def forged_subtree(level: int, index: int) -> bytes:
        return merkle.root(leaves[index << level : (index + 1) << level])

    with pytest.raises(checkpoint.InconsistentCheckpoint, match="not consistent with the signed size 10"):
        signer.sign(forged.checkpoint, merkle.prove(merkle.consistency_ranges(10, 12), forged_subtree))
    grown = [*real_leaves, merkle.leaf_hash(b"entry 10"), merkle.leaf_hash(b"entry 11")]

    def subtree(level: int, index: int) -> bytes:
        return merkle.root(grown[index << level : (index + 1) << level])

    good = checkpoint.Checkpoint(hub_store.ORIGIN, 12, merkle.root(grown))
    signed = signer.sign(good, merkle.prove(merkle.consistency_ranges(10, 12), subtree))
    assert signed.verify(hub.verifying) == []


def test_the_hub_will_not_extend_a_checkpoint_whose_tree_was_rewritten(
    hub: hub_store.HubLog, hub_db: HubDatabase, keys: KeyStore
) -> None:
    batches = _pt_1(hub, keys)
    with psycopg.connect(hub_db.owner_url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "UPDATE ledger_checkpoints SET frontier = set_byte(frontier, 0, get_byte(frontier, 0) # 1)"
            " WHERE size = 120"
        )
    with pytest.raises(checkpoint.InconsistentCheckpoint, match="refusing to sign size 140"):
        hub.ingest(batches[6])
    assert hub.size() == 120
