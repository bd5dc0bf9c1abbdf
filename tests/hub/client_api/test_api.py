"""SMART-API on the Business hub: each client sees only its own work, published by the Floor; fuzzed.

One shop state per test: on the Floor, AEROSPAR's PO-4411 (line 1 shipped
with its C of C, line 2 shipped without one, line 3 entered) and another
client's PO-7000, and Pay beside them (a third client is added with no PO
to get a key at onboarding). The Floor's publisher puts the clients and the
client views on the one-way feed, signed in as the Floor's NATS user; the
Business hub's feed, signed in as Business's, keeps them in its own schema;
the client API answers as Business's database login, which PostgreSQL
refuses every Floor table. The API is driven through the hub app as a
client's integration would (``Authorization: Bearer …``), and schemathesis
fuzzes it from the API's own OpenAPI document: no answer is a 5xx, and
every 4xx names what is wrong.
"""

from __future__ import annotations

import asyncio
import base64
import io
import multiprocessing
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
import psycopg
import pypdf
import pytest
import schemathesis
import structlog
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from nats.aio.client import Client as NatsClient
from schemathesis.core.result import Err

from smart.access.roles import Role
from smart.bus import hub_roles
from smart.bus.hub_roles import HubRole
from smart.hub import database_roles
from smart.hub.client_api import service as client_api_service
from smart.hub.client_api.store import RateLimit
from smart.hub.clients.models import ClientIn
from smart.hub.clients.store import Refused
from smart.hub.pay import service as pay_service
from smart.hub.published import client_views, feed
from smart.hub.service_log import CLIENT_API
from smart.hub.vault.logins import Logins
from smart.hub.web import auth
from smart.hub.web.app import create_app
from smart.ledger import bundle
from smart.ledger.hub_store import HubLog
from smart.runtime.background import BackgroundFloor
from smart.runtime.floor import FloorStatus
from smart.testing.patience import STATE_DEADLINE_S
from smart.testing.plugin import make_settings
from tests.hub.conftest import PASSWORD
from tests.hub.pay.test_store import shipped_floor
from tests.hub.shop import QM, Work, line, order

#: Examples per operation and generation mode (positive, negative): enough to find a 5xx, little time.
FUZZ_EXAMPLES = 5


async def _no_floor() -> FloorStatus:
    return FloorStatus(healthy=True, services=[], checked_at=time.time())


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundFloor]:
    """A hub NATS server with the hub's streams and each role's user (no PostgreSQL of its own)."""
    root = Path(tmp_path_factory.mktemp("client-api-bus"))
    floor = BackgroundFloor(make_settings(root / "state", stations=1), postgres=False).start()
    try:
        yield floor
    finally:
        floor.stop()


@dataclass
class Feed:
    """The Floor's publisher and the Business hub's end of the feed, each as its role's NATS user."""

    bus: BackgroundFloor
    views: client_views.ClientViews
    business_url: str

    async def _signed_in(self, role: HubRole) -> NatsClient:
        secrets_dir = self.bus.settings.secrets_directory
        return await nats.connect(
            self.bus.hub_url,
            user=hub_roles.user_name(role),
            password=(secrets_dir / hub_roles.password_file(role)).read_text().strip(),
            inbox_prefix=hub_roles.inbox_prefix(role),
            max_reconnect_attempts=0,
        )

    def carry(self) -> list[tuple[str, str]]:
        """One pass of the Floor's publisher, then Business's feed until it keeps what was sent.

        Kept means a later stream message than the one Business held for that key before the pass:
        a record published again moments after the last time (a rename) is not taken for the old one.
        """

        async def carried() -> list[tuple[str, str]]:
            floor, business = await self._signed_in(HubRole.FLOOR), await self._signed_in(HubRole.BUSINESS)
            try:
                before = await asyncio.to_thread(self.kept)
                sent = await self.views.publish_once(floor.jetstream())
                keeper = asyncio.create_task(feed.BusinessFeed(business.jetstream(), self.business_url).run())
                try:
                    deadline = time.monotonic() + STATE_DEADLINE_S
                    while True:
                        kept = await asyncio.to_thread(self.kept)
                        if all(kept.get(one, 0) > before.get(one, 0) for one in sent):
                            break
                        assert time.monotonic() < deadline, f"Business did not keep {sent}"
                        await asyncio.sleep(0.05)
                finally:
                    keeper.cancel()
                    await asyncio.gather(keeper, return_exceptions=True)
                return sent
            finally:
                await floor.close()
                await business.close()

        return self.bus.run(carried(), timeout=STATE_DEADLINE_S + 30)

    def kept(self) -> dict[tuple[str, str], int]:
        """Each record Business keeps, with the feed stream's sequence of the message it came in."""
        with psycopg.connect(self.business_url, autocommit=True) as conn:
            rows = conn.execute("SELECT kind, key, feed_seq FROM published.records").fetchall()
        return {(str(kind), str(key)): int(seq) for kind, key, seq in rows}


@dataclass
class Shop:
    client: TestClient
    services: client_api_service.ClientApiServices
    pay: pay_service.PayServices
    feed: Feed
    work: Work
    aerospar_key: str
    other_key: str


@pytest.fixture
def shop(work: Work, bus: BackgroundFloor) -> Iterator[Shop]:
    owner = work.db.owner_url
    business_login = database_roles.DATABASE_ROLES[HubRole.BUSINESS]
    business_url = database_roles.ensure_login_role(owner, HubRole.BUSINESS, bus.settings.secrets_directory)
    pay_service.migrate(owner)
    client_views.migrate(owner)
    feed.migrate(owner, role=business_login)
    client_api_service.migrate(owner, app_role=business_login)
    shipped_floor(work)
    work.clients.add_client(
        ClientIn(code="OTHER", name="Other Aero", retention="7 years", nadcap_required=False), actor=QM
    )
    other = order("PO-7000", line("1", serials=("OT-1",), quantity=1, flowdowns=(_no_nadcap(),)))
    work.clients.add_po(other.model_copy(update={"client": "OTHER"}), actor=QM)
    pay = pay_service.PayServices(work.db.app_url, keys=work.keys, ledger_dir=work.ledger_dir)
    views = client_views.ClientViews(
        work.db.app_url, pay=pay.pay, log_key=work.keys.signing_key("hub").verifying
    )
    carrier = Feed(bus, views, business_url)
    carrier.carry()
    services = client_api_service.ClientApiServices(
        business_url,
        keys=work.keys,
        ledger_dir=work.ledger_dir,
        rate_per_s=10_000,
        burst=10_000,
    )
    _, aerospar_key = services.credentials.create_key("AEROSPAR", actor=QM, label="ERP")
    _, other_key = services.credentials.create_key("OTHER", actor=QM)
    logins = Logins(owner)
    logins.add("qm-anna", PASSWORD, role=Role.QUALITY_MANAGER)
    app = create_app(_no_floor, routers=[auth.router(logins), *services.routers(auth.Guard(logins))])
    try:
        with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
            yield Shop(client, services, pay, carrier, work, aerospar_key, other_key)
    finally:
        services.credentials.close()
        pay.certificates.close()
        pay.pay.close()


def _no_nadcap() -> Any:
    from tests.hub.shop import flowdown

    return flowdown(nadcap_required=False)


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_clients_key_sees_only_its_own_work_and_a_revoked_key_is_refused(shop: Shop) -> None:
    api, mine, theirs = shop.client, _as(shop.aerospar_key), _as(shop.other_key)
    listed = api.get("/api/v1/client/pos", headers=mine)
    assert listed.status_code == 200, listed.text
    assert [po["po"] for po in listed.json()] == ["PO-4411"]

    def statuses() -> dict[str, tuple[str, bool, str | None]]:
        (po,) = api.get("/api/v1/client/pos", headers=mine).json()
        return {ln["line"]: (ln["status"], ln["certified"], ln["invoice"]) for ln in po["lines"]}

    assert statuses() == {
        "1": ("shipped", True, None),
        "2": ("shipped", False, None),
        "3": ("entered", False, None),
    }
    # Pay invoices line 1 on the Floor: only what changed goes out again (the PO's view, the invoice)
    invoice = shop.pay.pay.invoice("PO-4411", ["1"], actor=QM).number
    assert sorted(shop.feed.carry()) == [("client-po", "PO-4411"), ("invoice", invoice)]
    assert statuses() == {
        "1": ("invoiced", True, invoice),
        "2": ("shipped", False, None),
        "3": ("entered", False, None),
    }
    assert shop.feed.carry() == []  # nothing changed, nothing sent
    assert [po["po"] for po in api.get("/api/v1/client/pos", headers=theirs).json()] == ["PO-7000"]

    # another client's PO, C of C, proof and invoice answer exactly as ones that do not exist
    for path in (
        "/api/v1/client/pos/PO-4411",
        "/api/v1/client/pos/PO-4411/lines/1/coc",
        "/api/v1/client/pos/PO-4411/lines/1/proof",
        f"/api/v1/client/invoices/{invoice}",
        f"/api/v1/client/invoices/{invoice}/pdf",
    ):
        refused = api.get(path, headers=theirs)
        missing = api.get(path.replace("4411", "4412").replace(invoice, "INV-999"), headers=theirs)
        assert refused.status_code == 404 and "of yours" in refused.json()["detail"], path
        assert refused.json()["detail"] == missing.json()["detail"].replace("4412", "4411").replace(
            "INV-999", invoice
        )
    assert api.get("/api/v1/client/invoices", headers=theirs).json() == []

    # no printer runs on this made-up floor: the C of C is not printed yet (the demo shop's walk serves one)
    coc = api.get("/api/v1/client/pos/PO-4411/lines/1/coc", headers=mine)
    assert coc.status_code == 404 and coc.json()["detail"].startswith("line: no C of C printed yet")
    assert api.get("/api/v1/client/pos/PO-4411/lines/9/coc", headers=mine).json()["detail"] == (
        "line: PO PO-4411 has no line 9"
    )
    proofs = api.get("/api/v1/client/pos/PO-4411/lines/1/proof", headers=mine).json()["proofs"]
    assert {p["what"] for p in proofs} == {"coc", "ship"}
    with HubLog.connect(shop.work.db.app_url) as hub_log:
        trust = hub_log.trust(shop.work.keys.signing_key("hub").verifying)
    for proof in proofs:  # each bundle proves its entry offline against the log's signed checkpoint
        verified = bundle.verify(base64.b64decode(proof["bundle"]), trust)
        assert verified.index == proof["index"] and verified.entry.node == "sr-1"
    (listed_invoice,) = api.get("/api/v1/client/invoices", headers=mine).json()
    assert (listed_invoice["number"], listed_invoice["total"], listed_invoice["lines"][0]["quantity"]) == (
        invoice,
        "85.00",
        2,
    )
    assert api.get(f"/api/v1/client/invoices/{invoice}", headers=mine).json() == listed_invoice
    pdf = api.get(f"/api/v1/client/invoices/{invoice}/pdf", headers=mine)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    text = pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert "PO-4411" in text and "qm-1" not in text and QM not in text  # no person on the client's copy
    # A credit note for a returned part reaches the client the same way, with its PDF.
    credit = shop.pay.pay.credit(invoice, [("1", 1)], reason="RMA-7 one part returned", actor=QM).number
    assert shop.feed.carry() == [("invoice", credit)]
    listed = api.get("/api/v1/client/invoices", headers=mine).json()
    assert [(d["number"], d["kind"], d["credits"]) for d in listed][1] == (credit, "credit_note", invoice)
    assert api.get(f"/api/v1/client/invoices/{credit}/pdf", headers=mine).content.startswith(b"%PDF")
    # A body past the hub NATS max_payload is not sent: logged, and not rebuilt every pass.
    shop.feed.views.max_payload = 4096
    second = shop.pay.pay.credit(invoice, [("1", 1)], reason="RMA-8 the other part", actor=QM).number
    with structlog.testing.capture_logs() as logged:
        assert shop.feed.carry() == []
        assert shop.feed.carry() == []
    too_large = [e for e in logged if e["event"] == "published.too_large"]
    assert [(e["kind"], e["key"]) for e in too_large] == [("invoice", second)], logged
    assert api.get(f"/api/v1/client/invoices/{second}", headers=mine).status_code == 404
    # The Business login holds nothing of the Floor's: what the API answered came through the feed.
    with psycopg.connect(shop.feed.business_url, autocommit=True) as conn:
        for table in ("clients.purchase_orders", "pay.documents", "handoff.floor_events", "ledger_entries"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT 1 FROM {table} LIMIT 1")

    # no credential, a made-up one, a revoked one: 401, naming the authorization
    for headers in ({}, _as("smk_000000000000.not-a-secret"), _as("garbage")):
        refused = api.get("/api/v1/client/pos", headers=headers)
        assert refused.status_code == 401 and refused.json()["detail"].startswith("authorization:")
    (aerospar_key,) = shop.services.credentials.keys("AEROSPAR")
    shop.services.credentials.revoke_key(aerospar_key.id, actor=QM)
    assert api.get("/api/v1/client/pos", headers=mine).status_code == 401
    assert api.get("/api/v1/client/pos", headers=theirs).status_code == 200  # only that key
    recorded = shop.work.node(CLIENT_API).entries()
    assert [e.kind for e in recorded] == ["client.api_key.created"] * 2 + ["client.api_key.revoked"]
    assert all(
        shop.aerospar_key.split(".")[1] not in str(e.data) for e in recorded
    )  # no secret on the ledger

    # Business knows a client only as the Floor published it (it cannot read ClientManager's clients)
    with pytest.raises(Refused, match="no client NOBODY published to this hub"):
        shop.services.credentials.create_key("NOBODY", actor=QM)

    # OAuth 2.0 client credentials (Authlib): a token for AEROSPAR reads AEROSPAR's work only
    client_id, secret = shop.services.credentials.create_oauth_client("AEROSPAR", actor=QM)
    wrong = api.post(
        "/api/v1/client/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, "x")
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    granted = api.post(
        "/api/v1/client/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert granted.status_code == 200, granted.text
    token = granted.json()["access_token"]
    assert granted.json()["token_type"].lower() == "bearer" and granted.json()["expires_in"] == 900
    assert [po["po"] for po in api.get("/api/v1/client/pos", headers=_as(token)).json()] == ["PO-4411"]
    shop.services.credentials.revoke_oauth_client(client_id, actor=QM)
    assert api.get("/api/v1/client/pos", headers=_as(token)).status_code == 401  # its tokens stop with it

    # rate limits: past the bucket, 429 with Retry-After
    shop.services.api.limit = RateLimit(rate=0.01, burst=2)
    answers = [api.get("/api/v1/client/pos", headers=theirs) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[2].headers["retry-after"]) >= 1 and answers[2].json()["detail"].startswith(
        "rate limit"
    )

    # The bucket is PostgreSQL's, not the process's: another process serving the API draws on it too.
    shop.services.api.limit = RateLimit(rate=0.01, burst=3)
    _, shared = shop.services.credentials.create_key("AEROSPAR", actor=QM, label="replicas")
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as other:
        elsewhere = other.submit(_admitted_elsewhere, shop.feed.business_url, shared, 2).result(120)
    assert elsewhere == [True, True]
    answers = [api.get("/api/v1/client/pos", headers=_as(shared)) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 429]
    # Concurrent requests of one credential take one token each (the row is locked while taken).
    limit = RateLimit(rate=0.01, burst=5)
    _, fresh = shop.services.credentials.create_key("AEROSPAR", actor=QM, label="burst")
    with ThreadPoolExecutor(4) as threads:
        taken = list(threads.map(lambda _: shop.services.credentials.admit(fresh, limit), range(12)))
    assert sorted(a.wait_s == 0 for a in taken if a is not None) == [False] * 7 + [True] * 5
    assert shop.services.credentials.admit("smk_nokey.nosecret", limit) is None

    document = api.get("/api/v1/client/openapi.json").json()
    assert set(document["paths"]) >= {
        "/api/v1/client/pos",
        "/api/v1/client/pos/{po}/lines/{line}/coc",
        "/api/v1/client/invoices/{number}/pdf",
        "/api/v1/client/oauth/token",
    }
    assert not any(not path.startswith("/api/v1/client/") for path in document["paths"])
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_a_key_issued_before_the_clients_first_po_answers_an_empty_list_then_its_po_once_published(
    shop: Shop,
) -> None:
    """The shop sets up a client's API access at onboarding: the Floor publishes the client itself."""
    api, credentials, work = shop.client, shop.services.credentials, shop.work
    created_before = len(work.node(CLIENT_API).entries())

    def business_holds(code: str) -> list[dict[str, Any]]:
        return [r.body for r in feed.records(shop.feed.business_url, "client") if r.key == code]

    def refused_writing_nothing(code: str) -> Refused:
        with pytest.raises(Refused) as refused:
            credentials.create_key(code, actor=QM)
        with pytest.raises(Refused):
            credentials.create_oauth_client(code, actor=QM)
        assert credentials.keys(code) == [] and len(work.node(CLIENT_API).entries()) == created_before
        return refused.value

    # the clients of the fixture's shop went out once each, before any of their POs mattered
    assert business_holds("AEROSPAR") == [{"client": "AEROSPAR", "name": "Aerospar Structures"}]
    assert business_holds("OTHER") == [{"client": "OTHER", "name": "Other Aero"}]

    # a client unknown to the shop: refused naming it, no key, no OAuth client, no ledger entry
    unknown = refused_writing_nothing("NOBODY")
    assert unknown.field == "client" and "no client NOBODY published to this hub" in unknown.message

    # a client added on the Floor is unknown to Business until the Floor publishes it (nothing else reads it)
    newco = ClientIn(code="NEWCO", name="New Aero Works", retention="10 years", nadcap_required=False)
    work.clients.add_client(newco, actor=QM)
    assert "NEWCO" in refused_writing_nothing("NEWCO").message
    assert shop.feed.carry() == [("client", "NEWCO")]  # only the new record goes out
    # its code and company name only: no retention rule, clause, nor who added it
    assert business_holds("NEWCO") == [{"client": "NEWCO", "name": "New Aero Works"}]

    info, key = credentials.create_key("NEWCO", actor=QM, label="onboarding")
    assert info.client == "NEWCO"
    listed = api.get("/api/v1/client/pos", headers=_as(key))
    assert (listed.status_code, listed.json()) == (200, [])
    assert api.get("/api/v1/client/invoices", headers=_as(key)).json() == []
    for path in ("/api/v1/client/pos/PO-4411", "/api/v1/client/pos/PO-7000/lines/1/proof"):
        assert api.get(path, headers=_as(key)).status_code == 404, path  # never another client's work

    # renamed on the Floor: the changed record goes out again, and only it
    work.clients.change_client(newco.model_copy(update={"name": "New Aero Works Ltd"}), actor=QM)
    assert shop.feed.carry() == [("client", "NEWCO")]
    assert business_holds("NEWCO") == [{"client": "NEWCO", "name": "New Aero Works Ltd"}]
    assert shop.feed.carry() == []

    # its first PO: published as the others are, and the key issued before it now reads it, and only it
    first = order("PO-8000", line("1", serials=("NW-1",), quantity=1, flowdowns=(_no_nadcap(),)))
    work.clients.add_po(first.model_copy(update={"client": "NEWCO"}), actor=QM)
    assert shop.feed.carry() == [("client-po", "PO-8000")]
    (po,) = api.get("/api/v1/client/pos", headers=_as(key)).json()
    assert (po["po"], [(ln["line"], ln["status"]) for ln in po["lines"]]) == ("PO-8000", [("1", "entered")])
    aerospar = api.get("/api/v1/client/pos", headers=_as(shop.aerospar_key)).json()
    assert [p["po"] for p in aerospar] == ["PO-4411"]  # and no other client sees it


def _admitted_elsewhere(app_url: str, key: str, count: int) -> list[bool]:
    """In another process (its own pool, no shared memory): whether each of ``count`` requests may go."""
    from pathlib import Path
    from tempfile import mkdtemp

    from smart.hub.client_api.store import ClientCredentials
    from smart.hub.service_log import ServiceNodeLog
    from smart.keys import KeyStore

    work = Path(mkdtemp())
    store = ClientCredentials(
        app_url, ledger=ServiceNodeLog(work / "ledger", KeyStore(work / "keys"), node=CLIENT_API), pool_size=1
    )
    try:
        return [
            (admitted := store.admit(key, RateLimit(rate=0.01, burst=3))) is not None and admitted.wait_s == 0
            for _ in range(count)
        ]
    finally:
        store.close()


def _names_what_is_wrong(response: Any) -> None:
    """A 4xx says what is wrong: a 422 names the parameter, ours name the field, OAuth's its error code."""
    body = response.json()
    if response.status_code == 422:
        assert all(problem["loc"] and problem["msg"] for problem in body["detail"]), body
    elif "error" in body:  # RFC 6749 §5.2
        assert body["error"], body
    else:
        assert isinstance(body["detail"], str) and ":" in body["detail"], body


def test_schemathesis_finds_no_5xx_and_every_4xx_names_what_is_wrong(shop: Shop) -> None:
    schema = schemathesis.openapi.from_asgi("/api/v1/client/openapi.json", shop.client.app)
    headers = _as(shop.aerospar_key)
    calls: list[int] = []
    for result in schema.get_all_operations():
        assert not isinstance(result, Err), result.err()  # the document itself is valid
        operation = result.ok()
        for mode in schemathesis.GenerationMode:

            @settings(
                max_examples=FUZZ_EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def fuzz(case: schemathesis.Case[Any]) -> None:
                response = case.call(headers=headers)
                calls.append(response.status_code)
                assert response.status_code < 500, (case.as_curl_command(), response.text)
                if 400 <= response.status_code < 500:
                    _names_what_is_wrong(response)

            try:
                fuzz()
            except Unsatisfiable:  # an operation with no parameter has no negative input to make
                assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
    assert len(calls) >= 20 and any(code == 200 for code in calls) and any(400 <= c < 500 for c in calls)


def _serve(app: Any, forwarded_allow_ips: str) -> tuple[Any, threading.Thread, str]:
    """The app served by uvicorn as ``smart hub run`` serves it (:func:`server_config`), in a thread."""
    import uvicorn

    from smart.hub.web.app import server_config
    from smart.runtime import ports

    port = ports.free_port()
    server = uvicorn.Server(
        server_config(app, host="127.0.0.1", port=port, forwarded_allow_ips=forwarded_allow_ips)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    return server, thread, f"http://127.0.0.1:{port}"


def test_oauth_tokens_behind_the_dmz_proxy_trust_only_the_proxys_forwarded_headers(shop: Shop) -> None:
    """TLS ends at the DMZ proxy: the hub sees http, and believes X-Forwarded-Proto from the proxy only."""
    client_id, secret = shop.services.credentials.create_oauth_client("AEROSPAR", actor=QM)
    grant = {"grant_type": "client_credentials"}
    # The proxy passes the public host on; plain http to a loopback Host must not pass for https either.
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7", "Host": "api.shop.example"}
    app = shop.client.app
    for trusted, expected in (("127.0.0.1", 200), ("10.0.0.0/8", 400)):
        server, thread, base = _serve(app, trusted)
        try:
            with httpx.Client(base_url=base, timeout=30) as web:
                for host in ("api.shop.example", "localhost", "127.0.0.1"):
                    token_url, host_only = "/api/v1/client/oauth/token", {"Host": host}
                    plain = web.post(token_url, data=grant, auth=(client_id, secret), headers=host_only)
                    assert plain.status_code == 400 and "https only" in plain.json()["error_description"]
                proxied = web.post(
                    "/api/v1/client/oauth/token", data=grant, auth=(client_id, secret), headers=forwarded
                )
                assert proxied.status_code == expected, (trusted, proxied.text)
                if expected == 200:  # the token works on the next proxied request
                    token = proxied.json()["access_token"]
                    pos = web.get("/api/v1/client/pos", headers={**forwarded, **_as(token)})
                    assert [po["po"] for po in pos.json()] == ["PO-4411"]
                else:  # a peer that is not the proxy cannot claim https
                    assert "https only" in proxied.json()["error_description"]
        finally:
            server.should_exit = True
            thread.join(60)
