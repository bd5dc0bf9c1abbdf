"""The ``smart`` pytest plugin: real servers for tests, on free loopback ports.

- ``postgres_floor`` (session): one embedded PostgreSQL for the whole run.
- ``database`` (function): a fresh, empty database on it, dropped afterwards; its ``app_password``
  is the server's one password of the ledger's app role (:func:`app_password`). A module's or a
  package's fixture takes one from :func:`fresh_database`.
- ``nats_floor`` (function): a hub nats-server and three station leaves.
- ``floor_factory``: any floor (stations, with or without PostgreSQL) for a test.
- ``floor_settings``: settings with free ports and a temporary state directory.
- ``page``: a Playwright page in Debian's headless Chromium.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from smart.ledger import hub_store
from smart.runtime import ports
from smart.runtime.background import BackgroundFloor
from smart.secret_files import secret
from smart.settings import Settings
from smart.testing.browser import page  # noqa: F401  (re-exported as a fixture)


def pytest_configure(config: pytest.Config) -> None:
    """Each pytest-xdist worker looks for free ports in a slice of its own (children inherit it)."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if worker is None or count is None or os.environ.get(ports.RANGE_ENV):
        return
    # A crashed worker is replaced by gw<count> and up: wrap its index into the same slices.
    workers = int(count)
    index = int(worker.removeprefix("gw")) % workers
    width = (ports.HIGH - ports.LOW) // workers
    low = ports.LOW + index * width
    os.environ[ports.RANGE_ENV] = f"{low}-{low + width - 1}"


def make_settings(state_dir: Path, *, stations: int = 3, **overrides: Any) -> Settings:
    """Settings whose every port was free a moment ago."""
    values: dict[str, Any] = {
        "state_dir": state_dir,
        "stations": stations,
        "web_port": ports.free_port(),
        "postgres_port": ports.free_port(),
        "nats_port": ports.free_port(),
        "nats_leaf_port": ports.free_port(),
        "nats_monitor_port": ports.free_port(),
        "station_nats_port_base": ports.free_block(stations),
        "station_monitor_port_base": ports.free_block(stations),
        "station_web_port_base": ports.free_block(stations),
        "heartbeat_s": 0.5,
    }
    values.update(overrides)
    return Settings(**values)


def app_password(server: BackgroundFloor) -> str:
    """The password of the ledger's app role (``smart_app``) on ``server``: one for all its databases.

    A role belongs to the whole server, so every test migrating a database on it gives this one
    password (kept in the server's secrets, as ``smart up`` keeps it): a test with a password of
    its own would change the role's password under every other database's app connections.
    """
    return secret(server.settings.secrets_directory / "ledger-app.password")


def give_app_password(server: BackgroundFloor, secrets_dir: Path) -> None:
    """Put ``server``'s app role password in a hub's secrets directory (0600) before that hub starts:
    a hub would otherwise generate a password of its own and set it on the server's one role."""
    secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = secrets_dir / "ledger-app.password"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(app_password(server))


@dataclass(frozen=True, slots=True)
class FreshDatabase:
    """A database of its own for one test, reached as the owner role."""

    name: str
    url: str
    server: BackgroundFloor

    def url_for(self, database: str) -> str:
        return self.server.floor.database_url(database)

    @property
    def app_password(self) -> str:
        """The app role's password on this server (pass it to ``hub_store.migrate``)."""
        return app_password(self.server)

    @property
    def app_url(self) -> str:
        """This database as the ledger's app role (once ``hub_store.migrate`` made the role)."""
        return make_conninfo(self.url, user=hub_store.APP_ROLE, password=self.app_password)


def _state_root() -> Iterator[Path]:
    # Not under pytest's tmp_path: pytest resets /tmp/pytest-of-<user> to 0700 whenever a session
    # starts, which would take away the traverse bit the smart-postgres user needs to reach its data.
    root = Path(tempfile.mkdtemp(prefix="smart-test-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def state_root() -> Iterator[Path]:
    """A temporary directory for state directories (removed after the test)."""
    yield from _state_root()


@pytest.fixture
def floor_settings(state_root: Path) -> Settings:
    return make_settings(state_root / "state")


@pytest.fixture(scope="session")
def postgres_floor() -> Iterator[BackgroundFloor]:
    root = Path(tempfile.mkdtemp(prefix="smart-test-pg-"))
    settings = make_settings(root / "state", stations=1)
    try:
        with BackgroundFloor(settings, nats_servers=False) as floor:
            yield floor
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def fresh_database(server: BackgroundFloor) -> Iterator[FreshDatabase]:
    """A new, empty database on ``server``, dropped when the block ends (even after a failure).

    The ``database`` fixture is one test's; a module-scoped fixture that builds its state once
    for several tests takes its database from here.
    """
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin_url = server.floor.database_url("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield FreshDatabase(name=name, url=server.floor.database_url(name), server=server)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database(postgres_floor: BackgroundFloor) -> Iterator[FreshDatabase]:
    with fresh_database(postgres_floor) as fresh:
        yield fresh


FloorFactory = Callable[..., BackgroundFloor]


@pytest.fixture
def floor_factory(state_root: Path) -> Iterator[FloorFactory]:
    started: list[BackgroundFloor] = []

    def start(
        *, stations: int = 3, postgres: bool = False, nats_servers: bool = True, **overrides: Any
    ) -> BackgroundFloor:
        settings = make_settings(state_root / f"floor-{len(started)}", stations=stations, **overrides)
        floor = BackgroundFloor(settings, postgres=postgres, nats_servers=nats_servers).start()
        started.append(floor)
        return floor

    yield start
    for floor in reversed(started):
        floor.stop()


@pytest.fixture
def nats_floor(floor_factory: FloorFactory) -> BackgroundFloor:
    return floor_factory(stations=3)
