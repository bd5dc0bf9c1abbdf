"""What Business shows of the other hubs, from what they published to it alone: the buyers' purchase
requests and the emergency countersign banner.

One hub NATS (the role users' permissions), one database for the module; Business runs as
``HubServices(role="business")`` on its own NATS user and database role, as in a split pod. The Vault's
side is its real code signed in as the Vault's NATS user: PolicyCentral's flag publisher over the
driver's real contract approvals (an emergency revision approved by one Level 3, with SMART-ID's
signatures), and purchase requests as InventoryHub's model words them for Business. No Vault or
Floor services run in this process, so every banner on a Business page came through its feed.
One Chromium session: the buyer's page with the banner, screenshot ``business-purchasing``.
"""

from __future__ import annotations

import asyncio
import copy
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import nats
import psycopg
import pytest
from nats.aio.client import Client as NatsClient
from pydantic import SecretStr

from smart.access.roles import Role
from smart.bus import hub_roles
from smart.bus.hub_roles import HubRole
from smart.contracts import approval
from smart.contracts.models import SmartContract
from smart.embedded import driver
from smart.hub.compliance import policy as policy_central
from smart.hub.compliance.service import flags_of
from smart.hub.inventory.models import PurchaseRequest
from smart.hub.published import feed
from smart.hub.services import HubServices
from smart.hub.vault import contract_signatures
from smart.hub.vault import database as vault_database
from smart.hub.vault import service as vault
from smart.hub.vault.smartid import SmartId
from smart.hub.web.app import create_app
from smart.keys import KeyStore
from smart.ledger import hub_store
from smart.runtime import demo_shop, ports
from smart.runtime.background import BackgroundFloor
from smart.runtime.up import serve_web
from smart.settings import Settings
from smart.testing.browser import DESKTOP, async_page, screenshot_path
from smart.testing.patience import STATE_DEADLINE_S
from smart.testing.plugin import make_settings

REPO = Path(__file__).resolve().parents[3]
PASSWORD = "correct horse battery"
RAISED = datetime(2026, 12, 3, 8, 15, tzinfo=UTC)


@dataclass
class Business:
    floor: BackgroundFloor
    settings: Settings
    services: HubServices
    smartid: SmartId
    url: str  # Business's own database login
    base: str  # its web app, served
    revision: str  # the emergency revision of penetrant, distributed on l3-1's approval alone
    late: datetime  # a clock past its 24 h


def _emergency(contract: SmartContract) -> SmartContract:
    body = copy.deepcopy(contract.model_dump(mode="json", by_alias=True, exclude_none=True))
    body["spec"]["approval"] = {"emergency": True}
    for rule in body["spec"]["rules"]:
        if rule.get("limits") == {"min": 1000}:
            rule["limits"] = {"min": 1200}
    return SmartContract.model_validate(body)


async def _as_vault(business: Business) -> NatsClient:
    password = business.settings.secrets_directory / hub_roles.password_file(HubRole.VAULT)
    return await nats.connect(
        business.floor.hub_url,
        user=hub_roles.user_name(HubRole.VAULT),
        password=password.read_text().strip(),
        inbox_prefix=hub_roles.inbox_prefix(HubRole.VAULT),
        max_reconnect_attempts=0,
    )


@pytest.fixture(scope="module")
def business(postgres_floor: BackgroundFloor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Business]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin_url = postgres_floor.floor.database_url("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    owner_url = postgres_floor.floor.database_url(name)
    root = Path(tmp_path_factory.mktemp("business-side"))
    settings = make_settings(root / "state", stations=1, keys_dir=root / "keys")
    floor = BackgroundFloor(settings, postgres=False).start()
    hub_settings = settings.model_copy(update={"database_url": SecretStr(owner_url)})
    hub_store.migrate(owner_url)
    vault_database.migrate(owner_url)
    keys = KeyStore(settings.key_directory)
    keys.signing_key("hub")
    smartid = SmartId(
        owner_url,
        key=keys.signing_key(approval.SMART_ID_KEY),
        ledger=vault.SharedNodeLog(root / "ledger", keys),
    )
    demo_shop.enrol(smartid, datetime.now(UTC))  # l3-1 (D-301) a Level 3 in PT, qm-1 (D-901) the QM
    services = HubServices(hub_settings, role="business")
    server = task = None
    try:
        floor.run(services.start(), timeout=STATE_DEADLINE_S)
        assert services.logins is not None
        services.logins.add("buyer-bea", PASSWORD, role=Role.BUYER)
        services.logins.add("op-7", PASSWORD, role=Role.OPERATOR)

        # The driver's contracts: seeded, then an emergency change distributed on one Level 3's approval.
        seed = root / "contracts"
        seed.mkdir()
        for manifest in ("penetrant.yaml", "stations.yaml"):
            shutil.copy(REPO / "contracts" / manifest, seed / manifest)

        async def emergency() -> str:
            await driver.load_contracts(settings, seed)
            contract = next(
                SmartContract.model_validate(r["manifest"])
                for r in await driver.get("contract", settings)
                if r["manifest"]["metadata"]["name"] == "penetrant"
            )
            edited = _emergency(contract)
            revision = approval.spec_revision(edited)
            authored = contract_signatures.sign(
                smartid, "D-301", act="authorship", contract="penetrant", revision=revision, actor="lee"
            )
            await driver.apply([edited], settings, author=authored.token)
            alone = contract_signatures.sign(
                smartid, "D-301", act="approval", contract="penetrant", revision=revision, actor="lee"
            )
            await driver.approve("penetrant", revision, alone.token, settings)
            return revision

        revision = floor.run(emergency(), timeout=STATE_DEADLINE_S)
        port = ports.free_port()
        app = create_app(services.status, routers=services.routers(), logins=services.logins)
        server, task = floor.run(serve_web(app, "127.0.0.1", port), timeout=60)
        yield Business(
            floor,
            settings,
            services,
            smartid,
            database_roles_url(owner_url, hub_settings),
            f"http://127.0.0.1:{port}",
            revision,
            datetime.now(UTC) + timedelta(hours=25),
        )
    finally:
        if server is not None and task is not None:
            floor.run(_stop_web(server, task), timeout=60)
        floor.run(services.stop(), timeout=60)
        floor.stop()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _stop_web(server: Any, task: Any) -> None:
    server.should_exit = True
    await task


def database_roles_url(owner_url: str, settings: Settings) -> str:
    from smart.hub import database_roles

    return database_roles.ensure_login_role(owner_url, HubRole.BUSINESS, settings.secrets_directory)


def _banners(html: str) -> list[str]:
    found = re.findall(r'class="refused banner"[^>]*>(.*?)</p>', html)
    return [re.sub(r"\s+", " ", unescape(b)).strip() for b in found]


async def _publish_flags(business: Business, at: datetime) -> None:
    """The Vault's PolicyCentral hands its reading of the approvals at ``at`` to its publisher."""
    connection = await _as_vault(business)
    try:
        central = policy_central.PolicyCentral(
            "",  # its pages' database: none is read here
            connection,
            business.smartid,
            approve=None,
            clock=lambda: at,
        )
        records = await (await central.approvals()).all()
        assert central.flags.send is not None
        await central.flags.send(records, flags_of(records, at))
    finally:
        await connection.close()


async def _banner_at(base: str, client: httpx.AsyncClient, want: Any) -> list[str]:
    deadline = asyncio.get_running_loop().time() + STATE_DEADLINE_S
    shown: list[str] = []
    while asyncio.get_running_loop().time() < deadline:
        shown = _banners((await client.get(f"{base}/purchasing")).text)
        if want(shown):
            return shown
        await asyncio.sleep(0.2)
    raise AssertionError(f"the Business banner never came to what was wanted: {shown}")


async def _signed_in(base: str, username: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base, timeout=120)
    answer = await client.post("/login", data={"username": username, "password": PASSWORD, "next": "/"})
    assert answer.status_code == 303, answer.text
    return client


def test_the_buyer_sees_the_vaults_purchase_requests_on_business_in_chromium(business: Business) -> None:
    requests = [
        PurchaseRequest(
            id=7,
            station="pt-1",
            material="penetrant",
            supplier="Magnaflux",
            quantity=40,
            unit="L",
            signal_idx=11,
            raised_at=RAISED,
        ),
        PurchaseRequest(
            id=8,
            station="pt-1",
            material="developer",
            supplier="Sherwin",
            quantity=12,
            unit="can",
            signal_idx=12,
            raised_at=RAISED + timedelta(hours=2),
        ),
    ]

    async def walk() -> dict[str, Any]:
        vault_user = await _as_vault(business)
        try:
            js = vault_user.jetstream()
            await feed.publish(js, kind="purchase-request", key="PR-7", body=requests[0].for_business(20))
            await feed.publish(js, kind="purchase-request", key="PR-8", body=requests[1].for_business(12))
            bad = {"id": 9, "material": "penetrant", "supplier": "Magnaflux", "quantity": 40.0, "unit": "L"}
            await feed.publish(js, kind="purchase-request", key="PR-9", body=bad)
        finally:
            await vault_user.close()
        while len(feed.records(business.url, "purchase-request")) < 3:
            await asyncio.sleep(0.1)  # the floor's run() bounds the wait
        await _publish_flags(business, datetime.now(UTC))  # the emergency's banner, if not countersigned yet
        async with httpx.AsyncClient(base_url=business.base, timeout=120) as anonymous:
            refused_anonymous = (await anonymous.get("/api/v1/purchasing/requests")).status_code
        operator = await _signed_in(business.base, "op-7")
        buyer = await _signed_in(business.base, "buyer-bea")
        try:
            seen: dict[str, Any] = {
                "anonymous": refused_anonymous,
                "operator": (await operator.get("/purchasing")).status_code,
                "api": (await buyer.get("/api/v1/purchasing/requests")).json(),
                "magnaflux": (await buyer.get("/api/v1/purchasing/requests?supplier=Magnaflux")).json(),
            }
        finally:
            await operator.aclose()
            await buyer.aclose()
        async with async_page(DESKTOP) as page:
            await page.goto(f"{business.base}/login?next=/purchasing")
            await page.fill("input[name=username]", "buyer-bea")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button")
            await page.wait_for_selector("#purchase-requests tr[data-request]")
            seen["rows"] = await page.eval_on_selector_all(
                "#purchase-requests tbody tr",
                "rows => rows.map(r => [...r.cells].map(c => c.textContent.trim()))",
            )
            seen["unreadable"] = await page.text_content("#unreadable")
            seen["nav"] = await page.eval_on_selector_all(
                "nav.bar a", "els => els.map(e => e.getAttribute('href'))"
            )
            await page.screenshot(path=str(screenshot_path("business-purchasing")), full_page=True)
            await page.select_option("select[name=supplier]", "Sherwin")
            await page.click("#by-supplier button")
            await page.wait_for_url("**/purchasing?supplier=Sherwin")
            seen["sherwin"] = await page.locator("#purchase-requests tbody tr").count()
        return seen

    seen = business.floor.run(walk(), timeout=STATE_DEADLINE_S * 2)
    assert seen["anonymous"] == 401 and seen["operator"] == 403  # purchasing.read: buyer, QM, auditor, admin
    assert [r["id"] for r in seen["api"]["requests"]] == [8, 7]  # newest raised first
    assert seen["api"]["requests"][1] | {"raised_at": None} == {
        "id": 7,
        "station": "pt-1",
        "material": "penetrant",
        "supplier": "Magnaflux",
        "quantity": 40.0,
        "unit": "L",
        "raised_at": None,
        "pack_size": 20.0,
        "packs": 2,
    }
    assert seen["api"]["unreadable"][0]["key"] == "PR-9" and "station" in seen["api"]["unreadable"][0]["why"]
    assert [r["id"] for r in seen["magnaflux"]["requests"]] == [7]
    (newest, older) = seen["rows"]
    assert newest[0] == "PR-8" and newest[2:] == ["Sherwin", "developer", "12 can", "1 × 12 can", "pt-1"]
    assert older[0] == "PR-7" and older[2:] == ["Magnaflux", "penetrant", "40 L", "2 × 20 L", "pt-1"]
    assert "PR-9" in seen["unreadable"] and "station" in seen["unreadable"]
    assert seen["sherwin"] == 1
    # A Business pod's nav bar links only to Business's own pages (another role's would answer 404).
    assert set(seen["nav"]) == {"/purchasing", "/growth", "/feedback", "/ask", "/admin/status"}


def test_the_emergency_flag_reaches_business_pages_through_the_feed_without_a_person(
    business: Business,
) -> None:
    async def walk() -> tuple[list[str], list[str], list[str]]:
        buyer = await _signed_in(business.base, "buyer-bea")
        try:
            await _publish_flags(business, business.late)
            overdue = await _banner_at(business.base, buyer, lambda shown: any("OVERDUE" in s for s in shown))
            async with httpx.AsyncClient(base_url=business.base, timeout=120) as nobody:
                anonymous = _banners((await nobody.get("/login")).text)
            # The quality manager countersigns at the driver; the Vault's next reading clears Business.
            signed = contract_signatures.sign(
                business.smartid,
                "D-901",
                act="approval",
                contract="penetrant",
                revision=business.revision,
                actor="qm",
            )
            await driver.approve("penetrant", business.revision, signed.token, business.settings)
            await _publish_flags(business, business.late)
            cleared = await _banner_at(business.base, buyer, lambda shown: shown == [])
            return overdue, anonymous, cleared
        finally:
            await buyer.aclose()

    overdue, anonymous, cleared = business.floor.run(walk(), timeout=STATE_DEADLINE_S * 2)
    (line,) = overdue
    assert line.startswith(f"OVERDUE: emergency revision {business.revision[:12]} of penetrant")
    assert "one person's approval alone" in line and "must countersign by" in line
    assert "l3-1" not in line and "D-301" not in line  # no person crosses to Business
    assert anonymous == overdue  # every page, the sign-in page too
    assert cleared == []
    (kept,) = feed.records(business.url, "contract-flag")
    assert kept.key == "penetrant" and kept.body["state"] == "clear"
    assert set(kept.body) == {"contract", "revision", "state", "deadline"}


def test_business_may_not_publish_a_flag_of_its_own(business: Business) -> None:
    """The flag comes from the Vault only: Business's user is refused ``published.contract-flag``."""
    errors: list[str] = []

    async def attempt() -> None:
        async def noted(err: Exception) -> None:
            errors.append(str(err))

        password = business.settings.secrets_directory / hub_roles.password_file(HubRole.BUSINESS)
        client = await nats.connect(
            business.floor.hub_url,
            user=hub_roles.user_name(HubRole.BUSINESS),
            password=password.read_text().strip(),
            inbox_prefix=hub_roles.inbox_prefix(HubRole.BUSINESS),
            error_cb=noted,
            max_reconnect_attempts=0,
        )
        try:
            await client.publish(hub_roles.published_subject("contract-flag", "penetrant"), b"{}")
            await client.flush()
            deadline = asyncio.get_running_loop().time() + STATE_DEADLINE_S
            while not errors and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
        finally:
            await client.close()

    business.floor.run(attempt(), timeout=STATE_DEADLINE_S)
    assert any("permissions violation" in e.lower() and "contract-flag" in e for e in errors), errors
