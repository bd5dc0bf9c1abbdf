"""The single hub (``--role all``, the chart's ``hub:``) runs on a login of its own, never the owner's.

``smart hub migrate --role all --url-file F`` does the owner's step of every role (each role's
login and grants, as the split roles' pods do) and makes the single hub's login ``smart_hub``, a
member of the three; ``smart hub run --role all --database-url-file F`` then connects as that
login only: prepared, every page answering without a server error, and refused what only the
owner may do.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.routing import APIRoute
from psycopg.conninfo import conninfo_to_dict
from pydantic import SecretStr

from smart.access.roles import Role
from smart.hub import database_roles
from smart.hub.services import HubServices
from smart.hub.vault.logins import Logins
from smart.hub.web import auth
from smart.hub.web.app import create_app
from smart.runtime.background import BackgroundFloor
from smart.testing.cli import invoke
from smart.testing.patience import STATE_DEADLINE_S
from smart.testing.plugin import fresh_database, make_settings

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def single(
    postgres_floor: BackgroundFloor, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[BackgroundFloor, HubServices, str, Path]]:
    with fresh_database(postgres_floor) as fresh:
        owner_url = fresh.url
        root = Path(tmp_path_factory.mktemp("single-hub"))
        settings = make_settings(root / "state", stations=1)
        floor = BackgroundFloor(settings, postgres=False).start()
        url_file = root / "database.url"
        env = {
            "SMART_STATE_DIR": str(settings.state_dir),
            "SMART_DATABASE_URL": owner_url,
            "SMART_LOG_LEVEL": "warning",
        }
        hub: HubServices | None = None
        try:
            done = invoke("hub", "migrate", "--role", "all", "--url-file", str(url_file), env=env)
            assert done.exit_code == 0, done.output
            with Logins(owner_url) as owner_logins:  # adding a login stays with the owner
                owner_logins.add("qm", PASSWORD, role=Role.ADMIN)
            own = settings.model_copy(update={"database_url": SecretStr(url_file.read_text().strip())})
            hub = HubServices(own, role="all")
            floor.run(hub.start(), timeout=STATE_DEADLINE_S)
            yield floor, hub, owner_url, url_file
        finally:
            if hub is not None:
                floor.run(hub.stop(), timeout=60)
            floor.stop()


def test_the_single_hub_runs_on_its_own_login_every_page_answering(
    single: tuple[BackgroundFloor, HubServices, str, Path],
) -> None:
    floor, hub, owner_url, url_file = single
    assert url_file.stat().st_mode & 0o777 == 0o600
    written = conninfo_to_dict(url_file.read_text().strip())
    assert written["user"] == database_roles.SINGLE_HUB_ROLE
    assert written["password"] != conninfo_to_dict(owner_url).get("password")
    assert hub.prepared
    for url in (hub.database_url_in_use, hub.app_database_url()):
        assert database_roles.login_of(url) == database_roles.SINGLE_HUB_ROLE
    assert hub.logins is not None
    token = hub.logins.sign_in("qm", PASSWORD)
    assert token is not None
    app = create_app(hub.status, routers=hub.routers(), logins=hub.logins)
    pages = sorted(
        {
            route.path
            for router in hub.routers(auth.Guard(hub.logins))
            for route in router.routes
            if isinstance(route, APIRoute) and "GET" in (route.methods or ()) and "{" not in route.path
        }
    )
    assert len(pages) >= 10, pages

    async def walk() -> dict[str, int]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://hub",
            cookies={auth.SESSION_COOKIE: token},
            timeout=60,
        ) as client:
            return {path: (await client.get(path)).status_code for path in pages}

    answered = floor.run(walk(), timeout=STATE_DEADLINE_S)
    assert not {p: c for p, c in answered.items() if c >= 500}, answered
    assert any(code == 200 for code in answered.values())


def test_the_single_hubs_login_is_refused_the_owners_work(
    single: tuple[BackgroundFloor, HubServices, str, Path],
) -> None:
    _floor, _hub, _owner, url_file = single
    with psycopg.connect(url_file.read_text().strip(), autocommit=True) as conn:
        for statement in (
            "CREATE TABLE vault.smuggled (x int)",
            "CREATE SCHEMA smuggled",
            "CREATE ROLE smuggled",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
