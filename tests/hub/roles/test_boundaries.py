"""The three hub roles' boundaries are the servers' own: NATS permissions and PostgreSQL grants refuse.

One hub NATS server (with its station leaf) and one database for the module;
the Business hub runs as ``HubServices(role="business")``, signed in as its
own NATS user and database role. Each refusal is the real server's: a NATS
permissions violation, a PostgreSQL ``permission denied``; and what the
Floor publishes arrives at Business through the one-way feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
import psycopg
import pytest
from nats.aio.client import Client as NatsClient
from pydantic import SecretStr

from smart.access import distribution as access_distribution
from smart.access.roles import Role
from smart.bus import hub_roles, subjects
from smart.bus.hub_roles import HubRole
from smart.contracts import approval
from smart.hub import database_roles
from smart.hub.published import feed
from smart.hub.services import HubServices, services_of
from smart.hub.vault import database as vault_database
from smart.ledger import hub_store
from smart.runtime.background import BackgroundFloor
from smart.settings import DRIVER_NATS_USER, Settings
from smart.testing.patience import STATE_DEADLINE_S
from smart.testing.plugin import make_settings


@dataclass
class Hubs:
    floor: BackgroundFloor
    settings: Settings
    owner_url: str
    business: HubServices

    def password(self, role: HubRole) -> str:
        return (self.settings.secrets_directory / hub_roles.password_file(role)).read_text().strip()

    def database_url(self, role: HubRole) -> str:
        return database_roles.ensure_login_role(self.owner_url, role, self.settings.secrets_directory)


@pytest.fixture(scope="module")
def hubs(postgres_floor: BackgroundFloor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hubs]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin_url = postgres_floor.floor.database_url("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    owner_url = postgres_floor.floor.database_url(name)
    root = Path(tmp_path_factory.mktemp("roles"))
    settings = make_settings(root / "state", stations=1)
    floor = BackgroundFloor(settings, postgres=False).start()
    hub_settings = settings.model_copy(update={"database_url": SecretStr(owner_url)})
    # The Vault's and the Floor's tables exist, as on a running hub (Business must not read them).
    hub_store.migrate(owner_url)
    vault_database.migrate(owner_url)
    business = HubServices(hub_settings, role="business")
    floor.run(business.start(), timeout=120)
    assert business.logins is not None
    business.logins.add("client-desk", "correct horse battery", role=Role.OPERATOR)
    try:
        yield Hubs(floor, hub_settings, owner_url, business)
    finally:
        floor.run(business.stop(), timeout=60)
        floor.stop()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _signed_in(hubs: Hubs, role: HubRole, errors: list[str]) -> NatsClient:
    async def noted(err: Exception) -> None:
        errors.append(str(err))

    return await nats.connect(
        hubs.floor.hub_url,
        user=hub_roles.user_name(role),
        password=hubs.password(role),
        inbox_prefix=hub_roles.inbox_prefix(role),
        error_cb=noted,
        max_reconnect_attempts=0,
    )


async def _violation(errors: list[str], what: str) -> str:
    deadline = asyncio.get_running_loop().time() + STATE_DEADLINE_S
    while asyncio.get_running_loop().time() < deadline:
        found = [e for e in errors if "permissions violation" in e.lower() and what.lower() in e.lower()]
        if found:
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no permissions violation for {what}: {errors}")


def test_each_role_runs_only_its_own_services() -> None:
    vault, floor, business = (services_of(r.value) for r in HubRole)
    assert {"smart-id", "education", "peopleops"} <= vault and "ledger-intake" not in vault
    assert {"ledger-intake", "handoff-central", "business-publisher", "pay"} <= floor
    assert "smart-id" not in floor and "client-api" not in floor
    assert business == {"business-feed", "client-api", "growth", "feedback", "hubquery"}
    assert services_of("all") == vault | floor | business


def test_business_hub_may_not_subscribe_to_station_subjects(hubs: Hubs) -> None:
    async def attempt() -> tuple[str, str]:
        errors: list[str] = []
        client = await _signed_in(hubs, HubRole.BUSINESS, errors)
        try:
            await client.subscribe("station.pt-1.>")
            await client.subscribe("ledger.>")
            return await _violation(errors, "station.pt-1.>"), await _violation(errors, "ledger.>")
        finally:
            await client.close()

    station, ledger = hubs.floor.run(attempt())
    assert "subscription" in station.lower() and "subscription" in ledger.lower()


def test_business_hub_may_not_read_people_buckets_nor_publish_back(hubs: Hubs) -> None:
    async def attempt() -> list[str]:
        errors: list[str] = []
        client = await _signed_in(hubs, HubRole.BUSINESS, errors)
        js = client.jetstream(timeout=1)
        try:
            with pytest.raises(nats.errors.TimeoutError):  # no reply comes: the request never left
                await js.stream_info("KV_station-records")
            with pytest.raises(nats.errors.TimeoutError):
                await js.stream_info(hub_roles.PUBLISHED_STREAM)
            assert (await js.stream_info(hub_roles.BUSINESS_FEED_STREAM)).config.mirror is not None
            await client.publish("published.po-status.forged", b"{}")  # back into the feed
            await client.publish("station.pt-1.decide", b"{}")
            await client.flush()
            return [
                await _violation(errors, "$JS.API.STREAM.INFO.KV_station-records"),
                await _violation(errors, f"$JS.API.STREAM.INFO.{hub_roles.PUBLISHED_STREAM}"),
                await _violation(errors, "published.po-status.forged"),
                await _violation(errors, "station.pt-1.decide"),
            ]
        finally:
            await client.close()

    refusals = hubs.floor.run(attempt(), timeout=STATE_DEADLINE_S)
    assert all("publish" in r.lower() for r in refusals), refusals


def test_business_database_role_is_refused_the_vaults_people_records_keys_and_the_ledger(hubs: Hubs) -> None:
    url = hubs.database_url(HubRole.BUSINESS)
    for table in (
        "vault.people",
        "vault.records",
        "vault.credentials",
        "vault.issuer_keys",
        "ledger_entries",
    ):
        with (
            psycopg.connect(url, autocommit=True) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute(f"SELECT * FROM {table} LIMIT 1")
    with psycopg.connect(url, autocommit=True) as conn:  # its own schema, it may read
        conn.execute("SELECT count(*) FROM published.records").fetchone()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE published.smuggled (x int)")


def test_business_pages_sign_in_as_the_sessions_role_not_the_owner(hubs: Hubs) -> None:
    logins = hubs.business.logins
    assert logins is not None
    token = logins.sign_in("client-desk", "correct horse battery")
    assert token is not None and logins.session(token) is not None
    with logins.pool.connection() as conn:
        assert conn.execute("SELECT current_user AS who").fetchone() == {"who": "smart_sessions_business"}


def _floor_publishes_po_4411(hubs: Hubs) -> None:
    """PO 4411 line 1 handed off, published by the Floor's user (tests stay independent of order)."""

    async def publish() -> None:
        errors: list[str] = []
        client = await _signed_in(hubs, HubRole.FLOOR, errors)
        try:
            await feed.publish(
                client.jetstream(),
                kind="po-status",
                key="PO-4411-1",
                body={"po": "PO-4411", "line": "1", "status": "handed-off", "station": "pt-1"},
            )
        finally:
            await client.close()

    hubs.floor.run(publish())


def test_what_the_floor_publishes_arrives_at_business_and_only_there(hubs: Hubs) -> None:
    _floor_publishes_po_4411(hubs)
    url = hubs.database_url(HubRole.BUSINESS)
    found: list[feed.PublishedRecord] = []
    deadline = asyncio.run(_clock()) + STATE_DEADLINE_S
    while not found and asyncio.run(_clock()) < deadline:
        found = [r for r in feed.records(url, "po-status") if r.key == "PO-4411-1"]
    assert found and found[0].body["status"] == "handed-off"


async def _clock() -> float:
    return asyncio.get_running_loop().time()


def test_business_hubquery_answers_po_status_from_its_own_published_subset(hubs: Hubs) -> None:
    from fastapi.testclient import TestClient

    from smart.hub.web.app import create_app

    _floor_publishes_po_4411(hubs)  # line 1, as the Floor publishes it: this test builds its own state

    async def publish() -> None:
        client = await _signed_in(hubs, HubRole.FLOOR, [])
        try:
            body = {"po": "PO-4411", "line": "2", "status": "handed-off", "station": "sr-1"}
            await feed.publish(client.jetstream(), kind="po-status", key="PO-4411-2", body=body)
        finally:
            await client.close()

    hubs.floor.run(publish())
    app = create_app(hubs.business.status, routers=hubs.business.routers())
    with TestClient(app) as web:
        assert web.post("/api/v1/hubquery", json={"question": "status of PO 4411"}).status_code == 401
        web.post("/login", data={"username": "client-desk", "password": "correct horse battery"})
        text = ""
        deadline = asyncio.run(_clock()) + STATE_DEADLINE_S
        # Each published status arrives on its own: wait for both lines, not the first seen.
        while not ("line 1" in text and "line 2" in text) and asyncio.run(_clock()) < deadline:
            text = web.post("/api/v1/hubquery", json={"question": "Hey SMART, status of PO 4411?"}).json()[
                "text"
            ]
        assert "line 2 handed-off at sr-1" in text and "line 1 handed-off at pt-1" in text
        other = web.post(
            "/api/v1/hubquery", json={"question": "who is due for an eye exam this month"}
        ).json()
        assert other["text"] == "the Vault hub answers that, not this one"
        assert web.post("/api/v1/hubquery", json={"question": ""}).status_code == 422
        growth = web.get("/api/v1/growth").json()
        assert sum(f["jobs"] for f in growth) >= 2
        page = web.post("/ask", data={"question": "status of PO 4411"})
        assert page.status_code == 200 and "line 2 handed-off at sr-1" in page.text


def test_a_client_complaint_on_a_published_po_requests_a_capa_on_the_ledger(
    hubs: Hubs, tmp_path: Path
) -> None:
    from smart.hub.feedback import service as feedback
    from smart.hub.service_log import ServiceNodeLog
    from smart.keys import KeyStore

    feedback.migrate(hubs.owner_url, role=database_roles.DATABASE_ROLES[HubRole.BUSINESS])
    node = ServiceNodeLog(tmp_path / "ledger", KeyStore(tmp_path / "keys"), node=feedback.NODE)
    desk = feedback.Feedback(hubs.database_url(HubRole.BUSINESS), node)
    _floor_publishes_po_4411(hubs)
    deadline = asyncio.run(_clock()) + STATE_DEADLINE_S
    while not feed.records(desk.url, "po-status") and asyncio.run(_clock()) < deadline:
        pass  # the PO status the Floor published reaches Business
    with pytest.raises(feedback.FeedbackError, match="po: 'PO-9999' is not a PO published"):
        desk.receive(po="PO-9999", line="1", kind="complaint", text="late", actor="client-desk")
    kept = desk.receive(po="PO-4411", line="1", kind="complaint", text="dye residue", actor="client-desk")
    assert kept.reference == "FB-00001" and kept.ledger_seq is not None
    capa = [e for e in node.entries() if e.kind == feedback.CAPA_REQUESTED]
    assert [(e.subject, e.data["reference"]) for e in capa] == [("po:PO-4411", "FB-00001")]


def test_hey_smart_page_at_the_business_hub_in_a_browser(hubs: Hubs, tmp_path: Path) -> None:
    from smart.hub.web.app import create_app
    from smart.runtime import ports
    from smart.runtime.up import serve_web
    from smart.testing.browser import DESKTOP, async_page, screenshot_path

    async def walk() -> tuple[str, str, str]:
        client = await _signed_in(hubs, HubRole.FLOOR, [])
        body = {"po": "PO-4411", "line": "1", "status": "handed-off", "station": "pt-1"}
        await feed.publish(client.jetstream(), kind="po-status", key="PO-4411-1", body=body)
        await client.close()
        while not feed.records(hubs.database_url(HubRole.BUSINESS), "po-status"):
            await asyncio.sleep(0.1)  # the floor's run() bounds the wait
        port = ports.free_port()
        app = create_app(hubs.business.status, routers=hubs.business.routers())
        server, task = await serve_web(app, "127.0.0.1", port)
        try:
            async with async_page(DESKTOP) as page:
                await page.goto(f"http://127.0.0.1:{port}/login?next=/ask")
                await page.fill("input[name=username]", "client-desk")
                await page.fill("input[name=password]", "correct horse battery")
                await page.click("button")
                await page.wait_for_selector("input[name=question]")
                await page.fill("input[name=question]", "status of PO 4411")
                await page.click("text=Ask")
                await page.wait_for_selector("#answer")
                await page.screenshot(path=str(screenshot_path("hubquery-business-ask")))
                typed = str(await page.inner_text("#answer"))
                # Spoken: a recording of the question uploaded; the page shows what was heard and the answer.
                await page.set_input_files("input[name=audio]", str(wav))
                await page.click("text=Ask aloud")
                await page.wait_for_selector("#heard:not([hidden])")
                await page.wait_for_function("!document.getElementById('answer').textContent.includes('…')")
                await page.screenshot(path=str(screenshot_path("hubquery-business-ask-spoken")))
                return typed, str(await page.inner_text("#heard-text")), str(await page.inner_text("#answer"))
        finally:
            server.should_exit = True
            await task

    wav = tmp_path / "question.wav"
    subprocess.run(
        ["espeak-ng", "-v", "en-us", "-w", str(wav), "hey smart status of P O four four one one"], check=True
    )
    answer, heard, spoken = hubs.floor.run(walk(), timeout=STATE_DEADLINE_S)
    assert "PO 4411:" in answer and "handed-off at pt-1" in answer
    assert heard == "hey smart status of p o four four one one"
    assert spoken.startswith("PO 4411:") and "handed-off at pt-1" in spoken


def test_the_hub_nats_refuses_a_connection_without_credentials(hubs: Hubs) -> None:
    """No ``no_auth_user``: a client that names no user, or a wrong password, is refused by the server;
    the driver's own sign-in (what the CLI, the operator and the tests use) is let in."""

    async def attempt() -> tuple[list[str], bool]:
        assert hubs.floor.floor.hub is not None
        bare = hubs.floor.floor.hub.url
        said: list[str] = []

        async def noted(err: Exception) -> None:
            said.append(str(err))

        for signin in ({}, {"user": DRIVER_NATS_USER, "password": "not-the-password"}):
            with pytest.raises((nats.errors.NoServersError, nats.errors.Error)):
                await nats.connect(
                    bare, allow_reconnect=False, max_reconnect_attempts=0, error_cb=noted, **signin
                )
        driver = await nats.connect(bare, allow_reconnect=False, **hubs.settings.hub_nats_signin())
        try:
            await driver.jetstream().account_info()
            return said, driver.is_connected
        finally:
            await driver.close()

    said, driver_in = hubs.floor.run(attempt())
    assert len([s for s in said if "authorization violation" in s.lower()]) == 2, said
    assert driver_in
    assert hubs.settings.hub_nats_signin()["user"] == DRIVER_NATS_USER


async def _refused(
    client: NatsClient, errors: list[str], *, publish: list[str], subscribe: list[str]
) -> list[str]:
    for subject in publish:
        await client.publish(subject, b"{}")
    for subject in subscribe:
        await client.subscribe(subject)
    await client.flush()
    return [await _violation(errors, subject) for subject in [*publish, *subscribe]]


def test_the_vault_hub_may_not_touch_the_ledger_stations_the_feed_or_the_floors_records(hubs: Hubs) -> None:
    async def attempt() -> tuple[list[str], int]:
        errors: list[str] = []
        client = await _signed_in(hubs, HubRole.VAULT, errors)
        try:
            js = client.jetstream(timeout=1)
            # What the Vault's services use: the access buckets and its kinds of station records.
            kv = await js.key_value(hub_roles.RECORDS_BUCKET)
            seq = await kv.put("pt-1.person.E-9001", b"{}")
            await kv.delete("pt-1.person.E-9001")
            keys = await access_distribution.bucket(js, hub_roles.ACCESS_KEYS_BUCKET)  # made if missing
            await keys.put("smoke", b"{}")
            # The approval page reads the approvals (the operator made the bucket); it writes none.
            await approval.KvApprovalStore(await approval.bucket(js)).all()
            with pytest.raises(nats.errors.TimeoutError):  # no reply: the request never left
                await js.stream_info(subjects.LEDGER_STREAM)
            refusals = await _refused(
                client,
                errors,
                publish=[
                    "$KV.station-records.pt-1.po-line.PO-1_1",  # the Floor's release, not the Vault's
                    "ledger.pt-1.batch",
                    "station.pt-1.ledger.witness",
                    "published.po-status.forged",
                    f"$KV.{hub_roles.APPROVALS_BUCKET}.floor-basics",  # an approval is the driver's
                    "$JS.API.STREAM.CREATE.SMUGGLED",
                    f"$JS.API.STREAM.INFO.{subjects.LEDGER_STREAM}",
                ],
                subscribe=["station.pt-1.>", "ledger.>", "_INBOX_hub_floor.>"],
            )
            return refusals, seq
        finally:
            await client.close()

    refusals, seq = hubs.floor.run(attempt(), timeout=STATE_DEADLINE_S)
    assert seq > 0
    assert all("permissions violation" in r.lower() for r in refusals), refusals


def test_the_floor_hub_may_not_write_people_keys_nor_reach_stations_beyond_the_ledger(hubs: Hubs) -> None:
    async def attempt() -> tuple[list[str], int]:
        errors: list[str] = []
        client = await _signed_in(hubs, HubRole.FLOOR, errors)
        try:
            js = client.jetstream(timeout=1)
            kv = await js.key_value(hub_roles.RECORDS_BUCKET)
            seq = await kv.put("pt-1.equipment.GAUGE-9", b"{}")  # maintenance's kind: allowed
            await kv.delete("pt-1.equipment.GAUGE-9")
            with contextlib.suppress(nats.js.errors.NotFoundError):  # answered (found or not): allowed
                await js.stream_info(f"KV_{hub_roles.ACCESS_REVOCATIONS_BUCKET}")  # read, to verify
            refusals = await _refused(
                client,
                errors,
                publish=[
                    "$KV.station-records.pt-1.person.E-1001",  # SMART-ID's people, the Vault's
                    "$KV.access-keys.forged",
                    "$KV.access-revocations.C-1",
                    "station.pt-1.decide",
                    "published.purchase-request.forged",  # the Vault's kind (InventoryHub), not the Floor's
                    "$JS.API.STREAM.CREATE.SMUGGLED",
                    "$JS.API.STREAM.DELETE.LEDGER",
                ],
                # Heartbeats it may hear (its /api/status lists the stations); nothing else of theirs.
                subscribe=["station.pt-1.>", "station.*.decide", "_INBOX_hub_vault.>"],
            )
            return refusals, seq
        finally:
            await client.close()

    refusals, seq = hubs.floor.run(attempt(), timeout=STATE_DEADLINE_S)
    assert seq > 0
    assert all("permissions violation" in r.lower() for r in refusals), refusals


def test_the_role_users_bucket_names_are_the_code_s_own() -> None:
    """The bus may not import the node, access or contracts: its copies of their names must agree."""
    from smart.access import distribution as access
    from smart.contracts import approval
    from smart.hub import intake
    from smart.node import records

    assert hub_roles.RECORDS_BUCKET == records.RECORDS_BUCKET
    assert hub_roles.APPROVALS_BUCKET == approval.BUCKET
    assert hub_roles.LEDGER_CONSUMER == intake.DURABLE
    assert (hub_roles.ACCESS_KEYS_BUCKET, hub_roles.ACCESS_REVOCATIONS_BUCKET) == (
        access.KEYS_BUCKET,
        access.REVOCATIONS_BUCKET,
    )
    assert hub_roles.access_station_bucket("pt-1") == access.station_bucket("pt-1")
    assert all(kind in records.KINDS for kinds in hub_roles.RECORD_KINDS.values() for kind in kinds)


def test_only_inventoryhubs_role_puts_lots_at_stations_and_business_may_not(hubs: Hubs) -> None:
    """InventoryHub stays off the internet-facing hub (README, InventoryHub): the role it runs on may put
    a station's lots and materials; Business may neither put one nor read what a station holds."""
    (inventory_role,) = [r for r in HubRole if "means" in services_of(r.value)]
    assert inventory_role is not HubRole.BUSINESS
    assert {"lot", "material"} <= set(hub_roles.RECORD_KINDS[inventory_role])
    assert not hub_roles.RECORD_KINDS[HubRole.BUSINESS]

    async def attempt() -> tuple[int, list[str]]:
        allowed = await _signed_in(hubs, inventory_role, [])
        try:
            kv = await allowed.jetstream(timeout=5).key_value(hub_roles.RECORDS_BUCKET)
            seq = await kv.put("pt-1.lot.PEN-7001", b"{}")
            await kv.delete("pt-1.lot.PEN-7001")
            # what Business's buyers need of InventoryHub goes to them one way: its purchase requests
            body = {"id": 9, "material": "penetrant", "supplier": "Magnaflux", "quantity": 40.0, "unit": "L"}
            await feed.publish(allowed.jetstream(), kind="purchase-request", key="PR-9", body=body)
        finally:
            await allowed.close()
        errors: list[str] = []
        business = await _signed_in(hubs, HubRole.BUSINESS, errors)
        try:
            refusals = await _refused(
                business,
                errors,
                publish=[
                    "$KV.station-records.pt-1.lot.PEN-FORGED",
                    "$KV.station-records.pt-1.material.penetrant",
                    "$JS.API.DIRECT.GET.KV_station-records.$KV.station-records.pt-1.lot.PEN-2291",
                ],
                subscribe=["$KV.station-records.>"],
            )
            return seq, refusals
        finally:
            await business.close()

    seq, refusals = hubs.floor.run(attempt(), timeout=STATE_DEADLINE_S)
    assert seq > 0
    assert all("permissions violation" in r.lower() for r in refusals), refusals
    url = hubs.database_url(HubRole.BUSINESS)
    requests: list[feed.PublishedRecord] = []
    deadline = asyncio.run(_clock()) + STATE_DEADLINE_S
    while not requests and asyncio.run(_clock()) < deadline:
        requests = feed.records(url, "purchase-request")
    assert [(r.key, r.body["supplier"], r.body["quantity"]) for r in requests] == [
        ("PR-9", "Magnaflux", 40.0)
    ]
