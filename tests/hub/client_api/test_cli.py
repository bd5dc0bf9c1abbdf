"""``smart client key create|list|revoke`` as an administrator types them: the key once, then refused.

They run against the Business hub's database, which knows the shop's clients as the Floor published
them (here one ``client`` record kept by the Business feed's own code, as the feed does on arrival):
a key for a client with no PO yet, and an unknown client refused with nothing written.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from smart.hub.client_api import service as client_api_service
from smart.hub.client_api.store import ClientCredentials
from smart.hub.published import feed
from smart.hub.service_log import CLIENT_API, ServiceNodeLog
from smart.keys import KeyStore
from smart.ledger import hub_store
from smart.testing.cli import invoke
from tests.hub.conftest import HubDatabase


def test_a_key_is_printed_once_listed_without_its_secret_and_revoked_from_the_command_line(
    hub_db: HubDatabase, tmp_path: Path
) -> None:
    env = {
        "SMART_DATABASE_URL": hub_db.owner_url,
        "SMART_STATE_DIR": str(tmp_path / "state"),
        "SMART_SETTINGS_FILE": str(tmp_path / "no-settings.toml"),
    }
    before = invoke("client", "key", "create", "AEROSPAR", env=env)
    assert before.exit_code == 1 and "no client API schema here" in before.stderr  # not a Business database
    feed.migrate(hub_db.owner_url, role=hub_store.APP_ROLE)
    client_api_service.migrate(hub_db.owner_url)
    business = feed.BusinessFeed(None, hub_db.app_url)  # type: ignore[arg-type]  # keep() needs no NATS
    body = {"client": "AEROSPAR", "name": "AeroSpar Industries"}
    arrived = feed.Published(kind="client", key="AEROSPAR", published_at=datetime.now(UTC), body=body)
    business.keep(arrived, 1)
    unknown = invoke("client", "key", "create", "NOBODY", env=env)
    assert unknown.exit_code == 1 and "client: no client NOBODY published to this hub" in unknown.stderr
    assert json.loads(invoke("client", "key", "list", env=env).stdout) == []  # nothing written

    created = invoke("client", "key", "create", "AEROSPAR", "--label", "ERP", env=env)
    assert created.exit_code == 0, created.output
    made = json.loads(created.stdout)
    key, key_id = made["key"], made["id"]
    listed = invoke("client", "key", "list", "AEROSPAR", env=env)
    assert [k["id"] for k in json.loads(listed.stdout)] == [key_id] and key.split(".")[1] not in listed.stdout

    store = ClientCredentials(
        hub_db.app_url,
        ledger=ServiceNodeLog(tmp_path / "unused", KeyStore(tmp_path / "keys"), node=CLIENT_API),
        pool_size=1,
    )
    try:
        found = store.authenticate(key)
        assert found is not None and found.client == "AEROSPAR"
        assert invoke("client", "key", "revoke", key_id, env=env).exit_code == 0
        assert store.authenticate(key) is None
        again = invoke("client", "key", "revoke", key_id, env=env)
        assert again.exit_code == 1 and "revoked already" in again.stderr
    finally:
        store.close()
