"""``smart hub migrate`` run by several role pods at once: one after the other, each succeeding.

The chart starts the Vault's, the Floor's and Business's pods together, so their migration init
containers reach a fresh database at the same moment. Each holds the database's migration lock
(``smart.hub.migrations.MIGRATE_LOCK``) for its whole owner step; the test holds that lock itself
first, sees both commands wait for it having made nothing, then lets them go and sees both
finish, each role's login working.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from smart.bus.hub_roles import HubRole
from smart.hub import migrations
from smart.hub.database_roles import DATABASE_ROLES
from smart.testing.patience import STATE_DEADLINE_S
from smart.testing.plugin import FreshDatabase


def _migrate(database: FreshDatabase, role: str, state: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SMART_STATE_DIR": str(state),  # each pod its own volume, as in the chart
        "SMART_DATABASE_URL": database.url,
        "SMART_LOG_LEVEL": "info",
    }
    log = (state.parents[1] / f"{role}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "smart", "hub", "migrate", "--role", role, "--url-file", str(state / "url")],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _waiting_for_the_lock(conn: psycopg.Connection[Any], database: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event = 'advisory'",
        (database,),
    ).fetchone()
    return int(row[0]) if row else 0


def test_two_role_migrations_started_together_wait_for_each_other_and_both_succeed(
    database: FreshDatabase, tmp_path: Path
) -> None:
    states = {role: tmp_path / role / "state" for role in ("vault", "floor")}
    for state in states.values():
        state.mkdir(parents=True)
    with psycopg.connect(database.url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtext(%s))", (migrations.MIGRATE_LOCK,))
        started = {role: _migrate(database, role, state) for role, state in states.items()}
        try:
            deadline = time.monotonic() + STATE_DEADLINE_S
            while time.monotonic() < deadline and _waiting_for_the_lock(holder, database.name) < 2:
                for role, process in started.items():
                    assert process.poll() is None, (tmp_path / f"{role}.log").read_text()
                time.sleep(0.2)
            assert _waiting_for_the_lock(holder, database.name) == 2
            # Nothing made before the lock: the whole owner step is inside it.
            made = holder.execute("SELECT to_regnamespace('vault'), to_regclass('ledger_entries')").fetchone()
            assert made == (None, None)
        finally:
            holder.execute("SELECT pg_advisory_unlock(hashtext(%s))", (migrations.MIGRATE_LOCK,))
            for process in started.values():
                try:
                    process.wait(timeout=STATE_DEADLINE_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    for role, process in started.items():
        output = (tmp_path / f"{role}.log").read_text()
        assert process.returncode == 0, output
        assert f"smart hub: {role} migrated" in output
    assert "migrations.waiting" in (tmp_path / "vault.log").read_text() + (tmp_path / "floor.log").read_text()
    for role, state in states.items():
        with psycopg.connect((state / "url").read_text().strip()) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (DATABASE_ROLES[HubRole(role)],)
