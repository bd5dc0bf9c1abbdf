"""The Kubernetes API calls the operator makes itself: DaemonSets, node labels and status.

kopf watches and patches the resources it handles; everything else goes through the
``kubernetes`` client (its asyncio half, ``kubernetes.aio``, with typed models) over the very
connection kopf logged in with, in whichever form kopf found it: a service account, a
kubeconfig with a token, basic auth, a CA file or inline CA data, a client certificate as
files or inline data, an exec plugin (run by the client library at login, which hands over the
token or certificate it produced). Inline certificates and keys are written to a private
temporary directory (0700, files 0600) for as long as the connection is used, because the TLS
layer loads them from files.
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kopf
from kubernetes.aio import client

from smart.contracts.models import GROUP, VERSION

MERGE_PATCH = "application/merge-patch+json"


class KubeError(RuntimeError):
    """The API server refused a call; the message names the call and the status."""


def login_with_client(settings: kopf.OperatorSettings) -> kopf.ConnectionInfo:
    """Log in as the ``kubernetes`` client does: in-cluster service account, else the kubeconfig.

    kopf's ``login_via_client`` does the same, but the client library reads ``KUBECONFIG`` once,
    when it is imported; this reads it now. Exec plugins and auth providers run here (the client
    library calls them); inline CA, certificate and key data come back as files it wrote.
    """
    from kubernetes import client as sync_client
    from kubernetes import config as kube_config

    try:
        kube_config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kube_config.ConfigException:
        paths = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        try:
            kube_config.load_kube_config(config_file=paths)  # type: ignore[no-untyped-call]
        except (kube_config.ConfigException, OSError) as err:
            raise kopf.LoginError(f"neither in-cluster nor from the kubeconfig ({paths}): {err}") from err
    config = sync_client.Configuration.get_default_copy()
    header = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix("authorization")
    scheme, _, token = (header or "").partition(" ") if header and " " in header else (None, "", header)
    return kopf.ConnectionInfo(
        server=str(config.host),
        ca_path=config.ssl_ca_cert,
        insecure=not config.verify_ssl,
        username=config.username or None,
        password=config.password or None,
        scheme=scheme or None,
        token=token or None,
        certificate_path=config.cert_file,
        private_key_path=config.key_file,
        trust_env=settings.networking.trust_env,
        priority=30,
    )


def _pem(data: str | bytes) -> bytes:
    raw = data.encode() if isinstance(data, str) else data
    return raw if raw.startswith(b"-----BEGIN ") else base64.b64decode(raw)


def _path(value: str | bytes | os.PathLike[str] | os.PathLike[bytes] | None) -> str | None:
    if value is None:
        return None
    return os.fsdecode(value)


class Kube:
    """An API client for one login; build a new one when kopf logs in again."""

    def __init__(self, info: kopf.ConnectionInfo) -> None:
        self.info = info
        self._secrets: tempfile.TemporaryDirectory[str] | None = None
        config = client.Configuration(host=str(info.server).rstrip("/"))
        config.verify_ssl = not info.insecure
        config.ssl_ca_cert = _path(info.ca_path)
        if info.ca_data is not None:
            config.ca_cert_data = _pem(info.ca_data).decode("ascii")
        config.cert_file = _path(info.certificate_path) or self._secret("client.crt", info.certificate_data)
        config.key_file = _path(info.private_key_path) or self._secret("client.key", info.private_key_data)
        header: tuple[str, str] | tuple[None, None] = (None, None)
        if info.token:
            config.api_key = {"BearerToken": info.token}
            config.api_key_prefix = {"BearerToken": info.scheme or "Bearer"}
        elif info.username and info.password:
            basic = base64.b64encode(f"{info.username}:{info.password}".encode()).decode()
            header = ("Authorization", f"Basic {basic}")
        self._api = client.ApiClient(config, header_name=header[0], header_value=header[1])
        self.apps = client.AppsV1Api(self._api)
        self.core = client.CoreV1Api(self._api)
        self.custom = client.CustomObjectsApi(self._api)

    def _secret(self, name: str, data: str | bytes | None) -> str | None:
        if data is None:
            return None
        if self._secrets is None:
            self._secrets = tempfile.TemporaryDirectory(prefix="smart-operator-")
            os.chmod(self._secrets.name, 0o700)
        path = Path(self._secrets.name) / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(_pem(data))
        return str(path)

    async def close(self) -> None:
        await self._api.close()  # type: ignore[no-untyped-call]
        if self._secrets is not None:
            self._secrets.cleanup()
            self._secrets = None

    # DaemonSets: list to compare, create, patch, delete (never get: the list has them all).

    async def daemonsets(self, namespace: str, *, label_selector: str) -> list[client.V1DaemonSet]:
        found = await self.apps.list_namespaced_daemon_set(namespace, label_selector=label_selector)
        return list(found.items)

    async def create_daemonset(self, namespace: str, body: client.V1DaemonSet) -> None:
        await self.apps.create_namespaced_daemon_set(namespace, body)

    async def patch_daemonset(self, namespace: str, name: str, body: client.V1DaemonSet) -> None:
        await self.apps.patch_namespaced_daemon_set(name, namespace, body, _content_type=MERGE_PATCH)

    async def delete_daemonset(self, namespace: str, name: str) -> None:
        await self.apps.delete_namespaced_daemon_set(name, namespace)

    # Nodes: list to find the stations' nodes, patch their module labels.

    async def nodes(self) -> list[client.V1Node]:
        return list((await self.core.list_node()).items)

    async def label_node(self, name: str, labels: Mapping[str, str | None]) -> None:
        await self.core.patch_node(name, {"metadata": {"labels": dict(labels)}}, _content_type=MERGE_PATCH)

    # Status of contracts and stations, through the status subresource.

    async def patch_status(self, plural: str, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        await self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, plural, name, {"status": dict(status)}, _content_type=MERGE_PATCH
        )
