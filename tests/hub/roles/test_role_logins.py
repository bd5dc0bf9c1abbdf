"""Each hub role runs on its own PostgreSQL login alone, as the chart's pods do: never the owner's.

The owner's step (``HubServices.prepare``, what ``smart hub migrate`` runs in the chart's migration
init container) is done once per role; then each role is started with settings holding only its
own login's URL (no owner password anywhere in them), signed in to the hub NATS as its own user,
and every page it serves that takes no path parameter is asked, signed in: none may fail, so no
code path of a role assumes the owner's rights at runtime. The role's login is then refused what
only the owner may do.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
import psycopg
import pytest
from fastapi.routing import APIRoute
from psycopg.conninfo import conninfo_to_dict
from pydantic import SecretStr

from smart.access.roles import Role
from smart.bus import subjects
from smart.bus.hub_roles import HubRole
from smart.hub import database_roles
from smart.hub.services import HubServices
from smart.hub.vault.logins import Logins
from smart.hub.web import auth
from smart.hub.web.app import create_app
from smart.runtime.background import BackgroundFloor
from smart.testing.cli import invoke
from smart.testing.logs import captured as logs_captured
from smart.testing.patience import STATE_DEADLINE_S
from smart.testing.plugin import fresh_database, make_settings

PASSWORD = "correct horse battery"


@dataclass
class Prepared:
    floor: BackgroundFloor
    owner_url: str
    roles: dict[HubRole, HubServices]
    url_files: dict[HubRole, Path]
    logged: list[MutableMapping[str, Any]]


@pytest.fixture(scope="module")
def prepared(postgres_floor: BackgroundFloor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prepared]:
    with fresh_database(postgres_floor) as fresh:
        owner_url = fresh.url
        root = Path(tmp_path_factory.mktemp("role-logins"))
        settings = make_settings(root / "state", stations=1)
        floor = BackgroundFloor(settings, postgres=False).start()
        env = {
            "SMART_STATE_DIR": str(settings.state_dir),
            "SMART_DATABASE_URL": owner_url,
            "SMART_LOG_LEVEL": "warning",
        }
        url_files = {role: root / f"{role.value}.url" for role in HubRole}
        for role in (HubRole.FLOOR, HubRole.VAULT, HubRole.BUSINESS):  # the chart's migration step
            done = invoke("hub", "migrate", "--role", role.value, "--url-file", str(url_files[role]), env=env)
            assert done.exit_code == 0, done.output
        watching = contextlib.ExitStack()
        # Every failure a role's background work logs (a sweep, an index follower), at any level.
        captured = watching.enter_context(logs_captured())
        with Logins(owner_url) as owner_logins:  # adding a login stays with the owner
            owner_logins.add("qm", PASSWORD, role=Role.ADMIN)
        roles: dict[HubRole, HubServices] = {}
        try:
            for role in (HubRole.FLOOR, HubRole.VAULT, HubRole.BUSINESS):
                url = url_files[role].read_text().strip()
                own = settings.model_copy(update={"database_url": SecretStr(url)})
                roles[role] = HubServices(own, role=role.value)
                floor.run(roles[role].start(), timeout=STATE_DEADLINE_S)
            yield Prepared(floor, owner_url, roles, url_files, captured)
        finally:
            for services in reversed(roles.values()):
                floor.run(services.stop(), timeout=60)
            watching.close()
            floor.stop()


def test_the_migration_step_writes_each_role_its_own_login_and_nothing_of_the_owners(
    prepared: Prepared,
) -> None:
    owner = conninfo_to_dict(prepared.owner_url)
    for role, path in prepared.url_files.items():
        assert path.stat().st_mode & 0o777 == 0o600
        written = conninfo_to_dict(path.read_text().strip())
        assert written["user"] == database_roles.DATABASE_ROLES[role]
        assert written["password"] != owner.get("password")
        assert (written["host"], written["dbname"]) == (owner["host"], owner["dbname"])


def test_each_role_connects_as_its_own_login_only(prepared: Prepared) -> None:
    for role, services in prepared.roles.items():
        login = database_roles.DATABASE_ROLES[role]
        assert services.prepared, role
        assert database_roles.login_of(services.database_url_in_use) == login
        assert database_roles.login_of(services.app_database_url()) == login
        assert services.logins is not None
        with services.logins.pool.connection() as conn:  # its pages sign in as that login too
            assert conn.execute("SELECT current_user AS who").fetchone() == {"who": login}


def _pages(services: HubServices) -> list[str]:
    assert services.logins is not None
    paths = []
    for router in services.routers(auth.Guard(services.logins)):
        for route in router.routes:
            if isinstance(route, APIRoute) and "GET" in (route.methods or ()) and "{" not in route.path:
                paths.append(route.path)
    return sorted(set(paths))


@pytest.mark.parametrize("role", list(HubRole))
def test_every_page_of_the_role_works_on_its_own_login(prepared: Prepared, role: HubRole) -> None:
    services = prepared.roles[role]
    assert services.logins is not None
    token = services.logins.sign_in("qm", PASSWORD)
    assert token is not None
    app = create_app(services.status, routers=services.routers(), logins=services.logins)
    pages = _pages(services)
    assert len(pages) >= 3, pages

    async def walk() -> dict[str, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://hub", cookies={auth.SESSION_COOKIE: token}, timeout=60
        ) as client:
            return {path: (await client.get(path)).status_code for path in pages}

    answered = prepared.floor.run(walk(), timeout=STATE_DEADLINE_S)
    failed = {path: code for path, code in answered.items() if code >= 500}
    assert not failed, f"{role.value} pages failing on its own login: {failed}"
    assert any(code == 200 for code in answered.values()), answered


def test_a_roles_login_is_refused_the_owners_work(prepared: Prepared) -> None:
    for role in HubRole:
        url = prepared.url_files[role].read_text().strip()
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in (
                "CREATE TABLE vault.smuggled (x int)",
                "CREATE SCHEMA smuggled",
                "ALTER TABLE vault.logins ADD COLUMN smuggled int",
                "CREATE ROLE smuggled",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)


def test_the_vaults_approval_page_reads_the_approvals_as_the_vaults_user(prepared: Prepared) -> None:
    """A contract with no approval record is a 404 naming it: the Vault's user read the bucket (a
    refused read never gets an answer, and the page would fail)."""
    services = prepared.roles[HubRole.VAULT]
    assert services.logins is not None
    token = services.logins.sign_in("qm", PASSWORD)
    assert token is not None
    app = create_app(services.status, routers=services.routers(), logins=services.logins)

    async def ask() -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://hub",
            cookies={auth.SESSION_COOKIE: token},
            timeout=60,
        ) as client:
            return await client.get("/policy/contracts/floor-basics/approve")

    answer = prepared.floor.run(ask(), timeout=STATE_DEADLINE_S)
    assert answer.status_code == 404 and "no contract floor-basics" in answer.text


def test_the_floor_lists_a_station_it_hears_as_the_floors_user(prepared: Prepared) -> None:
    services = prepared.roles[HubRole.FLOOR]
    (station,) = services.stations

    async def heard() -> dict[str, Any]:
        driver = await nats.connect(prepared.floor.hub_url)
        try:
            beat = {"station": station, "revisions": {"floor-basics": "r1"}, "ledger_lag": 0}
            await driver.publish(subjects.heartbeat(station), json.dumps(beat).encode())
            await driver.flush()
        finally:
            await driver.close()
        deadline = asyncio.get_running_loop().time() + STATE_DEADLINE_S
        while True:
            status = await services.status()
            (row,) = [s for s in status.services if s.station == station]
            if row.online or asyncio.get_running_loop().time() > deadline:
                return row.model_dump()
            await asyncio.sleep(0.1)

    row = prepared.floor.run(heard(), timeout=STATE_DEADLINE_S + 10)
    assert row["online"] and row["healthy"] and row["revisions"] == {"floor-basics": "r1"}, row


def test_the_client_api_answers_on_business_from_what_the_floor_published_and_not_on_the_floor(
    prepared: Prepared,
) -> None:
    """A PO entered on the Floor reaches the client API on Business through the one-way feed; the
    Floor serves no client API at all (its path is a 404 there, as on the Vault)."""
    from smart.hub.client_api.service import ClientApiServices
    from smart.hub.published import feed
    from tests.hub.shop import client, line, order

    floor, business = prepared.roles[HubRole.FLOOR], prepared.roles[HubRole.BUSINESS]
    assert floor.work is not None
    floor.work.clients.add_client(client(), actor="qm")
    floor.work.clients.add_po(order("PO-4411", line("1")), actor="qm")
    business_url = prepared.url_files[HubRole.BUSINESS].read_text().strip()
    deadline = asyncio.run(_clock()) + STATE_DEADLINE_S
    while not [r for r in feed.records(business_url, "client-po") if r.key == "PO-4411"]:
        assert asyncio.run(_clock()) < deadline, "PO-4411 never reached Business"
        time.sleep(0.1)
    (api,) = [e for e in business.extensions if isinstance(e, ClientApiServices)]
    _, key = api.credentials.create_key("AEROSPAR", actor="qm", label="ERP")
    assert not any(isinstance(e, ClientApiServices) for e in floor.extensions)

    async def ask(services: HubServices) -> httpx.Response:
        app = create_app(services.status, routers=services.routers(), logins=services.logins)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://hub", timeout=60) as web:
            return await web.get("/api/v1/client/pos", headers={"Authorization": f"Bearer {key}"})

    answered = prepared.floor.run(ask(business), timeout=STATE_DEADLINE_S)
    assert answered.status_code == 200, answered.text
    (po,) = answered.json()
    assert (po["po"], [(ln["line"], ln["status"]) for ln in po["lines"]]) == ("PO-4411", [("1", "entered")])
    for elsewhere in (HubRole.FLOOR, HubRole.VAULT):
        refused = prepared.floor.run(ask(prepared.roles[elsewhere]), timeout=STATE_DEADLINE_S)
        assert refused.status_code == 404, (elsewhere, refused.text)


async def _clock() -> float:
    return asyncio.get_running_loop().time()


def test_no_background_work_of_a_role_is_refused_its_tables(prepared: Prepared) -> None:
    """The pages above ran on each login and NATS user; so did the sweeps and followers started with
    them: neither PostgreSQL nor the hub NATS refused any of them anything."""
    refused = [
        event
        for event in prepared.logged
        if any(
            refusal in str(event).lower()
            for refusal in ("permission denied", "insufficientprivilege", "permissions violation")
        )
    ]
    assert not refused, refused


def test_each_roles_nav_bar_links_only_to_its_own_pages_and_one_app_of_every_role_to_all(
    prepared: Prepared,
) -> None:
    """In split pods a link to another role's page answers 404 there: each role's bar shows its own
    pages only (every link answers), and the app of all three (``smart up``) shows every link."""
    vault = prepared.roles[HubRole.VAULT]
    assert vault.logins is not None
    token = vault.logins.sign_in("qm", PASSWORD)
    assert token is not None
    guard = auth.Guard(vault.logins)
    every = [auth.router(vault.logins)]
    for services in prepared.roles.values():
        every += services.routers(guard, sign_in=False)
    apps = {
        role.value: create_app(services.status, routers=services.routers(), logins=services.logins)
        for role, services in prepared.roles.items()
    }
    apps["all"] = create_app(vault.status, routers=every, logins=vault.logins)

    async def bars() -> dict[str, dict[str, int]]:
        found = {}
        for name, app in apps.items():
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://hub",
                cookies={auth.SESSION_COOKIE: token},
                timeout=60,
            ) as client:
                status = (await client.get("/admin/status")).text
                bar = status.split('<nav class="bar"', 1)[1].split("</nav>", 1)[0]
                links = re.findall(r'href="([^"]+)"', bar)
                found[name] = {link: (await client.get(link)).status_code for link in links}
        return found

    shown = prepared.floor.run(bars(), timeout=STATE_DEADLINE_S)
    for role, services in prepared.roles.items():
        pages = set(_pages(services)) | {"/admin/status"}
        assert set(shown[role.value]) == {href for href, _, probe in auth.NAV if probe in pages}, role
        assert all(code != 404 for code in shown[role.value].values()), (role, shown[role.value])
    assert "/jobs" not in shown["business"] and "/people" not in shown["floor"]
    assert "/purchasing" not in shown["vault"] and "/growth" not in shown["floor"]
    assert list(shown["all"]) == [href for href, _, _ in auth.NAV]
