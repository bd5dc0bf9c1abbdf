"""Hub logins: accounts with a role, argon2-hashed passwords, and server-side sessions in PostgreSQL.

A session is a random token in an HttpOnly cookie; the database keeps only
its SHA-256, so a copy of the table lets no one in. Passwords are hashed with
argon2id (argon2-cffi's defaults) and rehashed on login when the parameters
change. Wrong user and wrong password answer the same, and take the same
work, so a login page does not tell which accounts exist.

Every page asks :meth:`Logins.session` on every request, so signing in,
looking a session up and signing out go through a small pool of
connections (opening one costs more than the query) and, on a hub, as the
sessions' own login role (:func:`smart.hub.database_roles.ensure_sessions_role`):
it may read a login's name, role, badge and hash, change the hash, and
keep sessions, and nothing else. Adding a login stays with the owner.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from smart.access.roles import Role
from smart.hub.vault import database
from smart.hub.vault.smartid import VaultError, utc_now

log = structlog.get_logger("smart.vault.logins")

SESSION_LIFETIME = timedelta(hours=8)  # one shift


@dataclass(frozen=True, slots=True)
class Login:
    username: str
    role: Role
    employee_id: str | None = None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Logins:
    """Hub logins over the owner's URL (migrating, adding) and a pool for sessions (``sessions_url``).

    Without ``sessions_url`` sessions use the owner's URL too (a test, a one-off command); a hub
    passes the sessions role's. :meth:`close` closes the pool.
    """

    def __init__(
        self,
        database_url: str,
        *,
        sessions_url: str | None = None,
        clock: Callable[[], datetime] = utc_now,
        pool_size: int = 4,
        migrate: bool = True,
    ) -> None:
        self.url = database_url
        self.clock = clock
        self.hasher = PasswordHasher()
        self._dummy = self.hasher.hash(secrets.token_urlsafe(16))
        if migrate:  # False: migrated by the owner beforehand (a hub role signed in as its own login)
            database.migrate(database_url)
        self.pool: ConnectionPool[psycopg.Connection[DictRow]] = ConnectionPool(
            sessions_url or database_url,
            min_size=1,
            max_size=pool_size,
            kwargs={"row_factory": dict_row, "autocommit": True},
            connection_class=psycopg.Connection[DictRow],
            open=True,
            name="vault-sessions",
        )

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> Logins:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def add(self, username: str, password: str, *, role: Role, employee_id: str | None = None) -> Login:
        if len(password) < 12:
            raise VaultError(f"login {username}: the password must be at least 12 characters")
        with database.connect(self.url) as conn:
            try:
                conn.execute(
                    "INSERT INTO vault.logins (username, password_hash, role, employee_id)"
                    " VALUES (%s, %s, %s, %s)",
                    (username, self.hasher.hash(password), role.value, employee_id),
                )
            except psycopg.errors.UniqueViolation as err:
                raise VaultError(f"login {username} already exists") from err
        log.info("login added", username=username, role=role.value)
        return Login(username, role, employee_id)

    def sign_in(self, username: str, password: str) -> str | None:
        """A new session token when the password is right, else None."""
        with self.pool.connection() as conn, conn.transaction():
            row = conn.execute(
                "SELECT password_hash FROM vault.logins WHERE username = %s", (username,)
            ).fetchone()
            stored = row["password_hash"] if row else self._dummy
            try:
                self.hasher.verify(stored, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                log.warning("sign-in refused", username=username)
                return None
            if row is None:
                return None
            if self.hasher.check_needs_rehash(stored):
                conn.execute(
                    "UPDATE vault.logins SET password_hash = %s WHERE username = %s",
                    (self.hasher.hash(password), username),
                )
            token = secrets.token_urlsafe(32)
            now = self.clock()
            conn.execute(
                "INSERT INTO vault.sessions (token_sha256, username, created_at, expires_at)"
                " VALUES (%s, %s, %s, %s)",
                (_digest(token), username, now, now + SESSION_LIFETIME),
            )
        log.info("signed in", username=username)
        return token

    def session(self, token: str) -> Login | None:
        """The login a session token belongs to, if the session is live."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT l.username, l.role, l.employee_id FROM vault.sessions s"
                " JOIN vault.logins l USING (username) WHERE s.token_sha256 = %s AND s.expires_at > %s",
                (_digest(token), self.clock()),
            ).fetchone()
        if row is None:
            return None
        return Login(row["username"], Role(row["role"]), row["employee_id"])

    def sign_out(self, token: str) -> None:
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM vault.sessions WHERE token_sha256 = %s", (_digest(token),))
