"""``smart_grafana``: SELECT on the dashboards' tables only, every session read-only, no secret readable.

On a database with the ledger and the hub services' schemas migrated as the hub migrates them
(SMART-ID's logins and sessions, SMART-API's keys, the Vault's people), the role reads each table
its panels read and is refused, by PostgreSQL, every write and every table it was not granted. A
grant made by mistake still cannot write (the role's sessions are read-only) and is taken back the
next time the hub starts.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg import errors, sql
from psycopg.conninfo import make_conninfo

from smart.grafana import queries
from smart.hub import database_roles
from smart.hub.client_api import service as client_api_service
from smart.hub.clients import store as clients_store
from smart.hub.compliance import index as compliance_index
from smart.hub.inventory import store as inventory_store
from smart.hub.maintenance import store as maintenance_store
from smart.hub.qa import store as qa_store
from smart.hub.vault import database as vault_database
from smart.ledger import hub_store
from smart.testing.plugin import FreshDatabase
from tests.hub.roles.test_boundaries import Hubs, hubs

__all__ = ["hubs"]  # the started Business hub of the roles' tests, reused

#: Secrets and personal records Grafana never needs.
EXCLUDED = (
    "vault.logins",
    "vault.sessions",
    "vault.people",
    "vault.credentials",
    "client_api.api_keys",
    "client_api.oauth_tokens",
    "maintenance.calibrations",
    "public.ledger_registrations",
    "clients.po_lines",
)


def _ident(qualified: str) -> sql.Composed:
    schema, table = qualified.split(".", 1)
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))


@pytest.fixture
def grafana(database: FreshDatabase, tmp_path: Path) -> str:
    hub_store.migrate(database.url, app_password=database.app_password)
    vault_database.migrate(database.url)
    client_api_service.migrate(database.url)
    clients_store.migrate(database.url)
    compliance_index.migrate(database.url)
    qa_store.migrate(database.url)
    maintenance_store.migrate(database.url)
    inventory_store.migrate(database.url)
    return database_roles.ensure_grafana_role(database.url, tmp_path / "secrets")


def test_grafana_reads_its_panels_tables_and_is_refused_every_write_and_every_other_table(
    grafana: str, database: FreshDatabase, tmp_path: Path
) -> None:
    with psycopg.connect(grafana, autocommit=True) as conn:
        for table in queries.TABLES:
            conn.execute(sql.SQL("SELECT count(*) FROM {}").format(_ident(table)))
        for table in EXCLUDED:
            with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
                conn.execute(sql.SQL("SELECT * FROM {} LIMIT 1").format(_ident(table)))
        conn.execute("SELECT po, client FROM clients.purchase_orders")  # the customer, column by column
        conn.execute("SELECT code, name FROM clients.clients")
        conn.execute("SELECT station, rule, standard, at FROM compliance_decisions")
        for who in (
            "SELECT added_by FROM clients.purchase_orders",
            "SELECT * FROM clients.clients",
            "SELECT person FROM compliance_decisions",  # whose badge was refused: not Grafana's
            "SELECT message FROM compliance_decisions",
        ):
            with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
                conn.execute(who)
        with pytest.raises(errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO ledger_alarms (node, node_seq, detail) VALUES ('pt-1', 1, 'x')")
        conn.execute("SET default_transaction_read_only = off")  # a session trying its way out
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
            conn.execute("INSERT INTO ledger_alarms (node, node_seq, detail) VALUES ('pt-1', 1, 'x')")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("DELETE FROM qa.ncr_events")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE public.grafana_notes (note text)")

    # An owner's mistaken grant: still no write (read-only sessions), and the next start takes it back.
    with psycopg.connect(database.url, autocommit=True) as owner:
        owner.execute("GRANT INSERT ON ledger_alarms TO smart_grafana")
        owner.execute("GRANT SELECT ON vault.sessions TO smart_grafana")
        owner.execute("GRANT SELECT (added_by) ON clients.purchase_orders TO smart_grafana")
    with psycopg.connect(grafana, autocommit=True) as conn:
        with pytest.raises(errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO ledger_alarms (node, node_seq, detail) VALUES ('pt-1', 1, 'x')")
    database_roles.ensure_grafana_role(database.url, tmp_path / "secrets")
    with psycopg.connect(database.url, autocommit=True) as owner:
        held = owner.execute(
            "SELECT has_table_privilege('smart_grafana', 'ledger_alarms', 'INSERT'),"
            " has_table_privilege('smart_grafana', 'vault.sessions', 'SELECT'),"
            " has_table_privilege('smart_grafana', 'ledger_log', 'SELECT'),"
            " has_column_privilege('smart_grafana', 'clients.purchase_orders', 'added_by', 'SELECT'),"
            " has_column_privilege('smart_grafana', 'clients.purchase_orders', 'client', 'SELECT')"
        ).fetchone()
        assert held == (False, False, True, False, True)
        alarms = owner.execute("SELECT count(*) FROM ledger_alarms").fetchone()
        assert alarms == (0,)

    # The password is the secrets file's (owner-only), and nothing else signs in.
    password = (tmp_path / "secrets" / database_roles.GRAFANA_PASSWORD_FILE).read_text().strip()
    assert f"password={password}" in grafana
    assert (tmp_path / "secrets" / database_roles.GRAFANA_PASSWORD_FILE).stat().st_mode & 0o077 == 0
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(grafana.replace(password, "wrong-" + password)).close()


def test_a_hub_start_makes_the_role_and_grants_what_that_hub_migrated(hubs: Hubs) -> None:
    """A Business hub started for real (`smart hub run --role business`) makes the role and its grants."""
    password = (hubs.settings.secrets_directory / database_roles.GRAFANA_PASSWORD_FILE).read_text().strip()
    url = make_conninfo(hubs.owner_url, user=database_roles.GRAFANA_ROLE, password=password)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT count(*) FROM ledger_log")  # the ledger was there before it started
        conn.execute("SELECT count(*) FROM ledger_checkpoints")
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
            conn.execute("SELECT * FROM vault.sessions")
        with pytest.raises(errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO ledger_alarms (node, node_seq, detail) VALUES ('pt-1', 1, 'x')")
