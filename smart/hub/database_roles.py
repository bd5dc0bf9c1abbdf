"""Each hub role's own PostgreSQL login: the Business hub's cannot read the Vault's or the Floor's tables.

The database owner migrates every schema; each service then works as the
login role of the hub role it belongs to, granted exactly its own schemas'
tables (:func:`smart.hub.migrations.apply` grants per table and revokes from
PUBLIC). ``smart_business`` is granted the ``published`` subset and the
Business services' schemas and nothing else: a query of ``vault.people`` or
``ledger_entries`` as that role is refused by PostgreSQL (permission denied),
not by our code. ``smart_vault`` holds the Vault services' new schemas
(Education, PeopleOps); SMART-ID's own tables stay on the owner's connection
as before, and the Floor keeps the ledger's app role (``smart_app``).

Every role's pages sign in against the Vault's logins; they do so as
a login in ``smart_sessions`` (:func:`ensure_sessions_role`), not as the owner: it may
read a login's name, hash, role and badge, change the hash (a rehash on
sign-in) and keep ``vault.sessions``, and PostgreSQL refuses it every other
table and column (people, credentials, the ledger, a login's role).
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from smart.bus.hub_roles import HubRole
from smart.grafana import queries as grafana_queries
from smart.hub.vault import database as vault_database
from smart.ledger import hub_store
from smart.secret_files import secret

#: The login role of each hub role (the Floor's is the ledger's app role: INSERT and SELECT on the log).
DATABASE_ROLES = {
    HubRole.VAULT: "smart_vault",
    HubRole.FLOOR: hub_store.APP_ROLE,
    HubRole.BUSINESS: "smart_business",
}


#: Grafana's login: SELECT on exactly the tables its dashboards read (:data:`smart.grafana.queries.TABLES`),
#: every session read-only; never the logins, sessions, API keys or people records.
GRAFANA_ROLE = "smart_grafana"
GRAFANA_PASSWORD_FILE = f"postgres-{GRAFANA_ROLE}.password"

#: The group role holding what hub pages need to sign in and look sessions up (NOLOGIN); each hub
#: process signs in as a login of its own in it (:func:`sessions_login`), so hub roles in separate
#: pods never overwrite each other's password.
SESSIONS_ROLE = "smart_sessions"

#: What signing in, a session lookup and signing out need, and nothing more.
_SESSIONS_GRANTS = (
    "GRANT USAGE ON SCHEMA vault TO {role}",
    "GRANT SELECT (username, password_hash, role, employee_id) ON vault.logins TO {role}",
    "GRANT UPDATE (password_hash) ON vault.logins TO {role}",
    "GRANT SELECT, INSERT, DELETE ON vault.sessions TO {role}",
)


def sessions_login(role: HubRole | None) -> str:
    """The sessions login of one hub role's process (``None``: the single hub, a bench)."""
    return f"{SESSIONS_ROLE}_{role.value if role is not None else 'hub'}"


def password_file(role: HubRole) -> str:
    if role is HubRole.FLOOR:
        return "ledger-app.password"  # the app role's, as the hub services always kept it
    return f"postgres-{DATABASE_ROLES[role]}.password"


def ensure_login_role(owner_url: str, role: HubRole, secrets_dir: Path) -> str:
    """Create (or set the password of) ``role``'s login role, as the owner; its connection URL.

    The role may connect to this database and nothing more until a migration grants it tables.
    """
    name = DATABASE_ROLES[role]
    password = secret(secrets_dir / password_file(role))
    with psycopg.connect(owner_url, autocommit=True) as conn:
        hub_store.ensure_role(conn, name, password)
        database = conn.info.dbname
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(database), sql.Identifier(name)
            )
        )
    return make_conninfo(owner_url, user=name, password=password)


#: The single hub's own login (``smart hub run --role all`` after ``smart hub migrate --role all``):
#: a member of the three roles' logins, so it holds exactly their grants together and no owner's right.
SINGLE_HUB_ROLE = "smart_hub"
SINGLE_HUB_PASSWORD_FILE = f"postgres-{SINGLE_HUB_ROLE}.password"


def ensure_single_hub_role(owner_url: str, secrets_dir: Path) -> str:
    """Create (or refresh) the single hub's login, in each role's login and the sessions group; its URL.

    Run by ``smart hub migrate --role all`` after each role's own owner step, so the roles' logins
    exist with their grants; the single hub then runs every service on this one login, never as
    the owner (no DDL, no role made at runtime).
    """
    password = secret(secrets_dir / SINGLE_HUB_PASSWORD_FILE)
    with psycopg.connect(owner_url, autocommit=True) as conn:
        hub_store.ensure_role(conn, SINGLE_HUB_ROLE, password)
        login = sql.Identifier(SINGLE_HUB_ROLE)
        conn.execute(sql.SQL("ALTER ROLE {} INHERIT").format(login))
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(conn.info.dbname), login)
        )
        for member_of in DATABASE_ROLES.values():
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(member_of), login))
    grant_sessions(owner_url, SINGLE_HUB_ROLE)
    return make_conninfo(owner_url, user=SINGLE_HUB_ROLE, password=password)


def ensure_grafana_role(owner_url: str, secrets_dir: Path) -> str:
    """Create (or refresh) Grafana's read-only login as the owner; its connection URL.

    Grants SELECT on each dashboard table that exists now (and on only the named columns of the
    tables in :data:`smart.grafana.queries.COLUMNS`); a hub role grants its own schemas' tables
    after migrating them, so every role's start calls this. Anything else the role holds, on any
    table or column, is revoked first, so a grant cannot linger after a panel stops needing it.
    Every session of the role is read-only (``default_transaction_read_only``): even a grant made by
    mistake cannot let Grafana write.
    """
    password = secret(secrets_dir / GRAFANA_PASSWORD_FILE)
    role = sql.Identifier(GRAFANA_ROLE)
    with psycopg.connect(owner_url, autocommit=True) as conn:
        hub_store.ensure_role(conn, GRAFANA_ROLE, password)
        conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(role))
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(conn.info.dbname), role)
        )
        held = conn.execute(
            "SELECT n.nspname, c.relname, array_agg(a.attname::text ORDER BY a.attnum) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
            " WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f')"
            " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            " AND (has_table_privilege(%s, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES,"
            " TRIGGER') OR has_any_column_privilege(%s, c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'))"
            " GROUP BY n.nspname, c.relname",
            (GRAFANA_ROLE, GRAFANA_ROLE),
        ).fetchall()
        for schema, table, columns in held:
            name = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(name, role))
            conn.execute(
                sql.SQL("REVOKE ALL ({}) ON TABLE {} FROM {}").format(
                    sql.SQL(", ").join(sql.Identifier(c) for c in columns), name, role
                )
            )
        wanted: dict[str, tuple[str, ...] | None] = dict.fromkeys(grafana_queries.TABLES)
        wanted.update(grafana_queries.COLUMNS)
        for qualified, columns in wanted.items():
            schema, table = qualified.split(".", 1)
            row = conn.execute("SELECT to_regclass(%s)", (qualified,)).fetchone()
            if row is None or row[0] is None:
                continue  # that service's schema is not migrated here (yet)
            name = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), role))
            select = (
                sql.SQL("SELECT")
                if columns is None
                else sql.SQL("SELECT ({})").format(sql.SQL(", ").join(sql.Identifier(c) for c in columns))
            )
            conn.execute(sql.SQL("GRANT {} ON TABLE {} TO {}").format(select, name, role))
    return make_conninfo(owner_url, user=GRAFANA_ROLE, password=password)


def ensure_sessions_role(owner_url: str, secrets_dir: Path, role: HubRole | None = None) -> str:
    """Create :data:`SESSIONS_ROLE` with its grants and ``role``'s login in it, as the owner; its URL.

    The Vault's schema is migrated first (its tables must exist to be granted). The login's password
    is ``postgres-<login>.password`` in ``secrets_dir``, generated the first time.
    """
    login = sessions_login(role)
    password = secret(secrets_dir / f"postgres-{login}.password")
    with psycopg.connect(owner_url, autocommit=True) as conn:
        hub_store.ensure_role(conn, login, password)
    grant_sessions(owner_url, login)
    return make_conninfo(owner_url, user=login, password=password)


def grant_sessions(owner_url: str, login: str) -> None:
    """Make :data:`SESSIONS_ROLE` (with its grants) and put the existing ``login`` in it, as the owner.

    A hub role's pod on Kubernetes signs its pages in as its own login (so it holds one database
    password, never the owner's): that login is put in the group, which adds the sign-in grants and
    nothing else.
    """
    vault_database.migrate(owner_url)
    with psycopg.connect(owner_url, autocommit=True) as conn, conn.transaction():
        # Hub roles start at once; grants on one role must not race each other.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('smart.hub.sessions_role'))")
        hub_store.ensure_role(conn, SESSIONS_ROLE, None)
        group, member = sql.Identifier(SESSIONS_ROLE), sql.Identifier(login)
        conn.execute(sql.SQL("ALTER ROLE {} INHERIT").format(member))
        conn.execute(sql.SQL("GRANT {} TO {}").format(group, member))
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(conn.info.dbname), member)
        )
        for grant in _SESSIONS_GRANTS:
            conn.execute(sql.SQL(grant).format(role=group))


#: What the Vault's means read beyond their own schemas, read only: the hub log QACentral follows, the
#: jobs handed off and the POs' clients (first-pass yield), the stations' open reorders InventoryHub
#: sweeps.
VAULT_READS = (
    "public.ledger_entries",
    "public.ledger_checkpoints",
    "public.handoff_jobs",
    "clients.purchase_orders",
    "public.reorder_events",
)


def grant_vault_reads(owner_url: str) -> None:
    """SELECT on :data:`VAULT_READS` for the Vault's login (the tables must exist: migrated before)."""
    role = sql.Identifier(DATABASE_ROLES[HubRole.VAULT])
    with psycopg.connect(owner_url, autocommit=True) as conn:
        for qualified in VAULT_READS:
            schema, table = qualified.split(".", 1)
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), role))
            conn.execute(
                sql.SQL("GRANT SELECT ON TABLE {}.{} TO {}").format(
                    sql.Identifier(schema), sql.Identifier(table), role
                )
            )


def login_of(url: str) -> str:
    """The role a connection to ``url`` is (``current_user``): tells a hub role's own login from the owner."""
    with psycopg.connect(url, connect_timeout=10) as conn:
        row = conn.execute("SELECT current_user").fetchone()
    return str(row[0]) if row is not None else ""
