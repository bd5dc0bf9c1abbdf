"""The client API's credentials: API keys and OAuth clients, each scoped to one client, revocable.

A secret is shown once, when made, and kept only as its SHA-256 digest:
it is 32 random bytes, so a digest cannot be guessed back and is cheap
enough to check on every request (a password hash such as argon2 is for
secrets people choose). A credential names exactly one of the shop's
clients (one the Floor published to the Business hub as a ``client``
record, whether or not it has a PO yet), and everything the API answers is
filtered by that client, so a key can never read another client's POs.
Making and revoking a credential is one transaction with one entry on the
``client-api`` ledger node (who, which client, the key's id; never the
secret or its digest). Revocation takes effect on the next request: keys
are looked up every time, never cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import structlog
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from smart.hub import migrations
from smart.hub.clients.store import Refused
from smart.hub.service_log import ServiceLedger
from smart.hub.service_store import ServiceStore, utc_now
from smart.ledger import hub_store

log = structlog.get_logger("smart.hub.client_api")

SCHEMA = "client_api"
MIGRATIONS = Path(__file__).with_name("migrations")
GRANTS = {
    "api_keys": "SELECT, INSERT, UPDATE",
    "oauth_clients": "SELECT, INSERT, UPDATE",
    "oauth_tokens": "SELECT, INSERT",
    "rate_buckets": "SELECT, INSERT, UPDATE",
}
KEY_PREFIX = "smk_"
TOKEN_LIFETIME = timedelta(minutes=15)


def migrate(owner_url: str, *, app_role: str = hub_store.APP_ROLE) -> list[int]:
    """Bring the ``client_api`` schema up to date as the owner; the app role gets :data:`GRANTS` only."""
    return migrations.apply(owner_url, schema=SCHEMA, directory=MIGRATIONS, grants=GRANTS, app_role=app_role)


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True, slots=True)
class Credential:
    """Who is calling: the credential's id (key id or OAuth client id) and the one client it reads."""

    id: str
    client: str
    kind: str  # "api-key" or "oauth"


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket per credential: ``rate`` requests a second on average, ``burst`` at once."""

    rate: float
    burst: int


@dataclass(frozen=True, slots=True)
class Admission:
    """A request's credential and, when it is past its rate limit, the seconds until one may go."""

    credential: Credential
    wait_s: float


#: Authenticate and take one token from the credential's bucket in one statement, with the database's
#: clock (every API process shares it). The ``SET`` reads the bucket's row as locked, so concurrent
#: requests of one credential, from any process, take one token each. The digest is compared by the
#: index: it is SHA-256 of 32 random bytes, so a timing difference tells nothing about the secret. An
#: unknown or revoked credential returns no row and takes nothing: guessing cannot drain a bucket.
_REFILLED = (
    "least(%(burst)s::float8, b.tokens + %(rate)s::float8 "
    "* greatest(0, extract(epoch FROM statement_timestamp() - b.at)))"
)
_ADMIT = (
    "WITH cred AS ({credential}), take AS ("
    " INSERT INTO client_api.rate_buckets AS b (credential, tokens, at, allowed)"
    " SELECT bucket, %(burst)s::float8 - 1, statement_timestamp(), true FROM cred"
    " ON CONFLICT (credential) DO UPDATE SET"
    f" tokens = CASE WHEN {_REFILLED} >= 1 THEN {_REFILLED} - 1 ELSE {_REFILLED} END,"
    f" allowed = {_REFILLED} >= 1,"
    " at = greatest(b.at, statement_timestamp())"
    " RETURNING allowed, tokens)"
    " SELECT cred.id, cred.client, take.allowed, take.tokens FROM cred, take"
)
_KEY = (
    "SELECT id, client, 'key:' || id AS bucket FROM client_api.api_keys "
    "WHERE id = %(id)s AND secret_sha256 = %(digest)s AND revoked_at IS NULL"
)
_TOKEN = (
    "SELECT t.client_id AS id, t.client, 'oauth:' || t.client_id AS bucket FROM client_api.oauth_tokens t "
    "JOIN client_api.oauth_clients c USING (client_id) "
    "WHERE t.token_sha256 = %(digest)s AND t.expires_at > %(now)s AND c.revoked_at IS NULL"
)
_ADMIT_KEY = _ADMIT.format(credential=_KEY)
_ADMIT_TOKEN = _ADMIT.format(credential=_TOKEN)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: str
    client: str
    label: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "client": self.client,
            "label": self.label,
            "createdBy": self.created_by,
            "createdAt": self.created_at.isoformat(),
            "revokedAt": self.revoked_at.isoformat() if self.revoked_at else None,
        }


class ClientCredentials(ServiceStore):
    """API keys, OAuth clients and their tokens, on app-role connections; changes on ``client-api``."""

    log_name = "client_api"

    def __init__(
        self, url: str, *, ledger: ServiceLedger, clock: Callable[[], datetime] = utc_now, pool_size: int = 4
    ) -> None:
        super().__init__(url, ledger=ledger, clock=clock, pool_size=pool_size)
        self.url = url
        #: Connections of the serving loop's pool: the admissions (one per credential admitted at once)
        #: and the PO reads (:meth:`serving_rows`) share it.
        self.serving_size = pool_size
        self._serving: _Serving | None = None

    # -- API keys -----------------------------------------------------------------------------

    def create_key(self, client: str, *, actor: str, label: str = "") -> tuple[KeyInfo, str]:
        """A new key for ``client``; returns it with the full key, which is never shown again."""
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        at = self.clock()
        with self._changing() as conn:
            _known(conn, client)
            conn.execute(
                "INSERT INTO client_api.api_keys (id, client, secret_sha256, label, created_by, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (key_id, client, digest(secret), label, actor, at),
            )
            self._record("client.api_key.created", key_id, actor, client=client, label=label)
        return KeyInfo(key_id, client, label, actor, at, None), f"{KEY_PREFIX}{key_id}.{secret}"

    def revoke_key(self, key_id: str, *, actor: str) -> KeyInfo:
        at = self.clock()
        with self._changing() as conn:
            row = conn.execute(
                "UPDATE client_api.api_keys SET revoked_at = %s, revoked_by = %s "
                "WHERE id = %s AND revoked_at IS NULL RETURNING *",
                (at, actor, key_id),
            ).fetchone()
            if row is None:
                raise Refused("key", f"no key {key_id} that is not revoked already")
            self._record("client.api_key.revoked", key_id, actor, client=row["client"])
        return _key(row)

    def keys(self, client: str | None = None) -> list[KeyInfo]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT * FROM client_api.api_keys WHERE %s::text IS NULL OR client = %s ORDER BY created_at",
                (client, client),
            ).fetchall()
        return [_key(row) for row in rows]

    # -- OAuth clients ------------------------------------------------------------------------

    def create_oauth_client(self, client: str, *, actor: str, label: str = "") -> tuple[str, str]:
        """A new OAuth client for ``client``: its ``client_id`` and ``client_secret`` (shown once)."""
        client_id, secret = f"smc_{secrets.token_hex(8)}", secrets.token_urlsafe(32)
        at = self.clock()
        with self._changing() as conn:
            _known(conn, client)
            conn.execute(
                "INSERT INTO client_api.oauth_clients (client_id, client, secret_sha256, label, created_by, "
                "created_at) VALUES (%s, %s, %s, %s, %s, %s)",
                (client_id, client, digest(secret), label, actor, at),
            )
            self._record("client.oauth_client.created", client_id, actor, client=client, label=label)
        return client_id, secret

    def revoke_oauth_client(self, client_id: str, *, actor: str) -> None:
        at = self.clock()
        with self._changing() as conn:
            row = conn.execute(
                "UPDATE client_api.oauth_clients SET revoked_at = %s, revoked_by = %s "
                "WHERE client_id = %s AND revoked_at IS NULL RETURNING client",
                (at, actor, client_id),
            ).fetchone()
            if row is None:
                raise Refused("client_id", f"no OAuth client {client_id} that is not revoked already")
            self._record("client.oauth_client.revoked", client_id, actor, client=row["client"])

    def oauth_client(self, client_id: str) -> tuple[str, bytes] | None:
        """The client and secret digest of an OAuth client not revoked."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT client, secret_sha256 FROM client_api.oauth_clients "
                "WHERE client_id = %s AND revoked_at IS NULL",
                (client_id,),
            ).fetchone()
        return None if row is None else (row["client"], bytes(row["secret_sha256"]))

    def save_token(self, token: str, client_id: str, client: str) -> None:
        at = self.clock()
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO client_api.oauth_tokens (token_sha256, client_id, client, issued_at, "
                "expires_at) VALUES (%s, %s, %s, %s, %s)",
                (digest(token), client_id, client, at, at + TOKEN_LIFETIME),
            )
        log.info("client_api.token_issued", client=client, client_id=client_id)

    # -- every request ------------------------------------------------------------------------

    def authenticate(self, presented: str) -> Credential | None:
        """The credential a bearer value proves, or ``None`` (unknown, revoked, expired, malformed)."""
        with self.pool.connection() as conn:
            if presented.startswith(KEY_PREFIX):
                key_id, _, secret = presented[len(KEY_PREFIX) :].partition(".")
                if not key_id or not secret:
                    return None
                row = conn.execute(
                    "SELECT client, secret_sha256 FROM client_api.api_keys "
                    "WHERE id = %s AND revoked_at IS NULL",
                    (key_id,),
                ).fetchone()
                if row is None or not hmac.compare_digest(bytes(row["secret_sha256"]), digest(secret)):
                    return None
                return Credential(key_id, row["client"], "api-key")
            row = conn.execute(
                "SELECT t.client_id, t.client FROM client_api.oauth_tokens t "
                "JOIN client_api.oauth_clients c USING (client_id) "
                "WHERE t.token_sha256 = %s AND t.expires_at > %s AND c.revoked_at IS NULL",
                (digest(presented), self.clock()),
            ).fetchone()
        return None if row is None else Credential(row["client_id"], row["client"], "oauth")

    def admit(self, presented: str, limit: RateLimit) -> Admission | None:
        """The credential a bearer value proves, a token taken from its bucket (``None``: as authenticate).

        The bucket lives in PostgreSQL, so every process serving the API draws on the same one.
        """
        if (statement := _admission(presented, limit, self.clock())) is None:
            return None
        with self.pool.connection() as conn:
            row = conn.execute(*statement).fetchone()
        return _admitted(row, presented, limit)

    async def admit_serving(self, presented: str, limit: RateLimit) -> Admission | None:
        """:meth:`admit` for the event loop serving the API: no worker thread, one trip for a queue.

        Every request pays this, so it is awaited on the serving loop (no thread hop: two GIL
        hand-overs and a wake-up of a worker thread, each a wait for a core on a busy machine). The
        requests of one credential that arrive while its statement is on its way wait for the next
        one, which runs the same admitting statement once for each of them, in order, in one
        pipelined round trip: after a stall of the process a queue of requests drains in one trip
        instead of a trip each, and the bucket's row is never fought over by this process's own
        connections. Each request still gets a statement sent after it arrived (a key revoked before
        it came is refused), takes one token, and reads the database's bucket like every other process.
        """
        if (statement := _admission(presented, limit, self.clock())) is None:
            return None
        serving = await self._serving_for_loop()
        query, values = statement
        lane = (query, values.get("id"), values["digest"], limit)
        waiter: asyncio.Future[Admission | None] = asyncio.get_running_loop().create_future()
        serving.waiting.setdefault(lane, []).append((waiter, values))
        if lane not in serving.taking:
            serving.taking.add(lane)
            task = asyncio.create_task(self._take(serving, lane, presented, limit))
            serving.tasks.add(task)
            task.add_done_callback(serving.tasks.discard)
        return await waiter

    async def _take(self, serving: _Serving, lane: tuple[Any, ...], presented: str, limit: RateLimit) -> None:
        try:
            while batch := serving.waiting.pop(lane, []):
                try:
                    async with serving.pool.connection() as conn:
                        cursor = conn.cursor()
                        if len(batch) == 1:  # the usual case: a plain statement costs half a pipeline's CPU
                            rows = [await (await cursor.execute(lane[0], batch[0][1])).fetchone()]
                        else:
                            await cursor.executemany(lane[0], [values for _, values in batch], returning=True)
                            rows = []
                            while True:
                                rows.append(await cursor.fetchone())
                                if not cursor.nextset():
                                    break
                except Exception as error:  # every request of the batch learns it (a 500 each)
                    for waiter, _ in batch:
                        if not waiter.done():
                            waiter.set_exception(error)
                    continue
                for (waiter, _), row in zip(batch, rows, strict=True):
                    if not waiter.done():  # a request given up (the client went away) took its token
                        waiter.set_result(_admitted(row, presented, limit))
        finally:
            serving.taking.discard(lane)

    async def _serving_for_loop(self) -> _Serving:
        loop = asyncio.get_running_loop()
        if self._serving is None or self._serving.loop is not loop:
            # a pool belongs to the loop that opened it (a test's client may serve on another)
            pool: AsyncConnectionPool[psycopg.AsyncConnection[DictRow]] = AsyncConnectionPool(
                self.url,
                min_size=self.serving_size,  # never grown under load: a new connection costs ~10 ms
                max_size=self.serving_size,
                kwargs={"row_factory": dict_row, "autocommit": True},
                connection_class=psycopg.AsyncConnection[DictRow],
                open=False,
            )
            self._serving = _Serving(pool, loop)
            await pool.open(wait=True)
        return self._serving

    async def serving_rows(self, query: str, values: Any) -> list[DictRow]:
        """A read on the serving loop's pool: the request's own statement, with no worker-thread hop."""
        serving = await self._serving_for_loop()
        async with serving.pool.connection() as conn:
            cursor = await conn.execute(query, values)
            return list(await cursor.fetchall())

    async def close_serving(self) -> None:
        """Close the serving loop's pool, from that loop (the hub's stop, the app's shutdown)."""
        if self._serving is not None and self._serving.loop is asyncio.get_running_loop():
            serving, self._serving = self._serving, None
            await serving.pool.close()

    def close(self) -> None:
        serving, self._serving = self._serving, None
        if serving is not None and serving.loop.is_running():  # served from a thread's loop (tests)
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(serving.pool.close(), serving.loop).result(10)
        super().close()


@dataclass
class _Serving:
    """The serving loop's pool and the requests waiting for each credential's next statement."""

    pool: AsyncConnectionPool[psycopg.AsyncConnection[DictRow]]
    loop: asyncio.AbstractEventLoop
    waiting: dict[tuple[Any, ...], list[tuple[asyncio.Future[Admission | None], dict[str, Any]]]] = field(
        default_factory=dict
    )
    taking: set[tuple[Any, ...]] = field(default_factory=set)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


def _admission(presented: str, limit: RateLimit, now: datetime) -> tuple[str, dict[str, Any]] | None:
    """The admitting statement for a bearer value, or ``None`` for a malformed key (nothing to ask)."""
    values: dict[str, Any] = {"rate": limit.rate, "burst": limit.burst, "now": now}
    if presented.startswith(KEY_PREFIX):
        key_id, _, secret = presented[len(KEY_PREFIX) :].partition(".")
        if not key_id or not secret:
            return None
        return _ADMIT_KEY, values | {"id": key_id, "digest": digest(secret)}
    return _ADMIT_TOKEN, values | {"digest": digest(presented)}


def _admitted(row: Any, presented: str, limit: RateLimit) -> Admission | None:
    if row is None:
        return None
    kind = "api-key" if presented.startswith(KEY_PREFIX) else "oauth"
    wait = 0.0 if row["allowed"] else (1 - float(row["tokens"])) / limit.rate
    return Admission(Credential(row["id"], row["client"], kind), wait)


def _known(conn: Any, client: str) -> None:
    """Refuse a client the Business hub does not know: one the Floor has not published to it.

    The hub the API runs on (Business) cannot read ClientManager's clients; the Floor publishes each
    of them (``client``: its code and company name) when it is added or changed, so a shop can give a
    client API access before its first PO. Checked in the transaction that writes the credential, so
    a refusal writes nothing.
    """
    known = conn.execute(
        "SELECT 1 FROM published.records WHERE kind = 'client' AND key = %s AND body ->> 'client' = %s",
        (client, client),
    ).fetchone()
    if known is None:
        raise Refused(
            "client",
            f"no client {client} published to this hub: add it in ClientManager on the Floor"
            " (smart client add) and wait for the Floor's next publishing pass",
        )


def _key(row: Any) -> KeyInfo:
    return KeyInfo(
        row["id"], row["client"], row["label"], row["created_by"], row["created_at"], row["revoked_at"]
    )
