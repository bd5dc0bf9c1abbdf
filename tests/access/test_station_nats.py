"""A station's own NATS credentials, against a real nats-server with authorization configured.

The hub server runs with the ``authorization`` block SMART generates: the hub
services' user is unrestricted, each station's nkey may publish only its own
subjects and read only its own access buckets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import nats
import nats.errors
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from smart.access import distribution, stationauth
from smart.bus import subjects
from smart.bus.mirror import mirror_bucket, stream_name
from smart.keys import KeyStore
from smart.runtime import nats as natsconf
from smart.runtime.ports import free_port

STATIONS = ("pt-1", "mt-1")


@dataclass
class AuthorizedHub:
    url: str
    leaf_port: int
    seeds: dict[str, str]


@contextmanager
def nats_server(config: Path, monitor_port: int) -> Iterator[None]:
    """A nats-server on ``config``, healthy (JetStream up) before this yields."""
    log_path = config.with_suffix(".log")
    with log_path.open("wb") as log:
        process = subprocess.Popen([str(natsconf.server_binary()), "-c", str(config)], stdout=log, stderr=log)
        try:
            health = f"http://127.0.0.1:{monitor_port}/healthz?js-enabled-only=true"
            for _ in range(400):
                try:
                    if httpx.get(health, timeout=0.5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None:
                    raise RuntimeError(f"nats-server exited: {log_path.read_text()}")
                time.sleep(0.05)
            yield
        finally:
            process.terminate()
            process.wait(10)


@pytest.fixture
def authorized_hub(tmp_path: Path) -> Iterator[AuthorizedHub]:
    keys = KeyStore(tmp_path / "keys")
    seeds = {"hub": stationauth.user_seed(keys.signing_key("nats-hub-services"))}
    users = [stationauth.NatsUser("hub services", stationauth.user_public(seeds["hub"]), None)]
    for station in STATIONS:
        seeds[station] = stationauth.user_seed(keys.signing_key(stationauth.key_name(station)))
        users.append(
            stationauth.NatsUser(
                f"station {station}",
                stationauth.user_public(seeds[station]),
                stationauth.station_permissions(station),
            )
        )
    server = natsconf.HubServer(
        host="127.0.0.1",
        port=free_port(),
        leaf_port=free_port(),
        monitor_port=free_port(),
        store_dir=tmp_path / "jetstream",
    )
    text = server.config() + stationauth.authorization_block(users)
    config = natsconf.write_config(tmp_path / "hub.conf", text)
    with nats_server(config, server.monitor_port):
        yield AuthorizedHub(url=server.url, leaf_port=server.leaf_port, seeds=seeds)


@pytest.fixture
def pt1_leaf(authorized_hub: AuthorizedHub, tmp_path: Path) -> Iterator[str]:
    """Station pt-1's leaf nats-server (its own JetStream domain), signed in to the hub with pt-1's nkey."""
    port, monitor = free_port(), free_port()
    text = "\n".join(
        [
            'server_name: "smart-pt-1"',
            'host: "127.0.0.1"',
            f"port: {port}",
            f'http: "127.0.0.1:{monitor}"',
            f'jetstream {{ domain: "pt-1", store_dir: {json.dumps(str(tmp_path / "pt-1-js"))} }}',
            "leafnodes {",
            "  reconnect: 1",
            f'  remotes: [ {{ url: "nats-leaf://127.0.0.1:{authorized_hub.leaf_port}", '
            f"nkey: {json.dumps(authorized_hub.seeds['pt-1'])} }} ]",
            "}",
            "",
        ]
    )
    config = tmp_path / "pt-1.conf"
    config.write_text(text)
    config.chmod(0o600)
    with nats_server(config, monitor):
        yield f"nats://127.0.0.1:{port}"


@dataclass
class Connection:
    client: NatsClient
    violations: list[str] = field(default_factory=list)
    seen: asyncio.Event = field(default_factory=asyncio.Event)

    async def violation(self, about: str) -> str:
        """The server's permissions violation naming ``about`` (it always sends one; 10 s bound a hang)."""

        async def wait() -> str:
            while True:
                for text in self.violations:
                    if about.lower() in text:
                        return text
                self.seen.clear()
                await self.seen.wait()

        return await asyncio.wait_for(wait(), 10)


async def connect(hub: AuthorizedHub, who: str) -> Connection:
    conn = Connection(client=NatsClient())

    async def on_error(err: Exception) -> None:
        conn.violations.append(str(err).lower())
        conn.seen.set()

    await conn.client.connect(
        hub.url,
        nkeys_seed_str=hub.seeds[who],
        error_cb=on_error,
        inbox_prefix=stationauth.inbox_prefix(who) if who in STATIONS else "_INBOX",
        allow_reconnect=False,
    )
    return conn


@pytest.fixture
async def hub_services(authorized_hub: AuthorizedHub) -> AsyncIterator[Connection]:
    conn = await connect(authorized_hub, "hub")
    js = conn.client.jetstream()
    for station in STATIONS:
        kv = await distribution.bucket(js, distribution.station_bucket(station))
        badge = "B-0042" if station == "pt-1" else "B-0099"
        await distribution.publish_badges(kv, [distribution.BadgeCredentials(badge, ("token-of-" + badge,))])
    await distribution.bucket(js, distribution.KEYS_BUCKET)
    await distribution.bucket(js, distribution.REVOCATIONS_BUCKET)
    contracts = await distribution.bucket(js, subjects.CONTRACTS_BUCKET)
    await contracts.put(subjects.contract_key("pt-1", "pt-line"), b"signed bundle")
    await js.add_stream(name=subjects.LEDGER_STREAM, subjects=[subjects.LEDGER_SUBJECTS])
    yield conn
    await conn.client.close()


async def test_station_publishes_on_its_own_subjects_but_not_on_another_stations(
    authorized_hub: AuthorizedHub, hub_services: Connection
) -> None:
    received: list[str] = []
    got_own = asyncio.Event()

    async def on_message(msg: Msg) -> None:
        received.append(msg.subject)
        if msg.subject.startswith("station.pt-1."):
            got_own.set()

    await hub_services.client.subscribe("station.>", cb=on_message)
    await hub_services.client.flush()
    pt1 = await connect(authorized_hub, "pt-1")
    await pt1.client.publish("station.mt-1.gatekeeper.decision", b"forged")
    await pt1.client.publish("station.pt-1.gatekeeper.decision", b"real")
    await pt1.client.flush()
    await got_own.wait()
    assert received == ["station.pt-1.gatekeeper.decision"]
    assert "permissions violation for publish" in await pt1.violation("station.mt-1.gatekeeper.decision")
    await pt1.client.close()


async def test_station_cannot_listen_to_another_stations_subjects_or_other_clients_replies(
    authorized_hub: AuthorizedHub, hub_services: Connection
) -> None:
    pt1 = await connect(authorized_hub, "pt-1")
    await pt1.client.subscribe("station.mt-1.>")
    await pt1.client.subscribe("_INBOX.>")
    await pt1.client.subscribe("vault.>")
    await pt1.client.subscribe("$JS.M.>")  # where other stations' mirrors are delivered by default
    for subject in ("station.mt-1.>", "_INBOX.>", "vault.>", "$JS.M.>"):
        assert "permissions violation for subscription" in await pt1.violation(f'"{subject}"')
    await pt1.client.close()


async def test_station_reads_its_own_badges_and_the_shared_lists_but_not_another_stations_badges(
    authorized_hub: AuthorizedHub, hub_services: Connection
) -> None:
    pt1 = await connect(authorized_hub, "pt-1")
    js = pt1.client.jetstream(timeout=1)
    own = await js.key_value(distribution.station_bucket("pt-1"))
    assert (await distribution.read_badges(own))["B-0042"].credentials == ("token-of-B-0042",)
    assert await distribution.read_revocations(await js.key_value(distribution.REVOCATIONS_BUCKET)) == {}
    with pytest.raises(nats.errors.TimeoutError):
        await js.key_value(distribution.station_bucket("mt-1"))
    assert "permissions violation for publish" in await pt1.violation("KV_access-station-mt-1")
    with pytest.raises(nats.errors.TimeoutError):
        other = "KV_access-station-mt-1.$KV.access-station-mt-1.B-0099"
        await pt1.client.request(f"$JS.API.DIRECT.GET.{other}", b"")
    await pt1.client.close()


async def test_station_cannot_ask_hub_services_for_personal_data_nor_write_the_access_buckets(
    authorized_hub: AuthorizedHub, hub_services: Connection
) -> None:
    asked = asyncio.Event()

    async def answer(msg: Msg) -> None:
        asked.set()
        await msg.respond(b'{"name": "J. Smith", "address": "..."}')

    await hub_services.client.subscribe("vault.people.get", cb=answer)
    await hub_services.client.flush()
    pt1 = await connect(authorized_hub, "pt-1")
    with pytest.raises(nats.errors.TimeoutError):
        await pt1.client.request("vault.people.get", b"B-0099", timeout=0.5)
    assert "vault.people.get" in await pt1.violation("vault.people.get")
    await pt1.client.publish(f"$KV.{distribution.REVOCATIONS_BUCKET}.some-credential", b"{}")
    assert "permissions violation" in await pt1.violation(f"$KV.{distribution.REVOCATIONS_BUCKET}")
    assert not asked.is_set()
    await pt1.client.close()


async def _leaf_connected(hub: Connection, leaf: NatsClient) -> None:
    """Wait until a subject published on the leaf reaches the hub (the leaf link is up and has interest)."""
    arrived = asyncio.Event()

    async def on_message(msg: Msg) -> None:
        arrived.set()

    sub = await hub.client.subscribe("station.pt-1.hello", cb=on_message)
    await hub.client.flush()
    while not arrived.is_set():
        await leaf.publish("station.pt-1.hello", b"")
        await leaf.flush()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrived.wait(), 0.2)
    await sub.unsubscribe()


async def test_station_leaf_signed_in_with_its_nkey_forwards_its_own_subjects_and_mirrors_only_its_buckets(
    authorized_hub: AuthorizedHub, hub_services: Connection, pt1_leaf: str
) -> None:
    leaf = await nats.connect(pt1_leaf)
    try:
        await _leaf_connected(hub_services, leaf)
        received: list[str] = []
        got_own = asyncio.Event()

        async def on_message(msg: Msg) -> None:
            received.append(msg.subject)
            got_own.set() if msg.subject == "station.pt-1.gatekeeper.decision" else None

        await hub_services.client.subscribe("station.*.gatekeeper.decision", cb=on_message)
        await hub_services.client.flush()
        await _leaf_connected(hub_services, leaf)
        await leaf.publish("station.mt-1.gatekeeper.decision", b"forged")
        await leaf.publish("station.pt-1.gatekeeper.decision", b"real")
        await leaf.flush()
        await asyncio.wait_for(got_own.wait(), 10)
        assert received == ["station.pt-1.gatekeeper.decision"]

        js = leaf.jetstream()
        deliver = stationauth.mirror_deliver_prefix("pt-1")
        other = await mirror_bucket(js, distribution.station_bucket("mt-1"), deliver=deliver)
        own = await mirror_bucket(js, distribution.station_bucket("pt-1"), deliver=deliver)
        for _ in range(400):
            if (await js.stream_info(stream_name(distribution.station_bucket("pt-1")))).state.messages:
                break
            await asyncio.sleep(0.025)
        assert (await own.get("B-0042")).value == b'{"badge": "B-0042", "credentials": ["token-of-B-0042"]}'
        # The mt-1 mirror was asked for first, over the same leaf link: had the hub accepted it,
        # its entry would be there by now, as pt-1's is.
        assert (await js.stream_info(stream_name(distribution.station_bucket("mt-1")))).state.messages == 0
        assert other is not None
    finally:
        await leaf.close()


async def test_station_ships_its_own_ledger_and_reads_its_contracts_but_cannot_ship_as_another_station(
    authorized_hub: AuthorizedHub, hub_services: Connection
) -> None:
    pt1 = await connect(authorized_hub, "pt-1")
    js = pt1.client.jetstream(timeout=1)
    ack = await js.publish(subjects.ledger_subject("pt-1"), b"batch", headers={"Nats-Msg-Id": "pt-1:0-9"})
    assert ack.stream == subjects.LEDGER_STREAM
    with pytest.raises(nats.errors.TimeoutError):
        await js.publish(subjects.ledger_subject("mt-1"), b"forged batch")
    assert "permissions violation for publish" in await pt1.violation(subjects.ledger_subject("mt-1"))
    contracts = await js.key_value(subjects.CONTRACTS_BUCKET)
    bundle = await contracts.get(subjects.contract_key("pt-1", "pt-line"))
    assert bundle.value == b"signed bundle"
    await pt1.client.close()


async def test_station_answers_the_hubs_requests_on_its_own_subjects(
    authorized_hub: AuthorizedHub, hub_services: Connection
) -> None:
    pt1 = await connect(authorized_hub, "pt-1")

    async def witness(msg: Msg) -> None:
        await msg.respond(b"cosigned")

    await pt1.client.subscribe("station.pt-1.witness", cb=witness)
    await pt1.client.flush()
    # The subscription reaches the hub's other client a moment after the station's flush.
    for _ in range(50):
        try:
            reply = await hub_services.client.request("station.pt-1.witness", b"checkpoint", timeout=5)
            break
        except nats.errors.NoRespondersError:
            await asyncio.sleep(0.02)
    assert reply.data == b"cosigned"
    await pt1.client.close()
