"""``smart up`` seeds its contracts from the settings' folder, whatever directory it was started in."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from smart.runtime import up
from smart.runtime.background import BackgroundFloor
from smart.testing.plugin import make_settings

REPO = Path(__file__).resolve().parents[2]


def test_smart_up_seeds_the_contracts_of_smart_contracts_dir_not_of_its_working_directory(
    nats_floor: BackgroundFloor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started from a directory whose ``contracts/`` is not the shop's (here: one with a broken
    manifest), ``smart up`` seeds the folder ``SMART_CONTRACTS_DIR`` names, as MaintenanceHub and the
    audit packet read it."""
    folder = tmp_path / "shop-contracts"
    shutil.copytree(REPO / "contracts", folder)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "contracts").mkdir(parents=True)
    (elsewhere / "contracts" / "other.yaml").write_text(
        "apiVersion: smart.aero/v1alpha1\nkind: SmartContract\nmetadata: {name: other}\n"
    )
    monkeypatch.chdir(elsewhere)
    settings = make_settings(
        tmp_path / "state", nats_url=nats_floor.hub_url, keys_dir=tmp_path / "keys", contracts_dir=folder
    )
    applied = asyncio.run(up.seed_contracts(settings))
    outcomes = {a.name: a.outcome for a in applied if a.kind == "SmartContract"}
    assert outcomes["heat-treat"].startswith(f"seeded from {folder}/: "), outcomes
    assert "other" not in outcomes
