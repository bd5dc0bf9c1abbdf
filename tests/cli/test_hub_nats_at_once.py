"""Hub commands a person types say at once when the hub NATS does not answer, and change nothing.

``smart maintenance|standards|ncr|inventory|training-matrix …``, ``smart po release`` and
``smart credentials publish|verify --nats`` connected with nats-py's defaults: about two minutes
of retries on a floor that is not running, then a traceback. Each now tries once (a real loopback
port nothing listens on here) and says in one line where (host and port, never the URL's
password), that nothing changed and what to do; exit 1, nothing recorded.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import yaml

from smart.ledger import hub_store
from smart.runtime import ports
from smart.testing.cli import invoke
from smart.testing.plugin import FreshDatabase

PASSWORD = "s3cret-pass"


def _env(tmp_path: Path, port: int, database_url: str) -> dict[str, str]:
    return {
        "SMART_NATS_URL": f"nats://driver:{PASSWORD}@127.0.0.1:{port}",
        "SMART_DATABASE_URL": database_url,
        "SMART_STATE_DIR": str(tmp_path / "state"),
        "SMART_KEYS_DIR": str(tmp_path / "keys"),
        "SMART_SETTINGS_FILE": str(tmp_path / "no-settings.toml"),
    }


def test_a_maintenance_record_with_no_hub_nats_is_refused_at_once_and_not_stored(
    database: FreshDatabase, tmp_path: Path
) -> None:
    hub_store.migrate(database.url, app_password=database.app_password)
    port = ports.free_port()  # nothing listens here
    asset = tmp_path / "meter.yaml"
    meter = {"asset_id": "UVA-9", "kind": "light-meter", "station": "pt-1", "serial": "S9"}
    asset.write_text(yaml.safe_dump(meter))
    result = invoke("maintenance", "register", str(asset), env=_env(tmp_path, port, database.url))
    assert result.exit_code == 1
    assert result.stdout == ""
    *logged, line = result.stderr.splitlines()  # the migration's own log lines, then the refusal
    assert "Traceback" not in result.stderr and all("migrations.applied" in x for x in logged)
    assert line.startswith(f"refused: the hub NATS at 127.0.0.1:{port} did not answer")
    assert "nothing changed" in line and "smart up" in line and PASSWORD not in line
    with psycopg.connect(database.url) as conn:
        assert conn.execute("SELECT count(*) FROM maintenance.equipment").fetchone() == (0,)
    assert not (tmp_path / "state" / "ledger").exists()


def test_credentials_publish_and_verify_with_no_nats_answering_say_where_in_one_line(tmp_path: Path) -> None:
    port = ports.free_port()
    env = _env(tmp_path, port, f"postgresql://smart:{PASSWORD}@127.0.0.1:{port}/smart")
    published = invoke("credentials", "publish", "--yes", env=env)
    assert published.exit_code == 1 and published.stdout == ""
    (line,) = published.stderr.splitlines()
    assert line.startswith(f"smart credentials publish: the hub NATS at 127.0.0.1:{port} did not answer")
    assert "nothing changed" in line and PASSWORD not in line
    leaf = f"nats://127.0.0.1:{port}"
    verified = invoke("credentials", "verify", "a-token", "--station", "pt-1", "--nats", leaf, env=env)
    assert verified.exit_code == 1 and verified.stdout == ""
    (line,) = verified.stderr.splitlines()
    assert line.startswith(f"smart credentials verify: the NATS at 127.0.0.1:{port} did not answer")
    assert "--nats" in line
    assert not (tmp_path / "state").exists()
