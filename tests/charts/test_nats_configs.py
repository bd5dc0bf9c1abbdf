"""The chart's rendered NATS configurations run in a real nats-server: authentication everywhere.

The hub's config from the chart refuses anonymous clients, lets the operator and the hub services
in with their own generated passwords, and a station's leaf config from the chart signs in with
the station's nkey (given as the pod's environment would) and is seen by the hub as its leaf.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.errors
import pytest

from smart.access import stationauth
from smart.bus import hub_roles
from smart.bus.hub_roles import HubRole
from smart.keys import KeyStore
from smart.runtime import nats as natsconf
from smart.runtime.ports import free_port
from tests.charts.conftest import find, render, station_value


@contextmanager
def server(config: Path, monitor: int, env: dict[str, str]) -> Iterator[None]:
    log = config.with_suffix(".log")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(natsconf.server_binary()), "-c", str(config)],
            stdout=out,
            stderr=out,
            env={**os.environ, **env},
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                assert process.poll() is None, log.read_text()
                try:
                    if httpx.get(f"http://127.0.0.1:{monitor}/healthz", timeout=0.5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
            yield
        finally:
            process.terminate()
            process.wait(10)


async def test_the_rendered_hub_and_leaf_configs_authenticate_every_client_and_the_station_leaf(
    tmp_path: Path,
) -> None:
    keys = KeyStore(tmp_path / "keys")
    client, leafnodes, monitor = free_port(), free_port(), free_port()
    values: dict[str, Any] = {
        "nats": {
            "clientPort": client,
            "leafnodePort": leafnodes,
            "monitorPort": monitor,
            "leafnodeUrl": f"nats-leaf://127.0.0.1:{leafnodes}",
        },
        "stations": [station_value("pt-1", keys)],
    }
    objects = render(values)
    passwords = find(objects, "Secret", "smart-nats-users")["stringData"]
    hub_conf = tmp_path / "hub.conf"
    hub_conf.write_text(
        find(objects, "ConfigMap", "smart-nats-config")["data"]["nats-server.conf"].replace(
            "/data/jetstream", str(tmp_path / "hub-js")
        )
    )
    hub_env = {
        "SMART_OPERATOR_NATS_PASSWORD": passwords["operator-password"],
        "SMART_HUB_NATS_PASSWORD": passwords["hub-password"],
    }
    leaf_port, leaf_monitor = free_port(), free_port()
    leaf_text = find(objects, "ConfigMap", "smart-station-pt-1-leaf")["data"]["leaf.conf"]
    leaf_conf = tmp_path / "leaf.conf"
    leaf_conf.write_text(
        leaf_text.replace('host: "0.0.0.0"', 'host: "127.0.0.1"')
        .replace("port: 4222", f"port: {leaf_port}")
        .replace("127.0.0.1:8222", f"127.0.0.1:{leaf_monitor}")
        .replace("/var/lib/smart/nats/pt-1/jetstream", str(tmp_path / "leaf-js"))
    )
    seed = stationauth.user_seed(keys.signing_key(stationauth.key_name("pt-1")))
    url = f"nats://127.0.0.1:{client}"
    with server(hub_conf, monitor, hub_env):
        with pytest.raises((nats.errors.NoServersError, nats.errors.Error)):
            await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0)
        with pytest.raises((nats.errors.NoServersError, nats.errors.Error)):
            await nats.connect(f"nats://operator:wrong@127.0.0.1:{client}", allow_reconnect=False)
        for user in ("operator", "hub"):
            connection = await nats.connect(
                f"nats://{user}:{passwords[f'{user}-password']}@127.0.0.1:{client}", allow_reconnect=False
            )
            await connection.jetstream().account_info()  # JetStream domain hub answers the service
            await connection.close()
        async with httpx.AsyncClient(timeout=2) as http:
            with server(leaf_conf, leaf_monitor, {"SMART_STATION_NKEY": seed}):
                assert await _leaves(http, monitor, want=1) == ["smart-pt-1"]
            stranger = {"SMART_STATION_NKEY": stationauth.user_seed(keys.signing_key("other"))}
            with server(leaf_conf, leaf_monitor, stranger):
                log = leaf_conf.with_suffix(".log")
                deadline = time.monotonic() + 60
                while "Authorization Violation" not in log.read_text() and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                assert "Authorization Violation" in log.read_text()  # a seed the hub does not list
                assert await _leaves(http, monitor, want=0) == []


async def _leaves(http: httpx.AsyncClient, monitor: int, *, want: int) -> list[str]:
    """The names of the hub's leaf connections, once there are ``want`` of them (or after a minute)."""
    deadline = time.monotonic() + 60
    while True:
        leafs = (await http.get(f"http://127.0.0.1:{monitor}/leafz")).json().get("leafs") or []
        if len(leafs) == want or time.monotonic() > deadline:
            return [str(leaf["name"]) for leaf in leafs]
        await asyncio.sleep(0.1)


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a hub certificate for 127.0.0.1 it signed: (ca.crt, tls.crt, tls.key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SMART test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smart-hub")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "ca.crt", directory / "tls.crt", directory / "tls.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


async def test_with_leafnode_tls_the_station_leaf_joins_only_trusting_the_hubs_ca(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "keys")
    ca, cert, key = _certificates(tmp_path)
    client, leafnodes, monitor = free_port(), free_port(), free_port()
    values: dict[str, Any] = {
        "nats": {
            "clientPort": client,
            "leafnodePort": leafnodes,
            "monitorPort": monitor,
            "leafnodeUrl": f"nats-leaf://127.0.0.1:{leafnodes}",
            "leafnodeTls": {"secretName": "smart-hub-leafnode-tls", "caConfigMap": "smart-hub-ca"},
        },
        "stations": [station_value("pt-1", keys)],
    }
    objects = render(values)
    statefulset = find(objects, "StatefulSet", "smart-nats")["spec"]["template"]["spec"]
    assert {
        "name": "leafnode-tls",
        "secret": {"secretName": "smart-hub-leafnode-tls", "defaultMode": 0o440},
    } in (statefulset["volumes"])
    passwords = find(objects, "Secret", "smart-nats-users")["stringData"]
    hub_conf = tmp_path / "hub.conf"
    hub_conf.write_text(
        find(objects, "ConfigMap", "smart-nats-config")["data"]["nats-server.conf"]
        .replace("/data/jetstream", str(tmp_path / "hub-js"))
        .replace("/etc/nats-tls/tls.crt", str(cert))
        .replace("/etc/nats-tls/tls.key", str(key))
    )
    hub_env = {
        "SMART_OPERATOR_NATS_PASSWORD": passwords["operator-password"],
        "SMART_HUB_NATS_PASSWORD": passwords["hub-password"],
    }
    leaf_port, leaf_monitor = free_port(), free_port()
    leaf_text = find(objects, "ConfigMap", "smart-station-pt-1-leaf")["data"]["leaf.conf"]
    assert 'tls: { ca_file: "/etc/nats-ca/ca.crt" }' in leaf_text
    leaf_conf = tmp_path / "leaf.conf"
    leaf_conf.write_text(
        leaf_text.replace('host: "0.0.0.0"', 'host: "127.0.0.1"')
        .replace("port: 4222", f"port: {leaf_port}")
        .replace("127.0.0.1:8222", f"127.0.0.1:{leaf_monitor}")
        .replace("/var/lib/smart/nats/pt-1/jetstream", str(tmp_path / "leaf-js"))
        .replace("/etc/nats-ca/ca.crt", str(ca))
    )
    seed = stationauth.user_seed(keys.signing_key(stationauth.key_name("pt-1")))
    with server(hub_conf, monitor, hub_env):
        async with httpx.AsyncClient(timeout=2) as http:
            with server(leaf_conf, leaf_monitor, {"SMART_STATION_NKEY": seed}):
                assert await _leaves(http, monitor, want=1) == ["smart-pt-1"]
            plain = tmp_path / "plain-leaf.conf"
            plain.write_text(leaf_conf.read_text().replace(f', tls: {{ ca_file: "{ca}" }}', ""))
            assert "ca_file" not in plain.read_text()
            with server(plain, leaf_monitor, {"SMART_STATION_NKEY": seed}):
                log = plain.with_suffix(".log")
                deadline = time.monotonic() + 60
                refused = "certificate signed by unknown authority"
                while refused not in log.read_text() and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                # The hub requires TLS; a leaf not given the hub's CA cannot trust it and never joins.
                assert refused in log.read_text()
                assert await _leaves(http, monitor, want=0) == []


async def test_the_rendered_hub_config_lets_each_hub_role_in_with_only_its_own_subjects(
    tmp_path: Path,
) -> None:
    """With ``hubs:`` enabled the chart's hub NATS lists ``hub-<role>``: each signs in with its
    generated password, and the server refuses what the role's permissions leave out."""
    keys = KeyStore(tmp_path / "keys")
    client, leafnodes, monitor = free_port(), free_port(), free_port()
    values: dict[str, Any] = {
        "nats": {"clientPort": client, "leafnodePort": leafnodes, "monitorPort": monitor},
        "stations": [station_value("pt-1", keys)],
        "hubs": {role.value: {"enabled": True} for role in HubRole},
    }
    objects = render(values)
    users = find(objects, "Secret", "smart-nats-users")["stringData"]
    roles = find(objects, "Secret", "smart-hub-roles")["stringData"]
    hub_conf = tmp_path / "hub.conf"
    hub_conf.write_text(
        find(objects, "ConfigMap", "smart-nats-config")["data"]["nats-server.conf"].replace(
            "/data/jetstream", str(tmp_path / "hub-js")
        )
    )
    env = {
        "SMART_OPERATOR_NATS_PASSWORD": users["operator-password"],
        "SMART_HUB_NATS_PASSWORD": users["hub-password"],
        **{
            f"SMART_HUB_{role.value.upper()}_NATS_PASSWORD": roles[hub_roles.password_file(role)]
            for role in HubRole
        },
    }
    forbidden = {
        HubRole.VAULT: "ledger.pt-1.batch",
        HubRole.FLOOR: "$KV.access-keys.forged",
        HubRole.BUSINESS: "station.pt-1.decide",
    }
    with server(hub_conf, monitor, env):
        for role in HubRole:
            said: list[str] = []

            async def noted(err: Exception, said: list[str] = said) -> None:
                said.append(str(err))

            connection = await nats.connect(
                f"nats://127.0.0.1:{client}",
                user=hub_roles.user_name(role),
                password=roles[hub_roles.password_file(role)],
                inbox_prefix=hub_roles.inbox_prefix(role),
                allow_reconnect=False,
                error_cb=noted,
            )
            try:
                await connection.publish(forbidden[role], b"{}")
                await connection.flush()
                deadline = time.monotonic() + 60
                while not said and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
            finally:
                await connection.close()
            assert said and "permissions violation" in said[0].lower(), (role, said)
            assert forbidden[role].lower() in said[0].lower(), (role, said)
