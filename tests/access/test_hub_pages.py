"""Hub pages for people and credentials: login required, roles decide, issue and revoke on the ledger."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import nats.errors
import pytest
import structlog.testing
from fastapi.testclient import TestClient

from smart import ledger
from smart.access import distribution, stationauth
from smart.access.credential import Kind
from smart.access.roles import Permission, Role, role_permissions
from smart.hub.vault import publish
from smart.hub.vault.logins import Logins
from smart.hub.vault.smartid import SmartId
from smart.hub.web import auth, people
from smart.hub.web.app import create_app
from smart.keys import SigningKey
from smart.runtime import nats as natsconf
from smart.runtime.background import BackgroundFloor
from smart.runtime.floor import FloorStatus
from smart.runtime.ports import free_port
from smart.testing.plugin import FreshDatabase
from tests.access.test_smartid import add_inspector

PASSWORD = "correct horse battery"


async def _no_floor() -> FloorStatus:
    return FloorStatus(healthy=True, services=[], checked_at=time.time())


@pytest.fixture
def hub(smartid: SmartId, database: FreshDatabase) -> Iterator[TestClient]:
    logins = Logins(database.url)
    for username, role in (("qm-alice", Role.QUALITY_MANAGER), ("nadcap-auditor", Role.AUDITOR)):
        logins.add(username, PASSWORD, role=role)
    app = create_app(_no_floor, routers=[auth.router(logins), people.router(smartid, auth.Guard(logins))])
    with TestClient(app, follow_redirects=False) as client:
        yield client


def sign_in(client: TestClient, username: str) -> None:
    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 303, response.text
    assert auth.SESSION_COOKIE in response.cookies


def test_hub_pages_refuse_anonymous_users(hub: TestClient, smartid: SmartId) -> None:
    add_inspector(smartid)
    page = hub.get("/people")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert hub.get("/credentials").status_code == 303
    assert hub.get("/api/credentials").status_code == 401
    issued = hub.post(
        "/credentials/issue", data={"employee_id": "E-1001", "kind": "access", "scope": "station=pt-1"}
    )
    assert issued.status_code == 401
    assert smartid.credentials() == []


def test_wrong_password_does_not_sign_in(hub: TestClient) -> None:
    response = hub.post("/login", data={"username": "qm-alice", "password": "not the password"})
    assert response.status_code == 401 and auth.SESSION_COOKIE not in response.cookies
    assert hub.post("/login", data={"username": "nobody", "password": PASSWORD}).status_code == 401


def test_auditor_reads_credentials_but_cannot_issue_or_revoke_and_each_refusal_is_logged(
    hub: TestClient, smartid: SmartId, smart_id_log: ledger.NodeLog
) -> None:
    add_inspector(smartid)
    existing = smartid.issue("E-1001", kind=Kind.ACCESS, scope={"station": "pt-1"}, actor="admin")
    sign_in(hub, "nadcap-auditor")
    assert hub.get("/credentials").status_code == 200
    assert [c["credential_id"] for c in hub.get("/api/credentials").json()] == [existing.credential_id]
    with structlog.testing.capture_logs() as logged:
        issued = hub.post(
            "/credentials/issue", data={"employee_id": "E-1001", "kind": "access", "scope": "station=mt-1"}
        )
        revoked = hub.post(f"/credentials/{existing.credential_id}/revoke", data={"reason": "audit finding"})
        suspended = hub.post(
            f"/credentials/{existing.credential_id}/suspend", data={"reason": "audit finding"}
        )
    assert (issued.status_code, revoked.status_code, suspended.status_code) == (403, 403, 403)
    refusals = [e for e in logged if e["event"] == "permission refused"]
    assert [(e["username"], e["permission"]) for e in refusals] == [
        ("nadcap-auditor", "credentials.issue"),
        ("nadcap-auditor", "credentials.revoke"),
        ("nadcap-auditor", "credentials.suspend"),
    ]
    assert all(PASSWORD not in str(e) for e in logged)
    assert [c.status for c in smartid.credentials()] == ["active"]
    assert [e.kind for e in smart_id_log.entries(0) if e.kind.startswith("credential.")] == [
        "credential.issued"
    ]


def test_auditor_role_holds_only_read_permissions() -> None:
    assert all(p.value.endswith(".read") for p in role_permissions()[Role.AUDITOR])


def test_quality_manager_issues_and_revokes_from_the_pages_and_the_ledger_names_them(
    hub: TestClient, smartid: SmartId, smart_id_log: ledger.NodeLog
) -> None:
    add_inspector(smartid)
    sign_in(hub, "qm-alice")
    issued = hub.post(
        "/credentials/issue", data={"employee_id": "E-1001", "kind": "certified", "scope": "method=PT"}
    )
    assert issued.status_code == 303, issued.text
    (credential,) = smartid.credentials()
    assert dict(credential.credential.scope) == {"method": "PT", "level": "2", "scheme": "NAS410"}
    revoked = hub.post(f"/credentials/{credential.credential_id}/revoke", data={"reason": "falsified exam"})
    assert revoked.status_code == 303
    ledgered = [
        (e.kind, e.actor, e.data["credential_id"])
        for e in smart_id_log.entries(0)
        if "credential_id" in e.data
    ]
    assert ledgered == [
        ("credential.issued", "qm-alice", credential.credential_id),
        ("credential.revoked", "qm-alice", credential.credential_id),
    ]


def test_issue_the_records_do_not_support_is_refused_with_the_reason_on_the_page(
    hub: TestClient, smartid: SmartId
) -> None:
    add_inspector(smartid)
    sign_in(hub, "qm-alice")
    page = hub.post(
        "/credentials/issue", data={"employee_id": "E-1001", "kind": "certified", "scope": "method=UT"}
    )
    assert page.status_code == 400 and "no record supports a certified credential" in page.text
    assert Permission.CREDENTIALS_ISSUE in role_permissions()[Role.QUALITY_MANAGER]


def test_quality_manager_adds_a_person_from_the_people_page_and_names_are_escaped(
    hub: TestClient, smart_id_log: ledger.NodeLog
) -> None:
    sign_in(hub, "qm-alice")
    added = hub.post(
        "/people",
        data={
            "employee_id": "E-3003",
            "name": "<script>x</script>",
            "badge_id": "B-0300",
            "roles": "operator",
        },
    )
    assert added.status_code == 303
    page = hub.get("/people")
    assert "&lt;script&gt;x&lt;/script&gt;" in page.text and "<script>x" not in page.text
    (entry,) = [e for e in smart_id_log.entries(0) if e.kind == "person.added"]
    assert entry.actor == "qm-alice" and entry.data["badge_id"] == "B-0300"


def test_auditor_cannot_add_people(hub: TestClient, smartid: SmartId) -> None:
    sign_in(hub, "nadcap-auditor")
    refused = hub.post("/people", data={"employee_id": "E-4004", "name": "X", "badge_id": "B-0400"})
    assert refused.status_code == 403 and smartid.people() == []


def test_signed_out_session_no_longer_opens_the_pages(hub: TestClient) -> None:
    sign_in(hub, "qm-alice")
    assert hub.get("/people").status_code == 200
    assert hub.post("/logout").status_code == 303
    hub.cookies.clear()
    assert hub.get("/people").status_code == 303


def test_revocation_made_on_the_page_reaches_the_stations_buckets_at_once(
    smartid: SmartId, database: FreshDatabase, nats_floor: BackgroundFloor
) -> None:
    assert nats_floor.floor.hub is not None
    hub_url = nats_floor.hub_url
    add_inspector(smartid)
    access = smartid.issue("E-1001", kind=Kind.ACCESS, scope={"station": "pt-1"}, actor="admin")
    logins = Logins(database.url)
    logins.add("qm-alice", PASSWORD, role=Role.QUALITY_MANAGER)
    pages = people.router(
        smartid, auth.Guard(logins), publish=publish.publisher(smartid, hub_url, ["pt-1"], signin={})
    )
    app = create_app(_no_floor, routers=[auth.router(logins), pages])
    with TestClient(app, follow_redirects=False) as client:
        sign_in(client, "qm-alice")
        revoked = client.post(
            f"/credentials/{access.credential_id}/revoke", data={"reason": "left the company"}
        )
        assert revoked.status_code == 303

    async def on_the_hub() -> tuple[list[str], list[str]]:
        conn = await nats.connect(hub_url)
        try:
            js = conn.jetstream()
            revocations = await distribution.read_revocations(
                await js.key_value(distribution.REVOCATIONS_BUCKET)
            )
            badges = await distribution.read_badges(await js.key_value(distribution.station_bucket("pt-1")))
            return list(revocations), list(badges)
        finally:
            await conn.close()

    assert asyncio.run(on_the_hub()) == ([access.credential_id], [])


async def test_publishing_signs_in_with_the_hub_services_nats_credentials(
    smartid: SmartId, tmp_path: Path
) -> None:
    """On a hub NATS that asks clients to sign its nonce, the publisher signs with ``nats_credentials``.

    The server lists one nkey user, so it sends a nonce: the publisher reads its credentials file to
    sign it (a file that is not there stops it, naming the file), and without credentials the
    server refuses it as anonymous: publishing never goes through unauthenticated.
    """
    user = stationauth.user_seed(SigningKey.generate("hub-services"))
    port = free_port()
    config = tmp_path / "hub.conf"
    users = f"authorization {{ users: [{{nkey: {stationauth.user_public(user)}}}] }}"
    config.write_text(f"listen: 127.0.0.1:{port}\n{users}\n")
    server = await asyncio.create_subprocess_exec(
        str(natsconf.server_binary()), "-c", str(config), stderr=asyncio.subprocess.DEVNULL
    )
    try:
        url = f"nats://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:  # until the server listens: then the anonymous publisher is refused
            try:
                await asyncio.wait_for(publish.publisher(smartid, url, ["pt-1"], signin={})(), 30)
            except (OSError, nats.errors.NoServersError):
                assert time.monotonic() < deadline, "the hub NATS did not start"
                await asyncio.sleep(0.1)
            except nats.errors.Error as err:
                assert "authorization" in str(err).lower(), err
                break
            else:
                raise AssertionError("an anonymous publisher was let in")
        missing = tmp_path / "hub-services.creds"
        with pytest.raises(FileNotFoundError, match=r"hub-services\.creds"):
            await asyncio.wait_for(
                publish.publisher(smartid, url, ["pt-1"], signin={"user_credentials": str(missing)})(), 30
            )
    finally:
        server.terminate()
        await server.wait()
