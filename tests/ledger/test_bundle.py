"""A proof bundle proves one entry offline; change any byte of it and verification says which part broke."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smart.keys import KeyStore
from smart.ledger import bundle, hub_store, trust

from .conftest import WITNESSES, LedgerCli


def _trusted(keys: KeyStore) -> trust.Trust:
    witnesses = {name: keys.verifying_key(name) for name in WITNESSES}
    return trust.Trust(keys.verifying_key("hub"), hub_store.ORIGIN, witnesses)


def test_a_bundle_proves_its_entry_offline(cosigned: hub_store.HubLog, keys: KeyStore) -> None:
    made = cosigned.proof_bundle(137).to_bytes()
    proved = bundle.verify(made, _trusted(keys), min_witnesses=2)
    assert (proved.index, proved.size, proved.entry.node, proved.entry.node_seq) == (137, 360, "pt-1", 57)
    assert sorted(proved.witnesses) == sorted(WITNESSES)
    body = json.loads(made)
    assert set(body) == {"format", "index", "entry", "inclusion_proof", "checkpoint", "key_ids"}
    assert body["key_ids"]["log"] == keys.verifying_key("hub").key_id


def test_smart_verify_checks_a_bundle_written_by_smart_ledger_proof(
    cosigned: hub_store.HubLog, ledger_cli: LedgerCli, tmp_path: Path
) -> None:
    proof, trusted = tmp_path / "proof.json", tmp_path / "keys.json"
    assert ledger_cli("ledger", "proof", "137", "--out", str(proof)).exit_code == 0
    assert ledger_cli("ledger", "keys", "--out", str(trusted)).exit_code == 0
    result = ledger_cli("verify", str(proof), "--keys", str(trusted), "--min-witnesses", "2")
    assert result.exit_code == 0, result.stdout
    assert result.stdout.startswith("ok: pt-1#57 (gate.decision")
    assert "cosigned by witness-mt-1, witness-pt-1" in result.stdout

    damaged = bytearray(proof.read_bytes())
    damaged[damaged.index(b'"index":137') + 10] ^= 1  # 137 → 136
    proof.write_bytes(bytes(damaged))
    result = ledger_cli("verify", str(proof), "--keys", str(trusted))
    assert result.exit_code == 1
    assert result.stdout.startswith("FAILED: inclusion_proof:")


def _regions(raw: bytes) -> list[tuple[int, int, str]]:
    """Byte spans of each top-level value in the canonical bundle."""
    names = sorted(json.loads(raw))
    starts = [raw.index(b'"%s":' % name.encode()) for name in names]
    spans = []
    for n, name in enumerate(names):
        value_start = starts[n] + len(name) + 3
        value_end = (starts[n + 1] - 1) if n + 1 < len(names) else len(raw) - 1
        spans.append((value_start, value_end, name))
    return spans


ACCEPTABLE = {
    "checkpoint": ("checkpoint",),
    "entry": ("entry", "inclusion_proof"),
    "format": ("format",),
    "inclusion_proof": ("inclusion_proof",),
    "index": ("index", "inclusion_proof"),
    "key_ids": ("key_ids",),
}


def test_one_changed_byte_anywhere_fails_and_names_the_part(
    cosigned: hub_store.HubLog, keys: KeyStore
) -> None:
    """A changed byte fails naming its part, or (C2SP: lines of unknown keys are ignored) leaves
    the same proof with at most fewer witnesses: never a different entry, index or size."""
    raw = cosigned.proof_bundle(137).to_bytes()
    trusted = _trusted(keys)
    genuine = bundle.verify(raw, trusted)
    regions = _regions(raw)
    for position in range(len(raw)):
        damaged = bytearray(raw)
        damaged[position] ^= 0x01
        region = next((name for start, end, name in regions if start <= position < end), None)
        try:
            proved = bundle.verify(bytes(damaged), trusted)
        except bundle.BundleError as refused:
            part = refused.part
            allowed = ("bundle",) + (ACCEPTABLE[region] if region else ())
            assert part.startswith(allowed), f"byte {position} in {region}: {refused}"
            assert str(refused).startswith(part + ":")
            continue
        assert region in ("checkpoint", "key_ids"), f"byte {position} in {region} went unnoticed"
        assert (proved.entry, proved.index, proved.size) == (genuine.entry, genuine.index, genuine.size)
        assert set(proved.witnesses) < set(genuine.witnesses) or region == "key_ids"


def test_a_bundle_needs_the_trusted_log_key_and_counts_only_trusted_witnesses(
    cosigned: hub_store.HubLog, keys: KeyStore
) -> None:
    raw = cosigned.proof_bundle(5).to_bytes()
    no_witnesses = trust.Trust(keys.verifying_key("hub"), hub_store.ORIGIN)
    assert bundle.verify(raw, no_witnesses).witnesses == ()  # their lines are ignored, not fatal
    with pytest.raises(bundle.BundleError, match=r"checkpoint: cosigned by 0 distinct trusted witnesses; 1"):
        bundle.verify(raw, no_witnesses, min_witnesses=1)
    other_log = trust.Trust(keys.verifying_key("witness-pt-1"), hub_store.ORIGIN)
    with pytest.raises(bundle.BundleError, match=r"key_ids\.log: the bundle names log key"):
        bundle.verify(raw, other_log)


def test_smart_ledger_head_prints_the_cosigned_checkpoint(
    cosigned: hub_store.HubLog, ledger_cli: LedgerCli
) -> None:
    result = ledger_cli("ledger", "head")
    assert result.exit_code == 0
    lines = result.stdout.split("\n")
    assert lines[:2] == [hub_store.ORIGIN, "360"]
    assert [line.split(" ")[1] for line in lines[4:-1]] == ["hub", *sorted(WITNESSES)]


def test_smart_ledger_tail_shows_recent_entries_for_people(
    cosigned: hub_store.HubLog, ledger_cli: LedgerCli
) -> None:
    result = ledger_cli("ledger", "tail", "-n", "3", "--node", "pt-1")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert (
        lines[-1].split()[0] == "279"
        and " pt-1#119  gate.decision  part:PN-0119/SN-0000119  by person:op-0" in lines[-1]
    )
