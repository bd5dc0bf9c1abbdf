"""The driver's commands a person waits on say at once when no floor answers, and change nothing.

``smart apply``, ``smart get``, ``smart contract history`` and ``smart contract at`` used to sit
through nats-py's two minutes of connect retries (or end in psycopg's traceback) on a floor that is
not running. Each now tries once, against a real loopback port nothing listens on here, and says
in one line where it tried (host and port, never the URL's password), that nothing changed and
what to do; it exits 1 and leaves the state directory as it found it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from smart.runtime import ports
from smart.testing.cli import invoke

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-pass"

NATS_COMMANDS = {
    "smart apply": ("apply", "-f", str(ROOT / "contracts" / "stations.yaml")),
    "smart apply --bootstrap": ("apply", "--bootstrap", "-f", str(ROOT / "contracts")),
    "smart get": ("get", "contracts"),
    "smart contract history": ("contract", "history", "penetrant"),
}


def _env(tmp_path: Path, port: int) -> dict[str, str]:
    return {
        "SMART_NATS_URL": f"nats://driver:{PASSWORD}@127.0.0.1:{port}",
        "SMART_DATABASE_URL": f"postgresql://smart:{PASSWORD}@127.0.0.1:{port}/smart",
        "SMART_STATE_DIR": str(tmp_path / "state"),
        "SMART_KEYS_DIR": str(tmp_path / "keys"),
    }


def _files(tmp_path: Path) -> list[Path]:
    return sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())


@pytest.mark.parametrize("command", NATS_COMMANDS)
def test_no_floor_at_the_hub_nats_is_said_at_once_in_one_line_and_nothing_is_written(
    command: str, tmp_path: Path
) -> None:
    port = ports.free_port()  # nothing listens here
    result = invoke(*NATS_COMMANDS[command], env=_env(tmp_path, port))
    assert result.exit_code == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()  # the refusal alone: no traceback of nats-py's tries
    command_name = command.removesuffix(" --bootstrap")
    assert line.startswith(f"{command_name}: the embedded floor's NATS at 127.0.0.1:{port} did not answer")
    assert "nothing changed" in line and "smart up" in line
    assert PASSWORD not in result.output
    assert _files(tmp_path) == []  # no ledger, no key, no manifest, no bootstrap marker


def test_contract_at_with_no_database_answering_names_where_and_writes_nothing(tmp_path: Path) -> None:
    """``smart contract at`` reads the hub database: a closed port is one line, not psycopg's traceback."""
    port = ports.free_port()
    secrets = tmp_path / "state" / "secrets"
    secrets.mkdir(parents=True)
    (secrets / "ledger-app.password").write_text("the floor's app password\n")
    before = _files(tmp_path)
    result = invoke("contract", "at", "pt-1", "--time", "2026-11-30T10:00:00Z", env=_env(tmp_path, port))
    assert result.exit_code == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"smart contract at: the hub database at 127.0.0.1:{port} did not answer")
    assert "nothing changed" in line and "smart up" in line
    assert PASSWORD not in result.output
    assert _files(tmp_path) == before


def test_contract_at_on_a_state_directory_no_floor_ran_in_makes_no_password(tmp_path: Path) -> None:
    """Reading must not make the app role's password (no database knows it): refused, naming the file."""
    result = invoke(
        "contract", "at", "pt-1", "--time", "2026-11-30T10:00:00Z", env=_env(tmp_path, ports.free_port())
    )
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("smart contract at: no hub database here: ")
    assert "ledger-app.password is missing" in line and "nothing changed" in line
    assert _files(tmp_path) == []
