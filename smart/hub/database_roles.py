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
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from smart.bus.hub_roles import HubRole
from smart.ledger import hub_store
from smart.secret_files import secret

#: The login role of each hub role (the Floor's is the ledger's app role: INSERT and SELECT on the log).
DATABASE_ROLES = {
    HubRole.VAULT: "smart_vault",
    HubRole.FLOOR: hub_store.APP_ROLE,
    HubRole.BUSINESS: "smart_business",
}


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
