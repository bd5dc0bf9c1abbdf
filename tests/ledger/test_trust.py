"""Nobody but the log signs for the log, and nothing the app role inserts is trusted by any verifier.

Tried as an attacker would: a checkpoint signed by a station's node key, by a witness key, by
another hub service's node key; a witness's cosignature repeated to fake a quorum; a size line in
another script's digits; keys and cosignatures inserted into the database as ``smart_app``.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
import rfc8785

from smart.keys import KeyStore, SigningKey
from smart.ledger import bundle, checkpoint, hub_store, merkle, synthetic, trust
from smart.ledger.entry import GENESIS, Entry

from .conftest import WITNESSES, HubDatabase, LedgerCli


def _trust(keys: KeyStore, *witnesses: str) -> trust.Trust:
    return trust.Trust(
        keys.verifying_key("hub"), hub_store.ORIGIN, {name: keys.verifying_key(name) for name in witnesses}
    )


def _forged(signer: SigningKey, *, as_name: str | None = None, log_key_id: str | None = None) -> bytes:
    """A one-entry "log" saying a refused person was let in at the gate, checkpointed by ``signer``."""
    entry = Entry.create(
        node="pt-1",
        node_seq=0,
        prev=GENESIS,
        kind="gate.decision",
        subject="person:refused-7",
        data={"outcome": "allow"},
        actor="person:refused-7",
    )
    point = checkpoint.Checkpoint(hub_store.ORIGIN, 1, merkle.root([merkle.leaf_hash(entry.raw)]))
    key = SigningKey(as_name, signer.private) if as_name else signer
    signed = checkpoint.SignedCheckpoint(point, (checkpoint.sign(point, key),))
    return bundle.ProofBundle(0, entry.raw, (), signed, log_key_id or signer.key_id, ()).to_bytes()


@pytest.mark.parametrize("signer", ["pt-1", "witness-pt-1", "smart-id-ledger"])
def test_bundles_forged_with_a_node_a_witness_or_another_services_key_are_refused(
    cosigned: hub_store.HubLog, keys: KeyStore, ledger_cli: LedgerCli, tmp_path: Path, signer: str
) -> None:
    cosigned.register_node("smart-id", keys.signing_key("smart-id-ledger").verifying)
    trust_file = tmp_path / "trust.json"
    assert ledger_cli("ledger", "keys", "--out", str(trust_file)).exit_code == 0
    exported = trust.load(trust_file)
    assert signer in {k.name for k in (*exported.witnesses.values(), *exported.nodes.values())}

    key = keys.signing_key(signer)
    named_own = tmp_path / "own.json"
    named_own.write_bytes(_forged(key))
    with pytest.raises(bundle.BundleError, match=r"^key_ids\.log: the bundle names log key"):
        bundle.verify(named_own.read_bytes(), exported)
    result = ledger_cli("verify", str(named_own), "--keys", str(trust_file))
    assert (result.exit_code, result.stdout.split(":")[:2]) == (1, ["FAILED", " key_ids.log"])

    # The same, passing itself off as the hub: its line is then an unknown key's, and the log's is missing.
    posing = tmp_path / "posing.json"
    posing.write_bytes(_forged(key, as_name="hub", log_key_id=keys.verifying_key("hub").key_id))
    with pytest.raises(bundle.BundleError, match=r"^checkpoint: checkpoint is not signed by the log key hub"):
        bundle.verify(posing.read_bytes(), exported)
    result = ledger_cli("verify", str(posing), "--keys", str(trust_file))
    assert result.exit_code == 1 and "not signed by the log key hub" in result.stdout

    genuine = tmp_path / "genuine.json"
    genuine.write_bytes(cosigned.proof_bundle(7).to_bytes())
    result = ledger_cli("verify", str(genuine), "--keys", str(trust_file), "--min-witnesses", "2")
    assert result.exit_code == 0, result.stdout


def test_a_checkpoint_of_another_origin_is_refused(keys: KeyStore) -> None:
    raw = _forged(keys.signing_key("hub"))
    other = trust.Trust(keys.verifying_key("hub"), "example.com/another-log")
    with pytest.raises(bundle.BundleError, match=r"is for log 'smart\.local/ledger', not the trusted log"):
        bundle.verify(raw, other)


def _with_signatures(made: bundle.ProofBundle, lines: tuple[checkpoint.NoteSignature, ...]) -> bytes:
    signed = checkpoint.SignedCheckpoint(made.checkpoint.checkpoint, lines)
    return bundle.ProofBundle(
        made.index, made.entry, made.inclusion_proof, signed, made.log_key_id, made.witness_key_ids
    ).to_bytes()


def test_a_repeated_cosignature_counts_once_and_an_unknown_keys_line_is_ignored(
    cosigned: hub_store.HubLog, keys: KeyStore, ledger_cli: LedgerCli, tmp_path: Path
) -> None:
    made = cosigned.proof_bundle(137)
    log_line, *cosignatures = made.checkpoint.signatures
    one = next(s for s in cosignatures if s.name == "witness-pt-1")
    repeated = tmp_path / "repeated.json"
    repeated.write_bytes(_with_signatures(made, (log_line, one, one, one)))
    trust_file = tmp_path / "trust.json"
    assert ledger_cli("ledger", "keys", "--out", str(trust_file)).exit_code == 0

    assert bundle.verify(repeated.read_bytes(), _trust(keys, *WITNESSES)).witnesses == ("witness-pt-1",)
    result = ledger_cli("verify", str(repeated), "--keys", str(trust_file), "--min-witnesses", "3")
    assert result.exit_code == 1
    assert "cosigned by 1 distinct trusted witnesses; 3 required" in result.stdout
    assert (
        ledger_cli("verify", str(repeated), "--keys", str(trust_file), "--min-witnesses", "1").exit_code == 0
    )

    stranger = checkpoint.cosign(made.checkpoint.checkpoint, keys.signing_key("witness-mallory"))
    garbage = checkpoint.NoteSignature("witness-pt-2", b"\x00\x01\x02\x03", b"not a signature at all")
    unknown = tmp_path / "unknown.json"
    unknown.write_bytes(_with_signatures(made, (log_line, stranger, *cosignatures, garbage)))
    proved = bundle.verify(unknown.read_bytes(), _trust(keys, *WITNESSES), min_witnesses=2)
    assert sorted(proved.witnesses) == sorted(WITNESSES)
    result = ledger_cli("verify", str(unknown), "--keys", str(trust_file), "--min-witnesses", "2")
    assert result.exit_code == 0, result.stdout


@pytest.mark.parametrize("size", ["\u0663\u0666\u0660", "\u00b3\u2076\u2070", "0360", "+360", "36 0"])
def test_a_size_not_in_ascii_digits_is_a_clear_error_not_a_traceback(
    cosigned: hub_store.HubLog, ledger_cli: LedgerCli, tmp_path: Path, size: str
) -> None:
    made = json.loads(cosigned.proof_bundle(5).to_bytes())
    note: str = made["checkpoint"]
    made["checkpoint"] = note.replace("\n360\n", f"\n{size}\n", 1)
    proof, trust_file = tmp_path / "proof.json", tmp_path / "trust.json"
    proof.write_bytes(rfc8785.dumps(made))
    assert ledger_cli("ledger", "keys", "--out", str(trust_file)).exit_code == 0
    result = ledger_cli("verify", str(proof), "--keys", str(trust_file))
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert result.stdout.startswith("FAILED: checkpoint: checkpoint size line (line 2) must be ASCII decimal")


def test_keys_and_cosignatures_inserted_as_the_app_role_are_trusted_by_no_verifier(
    cosigned: hub_store.HubLog, hub_db: HubDatabase, keys: KeyStore, ledger_cli: LedgerCli, tmp_path: Path
) -> None:
    genuine = tmp_path / "genuine.json"
    genuine.write_bytes(cosigned.proof_bundle(137).to_bytes())
    size = cosigned.size()
    mallory = keys.signing_key("witness-mallory")
    intruder = keys.signing_key("pt-9")
    line = checkpoint.cosign(cosigned.checkpoint().checkpoint, mallory).line()
    with psycopg.connect(hub_db.app_url, autocommit=True) as app:  # what smart_app may do, it does
        for role, name, key in (("witness", mallory.name, mallory), ("node", "pt-9", intruder)):
            forged = trust.Registration(role, name, key.verifying)  # type: ignore[arg-type]
            app.execute(
                "INSERT INTO ledger_registrations (role, name, key_name, public_key, signature)"
                " VALUES (%s, %s, %s, %s, %s)",
                (role, name, key.name, key.verifying.raw, key.sign(forged.statement())),
            )
        app.execute(
            "INSERT INTO ledger_nodes (node, key_name, key_id, public_key) VALUES (%s, %s, %s, %s)",
            ("pt-8", intruder.name, intruder.key_id, intruder.verifying.raw),
        )
        app.execute(
            "INSERT INTO ledger_witnesses (name, key_id, public_key) VALUES (%s, %s, %s)",
            (mallory.name, mallory.key_id, mallory.verifying.raw),
        )
        app.execute(
            "INSERT INTO ledger_cosignatures (size, witness, line) VALUES (%s, %s, %s)",
            (size, mallory.name, line),
        )

    trust_file = tmp_path / "trust.json"
    assert ledger_cli("ledger", "keys", "--out", str(trust_file)).exit_code == 0
    exported = trust.load(trust_file)
    assert sorted(exported.witnesses) == sorted(WITNESSES)
    assert sorted(exported.nodes) == ["mt-1", "pt-1", "ut-1"]
    assert "witness-mallory" not in cosigned.witness_keys() and "pt-9" not in cosigned.node_keys()

    # The hub's own check of a cosignature, its intake, and every verifier ignore them.
    with pytest.raises(checkpoint.CheckpointError, match="not a registered witness"):
        cosigned.add_cosignature(
            size,
            checkpoint.SignedCheckpoint.parse(
                cosigned.checkpoint().checkpoint.body().decode() + "\n" + line
            ).signatures[0],
        )
    for node, key in (("pt-9", intruder), ("pt-8", intruder)):
        batch = synthetic.chain(node, key, 2, batch_size=2)[0]
        with pytest.raises(hub_store.IngestError, match="not registered by the hub's administrator"):
            cosigned.ingest(batch)
    assert "witness-mallory" in ledger_cli("ledger", "head").stdout  # the row is there, for what it is worth
    result = ledger_cli("verify", str(genuine), "--keys", str(trust_file), "--min-witnesses", "2")
    assert result.exit_code == 0, result.stdout
    assert "witness-mallory" not in result.stdout
    verified = ledger_cli("ledger", "verify")
    assert verified.exit_code == 0, verified.stdout
