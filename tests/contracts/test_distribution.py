"""Signed bundles: deterministic bytes, verified signatures, and the KV bucket a station mirrors."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import nats
import pytest
from typer.testing import CliRunner

from smart import ledger
from smart.bus.mirror import mirror_bucket
from smart.cli import app
from smart.contracts import bundle, distribution, manifests
from smart.contracts.models import SmartContract, Station
from smart.keys import KeyStore, SigningKey
from smart.runtime.background import BackgroundFloor

ROOT = Path(__file__).resolve().parents[2]


def reference() -> tuple[dict[str, SmartContract], dict[str, Station]]:
    loaded = [item.manifest for item in manifests.load([ROOT / "contracts"])]
    return (
        {m.metadata.name: m for m in loaded if isinstance(m, SmartContract)},
        {m.spec.station_id: m for m in loaded if isinstance(m, Station)},
    )


def test_same_contract_and_station_give_the_same_bytes_and_revision() -> None:
    contracts, stations = reference()
    key = SigningKey.generate("hub")
    first = bundle.sign(bundle.compile_bundle(contracts["penetrant"], stations["pt-1"]), key)
    again = bundle.sign(bundle.compile_bundle(contracts["penetrant"], stations["pt-1"]), key)
    assert first.envelope == again.envelope
    assert first.revision == bundle.revision_of(first.bundle)
    assert bundle.verify(first.envelope, key.verifying).revision == first.revision


def test_a_tampered_or_foreign_bundle_is_refused() -> None:
    contracts, stations = reference()
    key = SigningKey.generate("hub")
    signed = bundle.sign(bundle.compile_bundle(contracts["penetrant"], stations["pt-1"]), key)
    tampered = signed.envelope.replace(b'"min":1000', b'"min":900')
    assert tampered != signed.envelope
    with pytest.raises(bundle.BundleError, match="does not match its content"):
        bundle.verify(tampered, key.verifying)
    with pytest.raises(bundle.BundleError, match="signed by key"):
        bundle.verify(signed.envelope, SigningKey.generate("impostor").verifying)
    envelope = json.loads(signed.envelope)
    for field, wrong, says in (
        ("revision", "not-hex", "revision"),
        ("signature", {**envelope["signature"], "alg": "RS256"}, "signature.alg"),
        ("signature", {"alg": "Ed25519", "value": "AA=="}, "signature.keyId"),
        ("extra", 1, "extra"),
    ):
        with pytest.raises(bundle.BundleError, match=f"not a signed bundle: {says}"):
            bundle.verify(json.dumps({**envelope, field: wrong}).encode(), key.verifying)


def test_logistics_module_only_in_the_shipping_station_bundle() -> None:
    contracts, stations = reference()
    shipping = bundle.compile_bundle(contracts["shipping-receiving"], stations["sr-1"])
    assert "logistics" in shipping["modules"]
    elsewhere = contracts["shipping-receiving"].model_copy(
        update={
            "spec": contracts["shipping-receiving"].spec.model_copy(
                update={"station_selector": contracts["penetrant"].spec.station_selector}
            )
        }
    )
    assert "logistics" not in bundle.compile_bundle(elsewhere, stations["pt-1"])["modules"]


async def _hub_value(url: str, key: str) -> bytes | None:
    connection = await nats.connect(url)
    try:
        store = distribution.KvBundleStore(await distribution.bucket(connection.jetstream()))
        return await store.get(*key.split(".", 1))
    finally:
        await connection.close()


async def _mirrored(url: str, key: str) -> bytes:
    connection = await nats.connect(url)
    try:
        kv = await mirror_bucket(connection.jetstream(), distribution.BUCKET)
        for _ in range(200):
            try:
                return bytes((await kv.get(key)).value or b"")
            except Exception:
                await asyncio.sleep(0.05)
        raise AssertionError(f"{key} never reached the station's mirror")
    finally:
        await connection.close()


def test_smart_apply_puts_signed_bundles_that_a_station_mirrors(
    nats_floor: BackgroundFloor, tmp_path: Path
) -> None:
    env = {
        "SMART_NATS_URL": nats_floor.hub_url,
        "SMART_STATE_DIR": str(tmp_path / "state"),
        "SMART_KEYS_DIR": str(tmp_path / "keys"),
    }
    runner = CliRunner()
    # A fresh floor seeded from the CLI, as `smart up`'s first start does: the recorded bootstrap.
    applied = runner.invoke(app, ["apply", "-f", str(ROOT / "contracts"), "--bootstrap"], env=env)
    assert applied.exit_code == 0, applied.output
    assert "smartcontract/penetrant synced 1/1 (bootstrapped" in applied.output
    assert "station/sr-1 configured" in applied.output

    listed = runner.invoke(app, ["get", "contracts"], env=env)
    assert listed.exit_code == 0, listed.output
    assert len([line for line in listed.output.splitlines() if " 1/1 " in line]) == 6

    stations = runner.invoke(app, ["get", "stations"], env=env)
    assert stations.exit_code == 0, stations.output
    assert [line.split()[0] for line in stations.output.splitlines()[1:]] == sorted(
        ["pt-1", "mt-1", "ut-1", "ht-1", "cp-1", "sr-1"]
    )

    hub_key = KeyStore(tmp_path / "keys").verifying_key("hub")
    hub_value = asyncio.run(_hub_value(env["SMART_NATS_URL"], "pt-1.penetrant"))
    assert hub_value is not None
    mirrored = asyncio.run(_mirrored(nats_floor.floor.leaves["pt-1"].url, "pt-1.penetrant"))
    assert mirrored == hub_value
    checked = bundle.verify(mirrored, hub_key)
    assert checked.bundle["station"] == "pt-1" and checked.bundle["contract"] == "penetrant"

    again = runner.invoke(app, ["apply", "-f", str(ROOT / "contracts")], env=env)  # idempotent
    assert again.exit_code == 0, again.output
    with ledger.NodeLog.open(
        tmp_path / "state" / "ledger", node="smart-embedded", keys=KeyStore(tmp_path / "keys")
    ) as log:
        deployed = [e for e in log.entries(0) if e.kind == "contract.deployed"]
    assert sorted((e.data["contract"], e.data["station"]) for e in deployed) == sorted(
        (c, s)
        for c, s in [
            ("penetrant", "pt-1"),
            ("magnetic-particle", "mt-1"),
            ("ultrasonic", "ut-1"),
            ("heat-treat", "ht-1"),
            ("chemical-processing", "cp-1"),
            ("shipping-receiving", "sr-1"),
        ]
    )
    assert all(e.contract == e.data["revision"] for e in deployed)


def test_bench_rules_prints_the_three_figures_as_json() -> None:
    result = CliRunner().invoke(app, ["bench", "rules", "--json", "--iterations", "200"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert set(figures) == {"p50_us", "p99_us", "baseline_call_us"}
    assert all(value > 0 for value in figures.values())


def test_floor_start_hook_loads_the_contracts_directory(nats_floor: BackgroundFloor, tmp_path: Path) -> None:
    from smart.embedded import driver
    from smart.testing.plugin import make_settings

    settings = make_settings(tmp_path / "state", nats_url=nats_floor.hub_url, keys_dir=tmp_path / "keys")
    applied = asyncio.run(driver.load_contracts(settings, ROOT / "contracts"))
    seeded = f"seeded from {ROOT / 'contracts'}/: synced 1/1 (bootstrapped: first revision, no second person)"
    assert ("SmartContract", "heat-treat", seeded) in [(a.kind, a.name, a.outcome) for a in applied]
    # Seeded once: a later start keeps what the hub holds and applies nothing from the directory.
    again = {a.name: a.outcome for a in asyncio.run(driver.load_contracts(settings, ROOT / "contracts"))}
    assert again["heat-treat"].startswith("kept revision ") and "not applied" not in again["heat-treat"]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.yaml").write_text(
        "apiVersion: smart.aero/v1alpha1\nkind: SmartContract\nmetadata: {name: x}\n"
    )
    assert asyncio.run(driver.load_contracts(settings, broken)) == []
