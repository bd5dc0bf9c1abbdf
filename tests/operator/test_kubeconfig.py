"""The operator over TLS with the kubeconfigs clusters hand out: inline CA data, client certificates, exec.

kmock serves HTTPS here with a certificate signed by a CA made for the test; for the client
certificate case it demands and verifies the client's certificate, so a call without one (the
old ``system:anonymous``) never reaches it. The operator logs in from ``KUBECONFIG`` the way it
does on a workstation (kopf with the ``kubernetes`` client) and must do its own calls (DaemonSets,
node labels, status) over the same login.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp.test_utils
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kmock._internal import apps

from smart.operator import handlers
from tests.operator.conftest import (
    CONTRACTS,
    DAEMONSETS,
    STATIONS,
    Starter,
    VersionedEmulator,
    declare,
    eventually,
)
from tests.operator.test_operator import CONTRACT, distributed, station

TOKEN = "kubeconfig-token-0123456789"


@dataclass(frozen=True)
class Pem:
    cert: bytes
    key: bytes


def _issue(
    name: str, *, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None, server: bool = False
) -> tuple[Pem, x509.Name, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0] if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    pem = Pem(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    return pem, subject, key


@dataclass(frozen=True)
class Pki:
    ca: Pem
    server: Pem
    client: Pem


def pki() -> Pki:
    ca, ca_name, ca_key = _issue("smart-test-ca", issuer=None)
    server, _, _ = _issue("kube-apiserver", issuer=(ca_name, ca_key), server=True)
    client, _, _ = _issue("system:serviceaccount:smart:smart-operator", issuer=(ca_name, ca_key))
    return Pki(ca, server, client)


def _files(directory: Path, pem: Pem, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    cert.write_bytes(pem.cert)
    key.write_bytes(pem.key)
    return cert, key


def server_context(keys: Pki, directory: Path, *, demand_client_cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*_files(directory, keys.server, "server"))
    if demand_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=keys.ca.cert.decode())
    return context


def client_context(keys: Pki, directory: Path) -> ssl.SSLContext:
    """The test's own client (as kubectl): trusts the CA, presents the client certificate."""
    context = ssl.create_default_context(cadata=keys.ca.cert.decode())
    context.load_cert_chain(*_files(directory, keys.client, "kubectl"))
    return context


def tls_server(context: ssl.SSLContext) -> type[aiohttp.test_utils.RawTestServer]:
    class TlsServer(aiohttp.test_utils.RawTestServer):
        async def start_server(self, loop: asyncio.AbstractEventLoop | None = None, **kwargs: Any) -> None:
            await super().start_server(loop=loop, ssl=context, **kwargs)

    return TlsServer


def kubeconfig(path: Path, url: str, keys: Pki, *, user: dict[str, Any]) -> Path:
    b64 = base64.b64encode
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "shop",
                "clusters": [
                    {
                        "name": "shop",
                        "cluster": {"server": url, "certificate-authority-data": b64(keys.ca.cert).decode()},
                    }
                ],
                "users": [{"name": "operator", "user": user}],
                "contexts": [
                    {"name": "shop", "context": {"cluster": "shop", "user": "operator", "namespace": "smart"}}
                ],
            }
        )
    )
    return path


@pytest.fixture
async def tls_cluster(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[VersionedEmulator, str, Pki]]:
    keys = pki()
    demand = request.param == "client-certificate"
    context = server_context(keys, tmp_path, demand_client_cert=demand)
    async with (
        VersionedEmulator() as emulator,
        apps.Server(emulator, server_cls=tls_server(context)) as server,
    ):
        declare(emulator)
        yield emulator, f"https://127.0.0.1:{server.port}", keys


@pytest.mark.parametrize("tls_cluster", ["token", "client-certificate", "exec-plugin"], indirect=True)
async def test_operator_works_with_inline_ca_data_and_a_token_or_a_client_certificate(
    # The cluster first: set up before the operator, it goes after it (fixtures end in reverse
    # order), and the operator's stop does not wait on watch streams cut by a server already gone.
    tls_cluster: tuple[VersionedEmulator, str, Pki],
    start_operator: Starter,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    emulator, url, keys = tls_cluster
    with_certificate = "client-certificate" in request.node.name
    user: dict[str, Any] = {"token": TOKEN}
    if with_certificate:
        user = {
            "client-certificate-data": base64.b64encode(keys.client.cert).decode(),
            "client-key-data": base64.b64encode(keys.client.key).decode(),
        }
    elif "exec-plugin" in request.node.name:  # as cloud CLIs do: a command prints an ExecCredential
        credential = {
            "apiVersion": "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "status": {"token": TOKEN},
        }
        plugin = tmp_path / "credential-plugin"
        plugin.write_text(f"#!/bin/sh\necho '{json.dumps(credential)}'\n")
        plugin.chmod(0o700)
        user = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": str(plugin),
                "interactiveMode": "Never",
            }
        }
    monkeypatch.delenv("SMART_KUBE_SERVER")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # not in a pod: the kubeconfig it is
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path / "kubeconfig", url, keys, user=user)))

    api = await start_operator(url=url, ssl=client_context(keys, tmp_path))
    await api.call("POST", STATIONS, station("pt-1", "inspection", "penetrant"))
    await api.call("POST", CONTRACTS, copy.deepcopy(CONTRACT))
    done = await eventually(lambda: distributed(api, "floor-basics", 1, 1), patience=120)
    assert done["status"]["conditions"]  # written by the operator's own client, over TLS
    info = handlers._connection["info"]
    assert info.priority == 30  # the kubernetes client's login, not kopf's plain kubeconfig reader
    assert {d["metadata"]["name"] for d in await api.items(DAEMONSETS)} >= {"smart-gatekeeper", "smart-qa"}

    own = [r for r in emulator if r.headers.get("User-Agent", "").startswith("OpenAPI-Generator")]
    kinds = {(r.method.value, r.resource.plural if r.resource else None) for r in own}
    assert (
        ("POST", "daemonsets") in kinds
        and ("PATCH", "nodes") in kinds
        and ("PATCH", "smartcontracts") in kinds
    )
    if with_certificate:  # no token anywhere: the TLS layer proved who called
        assert not [r for r in own if "Authorization" in r.headers]
    else:
        assert {r.headers.get("Authorization") for r in own} == {f"Bearer {TOKEN}"}
