"""The ``smart people``, ``smart credentials``, ``smart station`` and ``smart bench access`` commands."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import nats
import psycopg
import pytest
import structlog
from typer.testing import CliRunner

from smart.access import distribution, stationauth
from smart.bus import buckets
from smart.cli import app as smart
from smart.keys import KeyStore
from smart.runtime.background import BackgroundFloor
from smart.testing.plugin import FreshDatabase

runner = CliRunner()


@pytest.fixture
def env(database: FreshDatabase, tmp_path: Path) -> dict[str, str]:
    return {
        "SMART_STATE_DIR": str(tmp_path / "state"),
        "SMART_DATABASE_URL": database.url,
        "SMART_SETTINGS_FILE": str(tmp_path / "none.toml"),
    }


def run(args: list[str], env: dict[str, str], code: int = 0) -> str:
    """Run a command; its stdout when it succeeds, everything it printed when it fails."""
    try:
        result = runner.invoke(smart, args, env=env)
    finally:
        structlog.reset_defaults()  # the command pointed logs at the runner's stderr, now closed
    assert result.exit_code == code, result.output
    return result.stdout if code == 0 else result.output


def test_quality_manager_registers_an_inspector_issues_verifies_and_revokes_from_the_command_line(
    env: dict[str, str],
) -> None:
    run(
        ["people", "add", "E-1001", "--name", "Dana Inspector", "--badge", "B-0042", "--role", "operator"],
        env,
    )
    assert "B-0042" in run(["people", "list"], env)
    for record in (
        ["exam", "--on", "2025-06-01", "--method", "PT", "--exam", "general", "--score", "85"],
        ["exam", "--on", "2025-06-01", "--method", "PT", "--exam", "specific", "--score", "80"],
        [
            "exam",
            "--on",
            "2025-06-01",
            "--method",
            "PT",
            "--exam",
            "practical",
            "--score",
            "90",
            "--samples",
            "2",
        ],
        ["certification", "--on", "2025-07-01", "--method", "PT", "--level", "2"],
        ["eye_exam", "--test", "near_vision", "--test-type", "jaeger-1-at-12in"],
        ["eye_exam", "--test", "colour_vision", "--test-type", "ishihara"],
        ["performance", "--method", "PT"],
    ):
        run(["people", "record", "E-1001", *record, "--actor", "level3-pt"], env)
    assert "current" in run(["credentials", "standing", "E-1001"], env)
    issued = run(
        ["credentials", "issue", "E-1001", "--kind", "certified", "--scope", "method=PT", "--token"], env
    ).splitlines()
    credential_id, token = issued[0].split()[0], issued[-1]
    listed = json.loads(run(["credentials", "list", "--json"], env))
    assert [(c["credential_id"], c["scope"]["level"]) for c in listed] == [(credential_id, "2")]
    assert run(["credentials", "verify", token, "--station", "pt-1"], env).startswith("accepted: certified")
    run(["credentials", "revoke", credential_id, "--reason", "falsified exam", "--actor", "qm-alice"], env)
    refused = run(["credentials", "verify", token, "--station", "pt-1"], env, code=1)
    assert refused.startswith("refused: revoked")


def test_certified_credential_the_records_do_not_support_is_refused_with_the_reason(
    env: dict[str, str],
) -> None:
    run(["people", "add", "E-1002", "--name", "Lee Trainee", "--badge", "B-0043"], env)
    output = run(
        ["credentials", "issue", "E-1002", "--kind", "certified", "--scope", "method=UT"], env, code=1
    )
    assert "no record supports a certified credential" in output


def test_station_credentials_writes_a_private_seed_and_the_hub_authorization(
    env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "creds"
    hub_conf = tmp_path / "hub-authorization.conf"
    printed = run(
        ["station", "credentials", "pt-1", "--out", str(out), "--hub-authorization", str(hub_conf)], env
    )
    seed = (out / "pt-1.nk").read_text().strip()
    assert stat.S_IMODE((out / "pt-1.nk").stat().st_mode) == 0o600
    public = stationauth.user_public(seed)
    assert public in printed and seed not in printed
    conf = hub_conf.read_text()
    assert public in conf and seed not in conf and '"station.pt-1.>"' in conf
    again = run(["station", "credentials", "pt-1", "--out", str(out)], env)
    assert public in again  # the same station keeps the same key


def test_bench_access_prints_both_figures_as_json(env: dict[str, str]) -> None:
    figures = json.loads(
        run(["bench", "access", "--json", "--verifications", "200", "--revoked", "1000"], env)
    )
    assert set(figures) == {"verifications_per_s", "bare_signature_verifications_per_s"}
    assert all(value > 0 for value in figures.values())


def test_admin_creates_a_hub_login_whose_password_is_stored_hashed(
    env: dict[str, str], database: FreshDatabase
) -> None:
    result = runner.invoke(
        smart,
        ["people", "add-login", "nadcap-auditor", "--role", "auditor", "--password-stdin"],
        input="a long enough password\n",
        env=env,
    )
    structlog.reset_defaults()
    assert result.exit_code == 0, result.output
    with psycopg.connect(database.url) as conn:
        row = conn.execute(
            "SELECT role, password_hash FROM vault.logins WHERE username = 'nadcap-auditor'"
        ).fetchone()
    assert row is not None and row[0] == "auditor"
    assert row[1].startswith("$argon2id$") and "a long enough password" not in row[1]


def test_station_registered_as_a_device_keeps_its_public_key_on_the_hub(
    env: dict[str, str], database: FreshDatabase, tmp_path: Path
) -> None:
    station_key = KeyStore(tmp_path / "state" / "keys").signing_key("station-pt-1")
    assert station_key.key_id in run(["station", "register", "pt-1", "--actor", "admin"], env)
    with psycopg.connect(database.url) as conn:
        row = conn.execute("SELECT kind, key_id FROM vault.devices WHERE device_id = 'pt-1'").fetchone()
    assert row == ("station", station_key.key_id)
    missing = run(["station", "register", "mt-1"], env, code=1)
    assert "station-mt-1.pub" in missing


def test_credentials_publish_puts_keys_revocations_and_badges_into_the_hub_buckets(
    env: dict[str, str], nats_floor: BackgroundFloor
) -> None:
    assert nats_floor.floor.hub is not None
    env = {**env, "SMART_NATS_URL": nats_floor.hub_url}
    run(["people", "add", "E-1001", "--name", "Dana Inspector", "--badge", "B-0042"], env)
    run(["credentials", "issue", "E-1001", "--kind", "access", "--scope", "station=pt-1"], env)
    printed = run(["credentials", "publish"], env)
    assert "1 key(s), 0 revocation(s)" in printed and "'pt-1': 1" in printed

    async def badges() -> list[str]:
        assert nats_floor.floor.hub is not None
        client = await nats.connect(nats_floor.floor.hub.url, **nats_floor.settings.hub_nats_signin())
        try:
            kv = await client.jetstream().key_value(distribution.station_bucket("pt-1"))
            return list(await buckets.live_entries(kv))
        finally:
            await client.close()

    assert asyncio.run(badges()) == ["B-0042"]


def test_credentials_publish_shows_what_changes_at_each_station_and_asks_before_withdrawing_a_badge(
    env: dict[str, str], nats_floor: BackgroundFloor
) -> None:
    assert nats_floor.floor.hub is not None
    env = {**env, "SMART_NATS_URL": nats_floor.hub_url, "SMART_STATIONS": "2"}
    run(["people", "add", "E-1001", "--name", "Dana Inspector", "--badge", "B-0042"], env)
    access = run(["credentials", "issue", "E-1001", "--kind", "access", "--scope", "station=pt-1"], env)
    looked = run(["credentials", "publish", "--dry-run"], env)
    assert "pt-1: adds B-0042" in looked and "dry run: nothing published" in looked
    assert "mt-1: no change (0 badge(s))" in looked

    async def badges() -> list[str]:
        assert nats_floor.floor.hub is not None
        client = await nats.connect(nats_floor.floor.hub.url, **nats_floor.settings.hub_nats_signin())
        try:
            kv = await client.jetstream().key_value(distribution.station_bucket("pt-1"))
            return list(await buckets.live_entries(kv))
        finally:
            await client.close()

    assert asyncio.run(badges()) == []  # the dry run changed nothing
    assert "pt-1: adds B-0042" in run(["credentials", "publish"], env)  # nobody withdrawn: no question
    assert asyncio.run(badges()) == ["B-0042"]

    run(["credentials", "suspend", access.split()[0], "--reason", "on leave"], env)
    try:
        refused = runner.invoke(smart, ["credentials", "publish"], env=env, input="n\n")
    finally:
        structlog.reset_defaults()
    assert refused.exit_code == 1, refused.output
    assert (
        "pt-1: WITHDRAWS B-0042" in refused.output
        and "this withdraws badges (pt-1: B-0042)" in refused.output
    )
    assert asyncio.run(badges()) == ["B-0042"]  # answered no: still at the station
    done = run(["credentials", "publish", "--yes"], env)
    assert "WITHDRAWS B-0042" in done and "'pt-1': 0" in done
    assert asyncio.run(badges()) == []
