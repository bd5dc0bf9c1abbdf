"""A release that fails part-way is rolled back, and the ledger says exactly what went out and came back.

The hub NATS here is a real nats-server whose ``release`` user may publish
sr-1's records but not pt-1's (a subject permission, as a misconfigured
account would have): the route is sr-1 then pt-1, so sr-1's records go out
and pt-1's put is refused by the server. The release must not stand half
done: sr-1's records are withdrawn again, a ``po.line.release.rolled-back``
entry names what had gone out and what was put back, the line and its
traveler stay unreleased, and the same release through a user the server
allows goes through whole.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest
from nats.js import JetStreamContext

from smart.hub.clients.store import Refused
from smart.hub.release import store as release
from smart.hub.service_log import HANDOFF_CENTRAL
from smart.node import records
from smart.runtime import nats as natsconf
from smart.runtime.ports import free_port
from tests.access.test_station_nats import nats_server
from tests.hub.release.test_release import keys
from tests.hub.shop import QM, Work, entered


@dataclass(frozen=True)
class GuardedHub:
    url: str
    passwords: dict[str, str]


@pytest.fixture
def guarded_hub(tmp_path: Path) -> Iterator[GuardedHub]:
    passwords = {"hub": secrets.token_urlsafe(12), "release": secrets.token_urlsafe(12)}
    server = natsconf.HubServer(
        host="127.0.0.1",
        port=free_port(),
        leaf_port=free_port(),
        monitor_port=free_port(),
        store_dir=tmp_path / "jetstream",
    )
    bucket = f"$KV.{records.RECORDS_BUCKET}"
    authorization = f"""
authorization {{
  users = [
    {{ user: "hub", password: {json.dumps(passwords["hub"])} }}
    {{ user: "release", password: {json.dumps(passwords["release"])}, permissions: {{
        publish: {{ allow: ["$JS.API.>", "{bucket}.sr-1.>"] }}
        subscribe: {{ allow: ["_INBOX.>"] }}
    }} }}
  ]
}}
"""
    config = natsconf.write_config(tmp_path / "hub.conf", server.config() + authorization)
    with nats_server(config, server.monitor_port):
        yield GuardedHub(server.url, passwords)


async def test_a_release_refused_at_one_station_is_rolled_back_and_the_ledger_says_what_went_out(
    work: Work, guarded_hub: GuardedHub
) -> None:
    entered(work)
    admin = await nats.connect(guarded_hub.url, user="hub", password=guarded_hub.passwords["hub"])
    limited = await nats.connect(
        guarded_hub.url,
        user="release",
        password=guarded_hub.passwords["release"],
        error_cb=_ignore,  # the server's permissions violation arrives here too
    )
    try:
        admin_js = admin.jetstream()
        await records.ensure_records_bucket(admin_js)
        central = release.HandoffRelease(
            work.db.app_url,
            clients=work.clients,
            travelers=work.travelers,
            js=limited.jetstream(timeout=1.0),
            ledger=work.node(HANDOFF_CENTRAL),
        )
        work.closing.append(central.close)
        with pytest.raises(Refused) as refused:
            await central.release("PO-4411", "1", actor=QM)
        assert refused.value.field == "stations" and "did not reach pt-1" in refused.value.message

        # nothing stays at any station: sr-1's records went out and were withdrawn again
        assert await _present(admin_js) == set()
        intent, rolled_back = work.node(HANDOFF_CENTRAL).entries()
        assert intent.kind == release.RELEASE_KIND
        assert rolled_back.kind == release.ROLLED_BACK_KIND and rolled_back.data["release"] == intent.node_seq
        assert set(rolled_back.data["published"]) == {"sr-1.po-line.PO-4411/1", "sr-1.procedure.SR-PROC-3"}
        assert set(rolled_back.data["restored"]) == set(rolled_back.data["published"])
        assert rolled_back.data["failedAt"] == "pt-1.po-line.PO-4411/1"
        assert set(rolled_back.data["unreached"]) == {"pt-1.po-line.PO-4411/1", "pt-1.procedure.PT-PROC-12"}
        assert rolled_back.data["stillHeld"] == {} and rolled_back.actor == QM
        assert central.releases("PO-4411", "1") == []
        assert work.travelers.latest("PO-4411", "1").status == "draft"  # type: ignore[union-attr]
        assert work.clients.line("PO-4411", "1").released_version is None  # type: ignore[union-attr]

        # released again through a user the server lets publish everywhere: whole
        whole = release.HandoffRelease(
            work.db.app_url,
            clients=work.clients,
            travelers=work.travelers,
            js=admin_js,
            ledger=work.node(HANDOFF_CENTRAL),
        )
        work.closing.append(whole.close)
        released = await whole.release("PO-4411", "1", actor=QM)
        assert set(released.keys) == await _present(admin_js) == set(intent.data["keys"])
        assert work.travelers.latest("PO-4411", "1").status == "released"  # type: ignore[union-attr]
    finally:
        await limited.close()
        await admin.close()


async def _present(js: JetStreamContext) -> set[str]:
    return await keys(js)


async def _ignore(err: Exception) -> None:
    return None
