"""The station floor's fixtures (a hub with its ledger intake, the keys), reused for the hub's indexes,
and the approval pages' common start.

Every approval test begins as the floor does: the embedded driver seeds penetrant and the
stations on the floor's NATS (``seeded``), SMART-ID holds the people (``smartid``; the demo
shop's with their logins in ``demo_people``), pt-1's agent enforces the seeded revision
(``pt1``), and an author's signed change to penetrant is held pending approval
(:func:`hold_change`). The floor is each test's own (function scope: every test changes
penetrant, so no two could share one) and has one leaf, pt-1's, the station each test watches.
"""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import nats
import pytest

from smart.access.roles import Role
from smart.contracts import approval, distribution
from smart.contracts.models import SmartContract
from smart.embedded import driver
from smart.hub.vault import contract_signatures
from smart.hub.vault import service as vault
from smart.hub.vault.logins import Logins
from smart.hub.vault.smartid import SmartId
from smart.hub.web.status import FloorStatus
from smart.keys import KeyStore
from smart.node.agent import NodeAgent
from smart.runtime import demo_shop
from smart.runtime.background import BackgroundFloor
from smart.settings import Settings
from smart.testing.plugin import FloorFactory, FreshDatabase, make_settings
from tests.node.conftest import agent_for, eventually, hub, keys

__all__ = ["hub", "keys"]

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "correct horse battery"
#: The demo shop's quality manager and Level 3 in PT, and their logins in ``demo_people``.
QM, LEVEL_3 = "D-901", "D-301"


@dataclass(frozen=True, slots=True)
class Seeded:
    """The floor's NATS after the embedded driver's first start: penetrant and the stations seeded."""

    floor: BackgroundFloor
    keys: KeyStore
    keys_dir: Path
    #: The embedded driver's settings (what ``smart contract approve`` runs with).
    settings: Settings
    penetrant: SmartContract


@pytest.fixture
async def seeded(floor_factory: FloorFactory, tmp_path: Path) -> Seeded:
    # One leaf, pt-1's: the approvals and bundles live at the hub, and pt-1 is the station watched.
    nats_floor = floor_factory(stations=1)
    keys_dir = tmp_path / "keys"
    store = KeyStore(keys_dir)
    store.signing_key("hub")
    settings = make_settings(tmp_path / "driver", nats_url=nats_floor.hub_url, keys_dir=keys_dir)
    seed = tmp_path / "contracts"
    seed.mkdir()
    for name in ("penetrant.yaml", "stations.yaml"):
        (seed / name).write_text((ROOT / "contracts" / name).read_text())
    await driver.load_contracts(settings, seed)  # the floor's first start: the bootstrap
    penetrant = next(
        SmartContract.model_validate(r["manifest"])
        for r in await driver.get("contract", settings)
        if r["manifest"]["metadata"]["name"] == "penetrant"
    )
    return Seeded(nats_floor, store, keys_dir, settings, penetrant)


@pytest.fixture
def smartid(seeded: Seeded, database: FreshDatabase, tmp_path: Path) -> SmartId:
    """SMART-ID on the test's database, signing with the key the driver pins for approvals."""
    return SmartId(
        database.url,
        key=seeded.keys.signing_key(approval.SMART_ID_KEY),
        ledger=vault.SharedNodeLog(tmp_path / "ledger", seeded.keys),
    )


@dataclass(frozen=True, slots=True)
class DemoPeople:
    """The demo shop in SMART-ID; ``qm`` (the quality manager) and ``lee`` (a Level 3 in PT) sign in."""

    smartid: SmartId
    logins: Logins


@pytest.fixture
def demo_people(smartid: SmartId, database: FreshDatabase) -> Iterator[DemoPeople]:
    demo_shop.enrol(smartid, datetime.now(UTC))  # l3-1 (D-301) a Level 3 in PT, qm-1 (D-901) the QM
    logins = Logins(database.url)
    logins.add("qm", PASSWORD, role=Role.QUALITY_MANAGER, employee_id=QM)
    logins.add("lee", PASSWORD, role=Role.LEVEL3, employee_id=LEVEL_3)
    try:
        yield DemoPeople(smartid, logins)
    finally:
        logins.close()


@pytest.fixture
async def pt1(seeded: Seeded, tmp_path: Path) -> AsyncIterator[NodeAgent]:
    """pt-1's node agent, enforcing the seeded penetrant."""
    agent: NodeAgent = agent_for(seeded.floor, "pt-1", seeded.keys, tmp_path / "stations")
    await agent.start()
    try:
        await eventually(lambda: "penetrant" in agent.enforcer.revisions, what="pt-1 enforcing penetrant")
        yield agent
    finally:
        await agent.stop()


def raised_uva_minimum(contract: SmartContract, *, emergency: bool = False) -> SmartContract:
    """``contract`` with the UV-A intensity minimum raised from 1000 to 1200: the change to approve."""
    body = copy.deepcopy(contract.model_dump(mode="json", by_alias=True, exclude_none=True))
    if emergency:
        body["spec"]["approval"] = {"emergency": True}
    for rule in body["spec"]["rules"]:
        if rule.get("limits") == {"min": 1000}:
            rule["limits"] = {"min": 1200}
    return SmartContract.model_validate(body)


async def hold_change(
    seeded: Seeded, smartid: SmartId, *, author: str, actor: str, emergency: bool = False
) -> str:
    """``author`` writes the change (signed by SMART-ID) and applies it: held pending approval.

    Returns the held revision; the stations keep enforcing what they did.
    """
    edited = raised_uva_minimum(seeded.penetrant, emergency=emergency)
    revision = approval.spec_revision(edited)
    authored = contract_signatures.sign(
        smartid, author, act="authorship", contract="penetrant", revision=revision, actor=actor
    )
    held = await driver.apply([edited], seeded.settings, author=authored.token)
    assert next(a.outcome for a in held if a.name == "penetrant").startswith("pending approval")
    return revision


async def held_revisions(url: str) -> dict[str, str]:
    """Station → the penetrant revision its bundle in the floor's KV carries."""
    connection = await nats.connect(url)
    try:
        kv = await distribution.bucket(connection.jetstream())
        return await distribution.KvBundleStore(kv).revisions("penetrant")
    finally:
        await connection.close()


async def signed_in(base: str, username: str) -> httpx.AsyncClient:
    """An HTTP client of the hub at ``base``, signed in as ``username`` (close it)."""
    client = httpx.AsyncClient(base_url=base, timeout=120)
    answer = await client.post("/login", data={"username": username, "password": PASSWORD, "next": "/"})
    assert answer.status_code == 303, answer.text
    return client


async def no_floor() -> FloorStatus:
    """The status page's floor, healthy and empty: these hubs run no floor services."""
    return FloorStatus(healthy=True, services=[], checked_at=time.time())
