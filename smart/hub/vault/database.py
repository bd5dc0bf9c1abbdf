"""The Vault's PostgreSQL: its schema (``vault``), created if missing, and connections to it."""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg.rows import DictRow, dict_row

SCHEMA = Path(__file__).with_name("schema.sql")


def connect(url: str) -> psycopg.Connection[DictRow]:
    return psycopg.connect(url, row_factory=dict_row)


def migrate(url: str) -> None:
    """Create the ``vault`` schema and its tables if they do not exist (safe to run again)."""
    with connect(url) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('smart.vault.migrate'))")
        conn.execute(SCHEMA.read_text().encode())


def grant(owner_url: str, role: str) -> None:
    """Give ``role`` (the Vault hub's login) SMART-ID's tables to read and write, as the owner.

    No DDL: the schema is the owner's (:func:`migrate`); the role keeps the rows, nothing more.
    """
    from psycopg import sql

    name = sql.Identifier(role)
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA vault TO {}").format(name))
        conn.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA vault TO {}").format(name)
        )
        conn.execute(sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA vault TO {}").format(name))
