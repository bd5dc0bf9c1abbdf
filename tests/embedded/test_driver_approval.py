"""Two people before a rule changes, on the embedded driver: real NATS, the real ledger, a mirror."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path

import nats
import pytest
from typer.testing import CliRunner

from smart import ledger
from smart.bus.mirror import mirror_bucket
from smart.cli import app
from smart.contracts import approval, bundle, distribution, manifests
from smart.contracts.models import SmartContract, Station
from smart.embedded import driver
from smart.keys import KeyStore, SigningKey
from smart.runtime.background import BackgroundFloor
from smart.testing.plugin import make_settings
from tests.contracts.signatures import signature

ROOT = Path(__file__).resolve().parents[2]


def _penetrant() -> tuple[SmartContract, list[Station]]:
    loaded = [
        i.manifest
        for i in manifests.load([ROOT / "contracts" / "penetrant.yaml", ROOT / "contracts" / "stations.yaml"])
    ]
    contract = next(m for m in loaded if isinstance(m, SmartContract))
    return contract, [m for m in loaded if isinstance(m, Station)]


def _edited(contract: SmartContract, uva_min: int) -> SmartContract:
    body = copy.deepcopy(contract.model_dump(mode="json", by_alias=True, exclude_none=True))
    for rule in body["spec"]["rules"]:
        if rule.get("limits") == {"min": 1000}:
            rule["limits"] = {"min": uva_min}
    return SmartContract.model_validate(body)


async def _held(url: str, station: str, contract: str) -> str | None:
    connection = await nats.connect(url)
    try:
        store = distribution.KvBundleStore(await distribution.bucket(connection.jetstream()))
        return (await store.revisions(contract)).get(station)
    finally:
        await connection.close()


async def _mirrored(url: str, key: str, keys: Path) -> str | None:
    """The revision of ``key`` in the station's own mirror (None: not there yet)."""
    connection = await nats.connect(url)
    try:
        kv = await mirror_bucket(connection.jetstream(), distribution.BUCKET)
        try:
            value = bytes((await kv.get(key)).value or b"")
        except Exception:
            return None
        return bundle.verify(value, KeyStore(keys).verifying_key("hub")).revision if value else None
    finally:
        await connection.close()


async def _eventually_mirrored(url: str, key: str, keys: Path, revision: str) -> bool:
    for _ in range(1800):
        if await _mirrored(url, key, keys) == revision:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_a_changed_contract_waits_for_a_second_person_then_goes_to_the_station(
    nats_floor: BackgroundFloor, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "state", nats_url=nats_floor.hub_url, keys_dir=tmp_path / "keys")
    smart_id = KeyStore(tmp_path / "keys").signing_key(approval.SMART_ID_KEY)  # provisioned, as on a hub
    contract, _ = _penetrant()
    # The floor's first start seeds its contracts: the one bootstrap, recorded (checked on the ledger below).
    seed = tmp_path / "contracts"
    seed.mkdir()
    for name in ("penetrant.yaml", "stations.yaml"):
        (seed / name).write_text((ROOT / "contracts" / name).read_text())
    first = await driver.load_contracts(settings, seed)
    assert (
        "SmartContract",
        "penetrant",
        f"seeded from {seed}/: synced 1/1 (bootstrapped: first revision, no second person)",
    ) in [(a.kind, a.name, a.outcome) for a in first]
    held_first = await _held(nats_floor.hub_url, "pt-1", "penetrant")
    assert held_first is not None

    edited = _edited(contract, 1200)
    revision = approval.spec_revision(edited)

    def sign(badge: str, act: approval.Act, **kw: object) -> str:
        return signature(smart_id, badge=badge, act=act, contract="penetrant", revision=revision, **kw)  # type: ignore[arg-type]

    # Applied with its author's signature: compiled and valid, but held; stations keep what they hold.
    pending = await driver.apply([edited], settings, author=sign("B-AUTHOR", "authorship"))
    outcome = next(a.outcome for a in pending if a.name == "penetrant")
    assert outcome.startswith(f"pending approval: revision {revision[:12]}")
    assert "a Level 3 in PT or the quality manager" in outcome
    assert await _held(nats_floor.hub_url, "pt-1", "penetrant") == held_first
    shown = next(
        r for r in await driver.get("contract", settings) if r["manifest"]["metadata"]["name"] == "penetrant"
    )
    assert shown["status"]["approval"] == "PendingApproval"
    assert shown["status"]["pendingRevision"] == revision
    assert "quality manager" in shown["status"]["approver"]
    approved_condition = next(c for c in shown["status"]["conditions"] if c["type"] == "Approved")
    assert approved_condition["status"] == "False" and approved_condition["reason"] == "PendingApproval"
    assert shown["status"]["revisions"]["pt-1"] == held_first

    # Refused, changing nothing: its author, no authority, a bad signature, not the pending revision.
    refusals = {
        "wrote revision": sign("B-AUTHOR", "approval"),
        "needs a Level 3 in PT": sign("B-MT3", "approval", methods=("MT",)),
        "bad_signature": sign("B-QM", "approval", authority=approval.QUALITY_MANAGER)[:-6] + "AAAAAA",
        "unknown_key": signature(
            SigningKey.generate("impostor"),
            badge="B-QM",
            act="approval",
            contract="penetrant",
            revision=revision,
            authority=approval.QUALITY_MANAGER,
        ),
        "not a contract approval signature": sign("B-QM", "authorship", authority=approval.QUALITY_MANAGER),
    }
    for expected, token in refusals.items():
        with pytest.raises(approval.ApprovalRefused, match=expected):
            await driver.approve("penetrant", revision, token, settings)
    with pytest.raises(approval.ApprovalRefused, match="is not the pending one"):
        await driver.approve("penetrant", held_first[:12], sign("B-QM", "approval"), settings)
    assert await _held(nats_floor.hub_url, "pt-1", "penetrant") == held_first

    # The CLI: the quality manager's signature approves that exact revision; pt-1 gets it.
    token_file = tmp_path / "qm.token"
    token_file.write_text(sign("B-QM", "approval", authority=approval.QUALITY_MANAGER))
    env = {
        "SMART_NATS_URL": nats_floor.hub_url,
        "SMART_STATE_DIR": str(tmp_path / "state"),
        "SMART_KEYS_DIR": str(tmp_path / "keys"),
    }
    result = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        ["contract", "approve", "penetrant", "--revision", revision[:12], "--credential", str(token_file)],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert f"approved revision {revision[:12]}" in result.output
    new = await _held(nats_floor.hub_url, "pt-1", "penetrant")
    assert new is not None and new != held_first
    assert await _eventually_mirrored(
        nats_floor.floor.leaves["pt-1"].url, "pt-1.penetrant", tmp_path / "keys", new
    )
    shown = next(
        r for r in await driver.get("contract", settings) if r["manifest"]["metadata"]["name"] == "penetrant"
    )
    assert shown["status"]["approval"] == "Approved"
    assert "pendingRevision" not in shown["status"]

    # A second approval of the same revision is refused: it is no longer pending.
    again = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        ["contract", "approve", "penetrant", "--revision", revision, "--credential", str(token_file)],
        env=env,
    )
    assert again.exit_code == 1 and "not the pending one" in again.output

    # History: both revisions, who wrote and who approved the second, and what changed (rules by id).
    shown_history = await asyncio.to_thread(
        CliRunner().invoke, app, ["contract", "history", "penetrant", "--json"], env=env
    )
    assert shown_history.exit_code == 0, shown_history.output
    revisions = json.loads(shown_history.stdout)["revisions"]
    assert [(r["revision"], r["author"], r["approvers"], r["state"]) for r in revisions] == [
        (approval.spec_revision(contract), None, [], "Approved"),
        (revision, "B-AUTHOR", ["B-QM"], "Approved"),
    ]
    assert revisions[0]["first"] and not revisions[1]["first"]
    assert revisions[1]["diff"] == ["~ spec.rules.pt-uva-intensity.limits.min: 1000.0 → 1200.0"]

    with ledger.NodeLog.open(
        settings.state_dir / "ledger", node="smart-embedded", keys=KeyStore(tmp_path / "keys")
    ) as log:
        entries = log.entries(0)
    (bootstrapped,) = [e for e in entries if e.kind == "contract.bootstrapped"]
    assert bootstrapped.data["contract"] == "penetrant"
    assert bootstrapped.data["revision"] == approval.spec_revision(contract)
    assert bootstrapped.data["by"] == "smart up (first start)" and bootstrapped.data["source"] == f"{seed}/"
    assert bootstrapped.data["user"] == driver.os_user() and bootstrapped.data["stations"] == {
        "pt-1": held_first
    }
    assert entries.index(bootstrapped) < entries.index(
        next(e for e in entries if e.kind == "contract.deployed")
    )  # the exception is on the ledger before any station has the revision
    submitted = [e for e in entries if e.kind == "contract.submitted"]
    approved = [e for e in entries if e.kind == "contract.approved"]
    assert [(e.data["revision"], e.data["author"]) for e in submitted] == [(revision, "B-AUTHOR")]
    assert [(e.data["revision"], e.data["approver"], e.data["authority"]) for e in approved] == [
        (revision, "B-QM", "quality-manager")
    ]
    deployed = [
        e.data["revision"] for e in entries if e.kind == "contract.deployed" and e.data["station"] == "pt-1"
    ]
    assert deployed == [held_first, new]
    assert entries.index(approved[0]) < max(i for i, e in enumerate(entries) if e.kind == "contract.deployed")


async def test_a_new_contract_waits_for_a_second_person_and_a_seeded_floor_bootstraps_nothing(
    nats_floor: BackgroundFloor, tmp_path: Path
) -> None:
    """Through the normal path (``smart apply``) a contract's first revision is held like any change."""
    settings = make_settings(tmp_path / "state", nats_url=nats_floor.hub_url, keys_dir=tmp_path / "keys")
    smart_id = KeyStore(tmp_path / "keys").signing_key(approval.SMART_ID_KEY)
    contract, stations = _penetrant()
    revision = approval.spec_revision(contract)
    author = signature(smart_id, badge="B-AUTHOR", act="authorship", contract="penetrant", revision=revision)
    applied = await driver.apply([contract, *stations], settings, author=author)
    outcome = next(a.outcome for a in applied if a.name == "penetrant")
    assert outcome.startswith(f"pending approval: revision {revision[:12]} waits for a Level 3 in PT")
    assert await _held(nats_floor.hub_url, "pt-1", "penetrant") is None  # pt-1 holds nothing of it
    shown = next(
        r for r in await driver.get("contract", settings) if r["manifest"]["metadata"]["name"] == "penetrant"
    )
    assert shown["status"]["approval"] == "PendingApproval" and shown["status"]["pendingRevision"] == revision

    # The bootstrap happens once: on a floor holding contracts, it is refused and changes nothing.
    late = approval.Bootstrap(by="smart apply --bootstrap", user="someone", source="contracts/")
    with pytest.raises(approval.ApprovalRefused, match="this floor was seeded before"):
        await driver.apply([contract], settings, bootstrap=late)
    env = {
        "SMART_NATS_URL": nats_floor.hub_url,
        "SMART_STATE_DIR": str(tmp_path / "state"),
        "SMART_KEYS_DIR": str(tmp_path / "keys"),
    }
    cli = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        ["apply", "-f", str(ROOT / "contracts" / "penetrant.yaml"), "--bootstrap"],
        env=env,
    )
    assert cli.exit_code == 1 and "this floor was seeded before" in cli.output
    assert await _held(nats_floor.hub_url, "pt-1", "penetrant") is None

    # A second person approves the first revision as any other; then, and only then, pt-1 has it.
    qm = signature(
        smart_id,
        badge="B-QM",
        act="approval",
        contract="penetrant",
        revision=revision,
        authority=approval.QUALITY_MANAGER,
    )
    await driver.approve("penetrant", revision[:12], qm, settings)
    held = await _held(nats_floor.hub_url, "pt-1", "penetrant")
    assert held is not None
    with ledger.NodeLog.open(
        settings.state_dir / "ledger", node="smart-embedded", keys=KeyStore(tmp_path / "keys")
    ) as log:
        kinds = [e.kind for e in log.entries(0) if e.kind.startswith("contract.")]
    assert "contract.bootstrapped" not in kinds
    assert (
        kinds.index("contract.submitted")
        < kinds.index("contract.approved")
        < kinds.index("contract.deployed")
    )
