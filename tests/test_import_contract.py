"""The house rules of imports hold, and the contract that checks them catches a wrong import.

The contracts are import-linter's, in ``pyproject.toml`` (``[tool.importlinter]``); ``make test``
runs ``lint-imports`` on the package. Here they are run on the package (kept), and on a small
package tree built for the test with the same layout and one deliberately wrong import per rule
(broken, naming the import), so a contract that could not fail would be seen.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
FAKE = "wrongshop"


def contracts() -> dict[str, Any]:
    config: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    return config


def lint(config: Path, *, cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [str(LINT_IMPORTS), str(config), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_package_keeps_every_import_contract() -> None:
    done = lint(REPO / "pyproject.toml", cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Contracts: {len(contracts()['contracts'])} kept, 0 broken." in done.stdout


def test_every_module_folder_is_held_apart_from_the_others() -> None:
    (apart,) = [c for c in contracts()["contracts"] if c["id"] == "modules-apart"]
    folders = {p.parent.name for p in (REPO / "smart" / "modules").glob("*/manifest.yaml")}
    assert set(apart["modules"]) == {f"smart.modules.{name}" for name in folders}


def _renamed(value: Any) -> Any:
    if isinstance(value, str):
        return FAKE + value[len("smart") :] if value == "smart" or value.startswith("smart.") else value
    if isinstance(value, list):
        return [_renamed(v) for v in value]
    if isinstance(value, dict):
        return {k: _renamed(v) for k, v in value.items()}
    return value


def _toml(config: dict[str, Any]) -> str:
    """The few TOML shapes the contracts use: strings and lists of strings."""
    lines = ["[tool.importlinter]", f'root_package = "{config["root_package"]}"']
    for contract in config["contracts"]:
        lines.append("[[tool.importlinter.contracts]]")
        for key, value in contract.items():
            if isinstance(value, list):
                lines.append(f"{key} = [{', '.join(repr(v).replace(chr(39), chr(34)) for v in value)}]")
            else:
                lines.append(f'{key} = "{value}"')
    return "\n".join(lines) + "\n"


#: Contract id → (file of the fake tree, the wrong import written in it).
WRONG = {
    "pillars": ("ledger/leak.py", f"import {FAKE}.hub.services"),
    "modules-ports": ("modules/vision/leak.py", f"from {FAKE}.node import station"),
    "modules-apart": ("modules/gatekeeper/leak.py", f"from {FAKE}.modules.qa import spc"),
    "hub-without-runtime": ("hub/leak.py", f"from {FAKE}.runtime import floor"),
    "bus-without-runtime": ("bus/leak.py", f"from {FAKE}.runtime import nats"),
    "recordings-low": ("recordings/leak.py", f"from {FAKE}.modules.qa import spc"),
}


def _tree(root: Path, config: dict[str, Any]) -> None:
    """Every package the contracts name, empty, plus what the wrong imports need to exist."""
    names = {config["root_package"]}
    for contract in config["contracts"]:
        for key in ("source_modules", "forbidden_modules", "modules"):
            names.update(contract.get(key, ()))
    names |= {f"{FAKE}.hub.services", f"{FAKE}.node.station", f"{FAKE}.modules.qa.spc"}
    names |= {f"{FAKE}.runtime.floor", f"{FAKE}.runtime.nats"}
    for name in names:
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):
            package = root.joinpath(*parts[:depth])
            package.mkdir(exist_ok=True)
            (package / "__init__.py").touch()


@pytest.mark.parametrize("contract_id", sorted(WRONG))
def test_each_contract_breaks_on_a_deliberately_wrong_import(tmp_path: Path, contract_id: str) -> None:
    config = _renamed(contracts())
    assert {c["id"] for c in config["contracts"]} == set(WRONG)
    (tmp_path / "src").mkdir()
    _tree(tmp_path / "src", config)
    (tmp_path / "contracts.toml").write_text(_toml(config))
    clean = lint(tmp_path / "contracts.toml", cwd=tmp_path, pythonpath=tmp_path / "src")
    assert clean.returncode == 0, clean.stdout + clean.stderr  # the tree alone keeps every contract

    where, line = WRONG[contract_id]
    (tmp_path / "src" / FAKE / where).write_text(line + "\n")
    broken = lint(tmp_path / "contracts.toml", cwd=tmp_path, pythonpath=tmp_path / "src")
    assert broken.returncode != 0
    (name,) = [c["name"] for c in config["contracts"] if c["id"] == contract_id]
    assert f"{name} BROKEN" in " ".join(broken.stdout.split()), broken.stdout
    leaked = f"{FAKE}.{where.removesuffix('.py').replace('/', '.')}"
    assert leaked in broken.stdout  # the report names the module that imports what it may not
