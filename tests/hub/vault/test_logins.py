"""Hub sessions over a pool, as the sessions' own login role: what it may do, and everything it may not."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from argon2 import PasswordHasher
from psycopg_pool import PoolClosed

from smart.access.roles import Role
from smart.bus.hub_roles import HubRole
from smart.hub import database_roles
from smart.hub.vault.logins import Logins
from smart.ledger import hub_store
from smart.runtime.background import BackgroundFloor
from smart.testing.plugin import fresh_database

PASSWORD = "correct horse battery"


@dataclass(frozen=True, slots=True)
class Vault:
    owner_url: str
    sessions_url: str
    logins: Logins


@pytest.fixture(scope="module")
def vault(postgres_floor: BackgroundFloor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vault]:
    with fresh_database(postgres_floor) as database:
        owner_url = database.url
        hub_store.migrate(owner_url)  # the ledger's tables beside the Vault's, as on a hub
        secrets_dir = Path(tmp_path_factory.mktemp("secrets"))
        sessions_url = database_roles.ensure_sessions_role(owner_url, secrets_dir)
        assert database_roles.ensure_sessions_role(owner_url, secrets_dir) == sessions_url  # safe again
        logins = Logins(owner_url, sessions_url=sessions_url)
        logins.add("qm-alice", PASSWORD, role=Role.QUALITY_MANAGER)
        try:
            yield Vault(owner_url, sessions_url, logins)
        finally:
            logins.close()


def test_sign_in_lookup_and_sign_out_work_as_the_sessions_role_over_one_pool(vault: Vault) -> None:
    token = vault.logins.sign_in("qm-alice", PASSWORD)
    assert token is not None
    assert vault.logins.sign_in("qm-alice", "not the password at all") is None
    for _ in range(20):  # every page asks; the pool answers without a new connection each time
        login = vault.logins.session(token)
        assert login is not None and (login.username, login.role) == ("qm-alice", Role.QUALITY_MANAGER)
    assert vault.logins.pool.get_stats()["connections_num"] <= 4
    with vault.logins.pool.connection() as conn:
        assert conn.execute("SELECT current_user AS who").fetchone() == {"who": "smart_sessions_hub"}
    vault.logins.sign_out(token)
    assert vault.logins.session(token) is None


def test_an_old_hash_is_rehashed_on_sign_in_by_the_sessions_role(vault: Vault) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    with psycopg.connect(vault.owner_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO vault.logins (username, password_hash, role) VALUES ('op-rehash', %s, 'operator')",
            (weak,),
        )
    assert vault.logins.sign_in("op-rehash", PASSWORD) is not None
    with psycopg.connect(vault.owner_url, autocommit=True) as conn:
        row = conn.execute("SELECT password_hash FROM vault.logins WHERE username = 'op-rehash'").fetchone()
    assert row is not None and row[0] != weak and not vault.logins.hasher.check_needs_rehash(row[0])


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM vault.people LIMIT 1",
        "SELECT * FROM vault.credentials LIMIT 1",
        "SELECT * FROM vault.records LIMIT 1",
        "SELECT * FROM vault.issuer_keys LIMIT 1",
        "SELECT * FROM ledger_entries LIMIT 1",
        "SELECT added_at FROM vault.logins LIMIT 1",
        "UPDATE vault.logins SET role = 'quality_manager' WHERE username = 'qm-alice'",
        "INSERT INTO vault.logins (username, password_hash, role) VALUES ('intruder', 'x', 'qm')",
        "DELETE FROM vault.logins WHERE username = 'qm-alice'",
        "UPDATE vault.sessions SET expires_at = now() + interval '10 years'",
        "INSERT INTO ledger_entries (idx, node, node_seq, entry) VALUES (0, 'x', 0, '\\x00')",
        "CREATE TABLE vault.smuggled (x int)",
    ],
)
def test_the_sessions_role_is_refused_every_other_table_and_column(vault: Vault, statement: str) -> None:
    with (
        psycopg.connect(vault.sessions_url, autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(statement)


def test_closed_logins_take_their_pool_with_them(vault: Vault) -> None:
    logins = Logins(vault.owner_url, sessions_url=vault.sessions_url)
    token = logins.sign_in("qm-alice", PASSWORD)
    assert token is not None and logins.session(token) is not None
    logins.close()
    assert logins.pool.closed
    with pytest.raises(PoolClosed):
        logins.session(token)


def test_each_hub_role_has_its_own_sessions_login_so_separate_pods_keep_their_passwords(
    vault: Vault, tmp_path: Path
) -> None:
    urls = {
        role: database_roles.ensure_sessions_role(vault.owner_url, tmp_path / role.value, role)
        for role in (HubRole.VAULT, HubRole.BUSINESS)
    }  # two pods, two secrets directories, two generated passwords
    for role, url in urls.items():
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (f"smart_sessions_{role.value}",)
            conn.execute("SELECT count(*) FROM vault.sessions").fetchone()
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT * FROM vault.people LIMIT 1")
    with psycopg.connect(vault.owner_url, autocommit=True) as conn:
        row = conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'smart_sessions'").fetchone()
    assert row == (False,)  # the group holds the grants; no one signs in as it
