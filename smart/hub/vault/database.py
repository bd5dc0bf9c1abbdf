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
