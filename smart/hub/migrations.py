"""Versioned schema migrations for the hub services that own a PostgreSQL schema of their own.

Each service keeps its migrations as numbered SQL files in a folder beside
its code (``0001_clients.sql``, ``0002_…``). :func:`apply` runs the ones a
database has not had yet, in order, each in a transaction of its own, as
the owner role, and remembers each in ``<schema>.migrations`` with the
SHA-256 of the file it ran. A file is never edited once applied: if an
applied file's text no longer matches what was run, :func:`apply` refuses
and names the file, so a schema can always be rebuilt by running the same
files again. After migrating, the app role gets exactly the privileges
the service declares per table (least privilege), and nothing on the
others; PUBLIC gets nothing.

Alembic would do this with SQLAlchemy behind it; the services here write
SQL with psycopg and need only this much.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import psycopg
import structlog
from psycopg import sql

from smart.ledger import hub_store

log = structlog.get_logger("smart.hub.migrations")

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
#: The advisory lock of a hub role's whole owner step (one per database; the per-schema locks of
#: :func:`apply` are taken inside it, on connections of their own).
MIGRATE_LOCK = "smart.hub.migrate"
#: Whether this thread of control holds the migration lock already (a nested owner step takes it once).
_HELD: ContextVar[bool] = ContextVar("smart.hub.migrations.held", default=False)
P = ParamSpec("P")
R = TypeVar("R")


class MigrationError(RuntimeError):
    """A migration folder or an applied migration is not what it must be; the message names the file."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    path: Path
    sha256: str

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")


@contextmanager
def one_migration_at_a_time(owner_url: str) -> Iterator[None]:
    """Hold the database's migration lock (waiting for it while another migration holds it).

    A session-level advisory lock on a connection of its own, released when the block ends or the
    process dies (its connection closes), so a migrate killed half-way never leaves it held.
    """
    if _HELD.get():  # the single hub's owner step runs each role's inside its own: already held
        yield
        return
    with psycopg.connect(owner_url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (MIGRATE_LOCK,)).fetchone()
        if row is None or not row[0]:
            log.info("migrations.waiting", lock=MIGRATE_LOCK, detail="another hub role is migrating")
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (MIGRATE_LOCK,))
        held = _HELD.set(True)
        try:
            yield
        finally:
            _HELD.reset(held)
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (MIGRATE_LOCK,))


class _Migrating(Protocol):
    def owner_database_url(self) -> str: ...


H = TypeVar("H", bound=_Migrating)


def one_at_a_time(method: Callable[Concatenate[H, P], R]) -> Callable[Concatenate[H, P], R]:
    """A hub's owner step (``HubServices.prepare``) under :func:`one_migration_at_a_time`."""

    @functools.wraps(method)
    def held(hub: H, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with one_migration_at_a_time(hub.owner_database_url()):
            return method(hub, *args, **kwargs)

    return held


def found(directory: Path) -> list[Migration]:
    """The migrations in ``directory``, in order; numbers must run 1, 2, 3… with no gap or repeat."""
    migrations: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: a migration is named NNNN_name.sql")
        migrations.append(Migration(int(match[1]), path, hashlib.sha256(path.read_bytes()).hexdigest()))
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise MigrationError(f"{migration.path}: expected migration number {expected:04d}")
    return migrations


def apply(
    owner_url: str,
    *,
    schema: str,
    directory: Path,
    grants: Mapping[str, str],
    app_role: str = hub_store.APP_ROLE,
) -> list[int]:
    """Run the migrations ``schema`` lacks, then grant ``app_role`` exactly ``grants`` (table → privileges).

    Returns the versions run now (empty when the schema was current). Safe to run again and from
    two processes at once (an advisory lock per schema).
    """
    wanted = found(directory)
    ran: list[int] = []
    with psycopg.connect(owner_url, autocommit=True) as conn:
        lock = f"smart.hub.migrations.{schema}"
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (lock,))
        try:
            hub_store.ensure_role(conn, app_role, None)
            name = sql.Identifier(schema)
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {}.migrations (version integer PRIMARY KEY, "
                    "name text NOT NULL, sha256 text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
                ).format(name)
            )
            applied = {
                int(row[0]): (str(row[1]), str(row[2]))
                for row in conn.execute(
                    sql.SQL("SELECT version, name, sha256 FROM {}.migrations").format(name)
                )
            }
            for migration in wanted:
                held = applied.get(migration.version)
                if held is not None:
                    if held[1] != migration.sha256:
                        raise MigrationError(
                            f"{migration.path}: edited after it was applied to schema {schema} "
                            f"(ran as {held[0]}); add a new migration instead"
                        )
                    continue
                with conn.transaction():
                    conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(name))
                    conn.execute(migration.text.encode())
                    conn.execute(
                        sql.SQL(
                            "INSERT INTO {}.migrations (version, name, sha256) VALUES (%s, %s, %s)"
                        ).format(name),
                        (migration.version, migration.path.name, migration.sha256),
                    )
                ran.append(migration.version)
                log.info("migrations.applied", schema=schema, migration=migration.path.name)
            beyond = sorted(set(applied) - {m.version for m in wanted})
            if beyond:
                raise MigrationError(
                    f"schema {schema} has migrations {beyond} that "
                    f"{directory} does not (a newer SMART ran here)"
                )
            _grant(conn, schema=schema, grants=grants, app_role=app_role)
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (lock,))
    return ran


def _grant(conn: psycopg.Connection[Any], *, schema: str, grants: Mapping[str, str], app_role: str) -> None:
    name, role = sql.Identifier(schema), sql.Identifier(app_role)
    conn.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(name))
    conn.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM PUBLIC, {}").format(name, role))
    conn.execute(sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM PUBLIC, {}").format(name, role))
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(name, role))
    for table, privileges in grants.items():
        allowed = [p.strip().upper() for p in privileges.split(",")]
        if any(p not in {"SELECT", "INSERT", "UPDATE", "DELETE"} for p in allowed):
            raise MigrationError(f"{schema}.{table}: unknown privilege in {privileges!r}")
        conn.execute(
            sql.SQL("GRANT {} ON TABLE {}.{} TO {}").format(
                sql.SQL(", ").join(sql.SQL(p) for p in allowed), name, sql.Identifier(table), role
            )
        )
    conn.execute(sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {} TO {}").format(name, role))


def versions(url: str, schema: str) -> list[int]:
    """The migrations a database has had for ``schema`` (empty when none)."""
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (f"{schema}.migrations",)).fetchone()
        if exists is None or exists[0] is None:
            return []
        query = sql.SQL("SELECT version FROM {}.migrations ORDER BY version").format(sql.Identifier(schema))
        return [int(row[0]) for row in conn.execute(query)]
