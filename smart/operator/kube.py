"""The few Kubernetes API calls the operator makes itself: DaemonSets and contract status.

kopf watches and patches the resources it handles; the workloads (DaemonSets)
and the status of *other* contracts are written here, over the same
connection kopf logged in with (server, token, CA), with aiohttp, which kopf
already depends on.
"""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp


class KubeError(RuntimeError):
    """The API server refused a call; the message names the method, path and status."""


class Kube:
    def __init__(
        self,
        server: str,
        *,
        token: str | None = None,
        ca_path: str | None = None,
        insecure: bool = False,
    ) -> None:
        self.server = server.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._ssl: ssl.SSLContext | bool = True
        if insecure:
            self._ssl = False
        elif ca_path:
            self._ssl = ssl.create_default_context(cafile=ca_path)

    async def _call(self, method: str, path: str, body: Any = None, content_type: str | None = None) -> Any:
        headers = dict(self._headers)
        if content_type:
            headers["Content-Type"] = content_type
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method, self.server + path, json=body, headers=headers, ssl=self._ssl
            ) as response,
        ):
            if response.status == 404 and method in ("GET", "DELETE"):
                return None
            if response.status >= 400:
                raise KubeError(f"{method} {path}: {response.status} {await response.text()}")
            return await response.json(content_type=None)

    async def list(self, path: str, *, label_selector: str | None = None) -> list[dict[str, Any]]:
        query = f"?labelSelector={label_selector}" if label_selector else ""
        result = await self._call("GET", path + query)
        return list(result.get("items", [])) if result else []

    async def create(self, path: str, body: dict[str, Any]) -> Any:
        return await self._call("POST", path, body)

    async def merge_patch(self, path: str, body: dict[str, Any]) -> Any:
        return await self._call("PATCH", path, body, "application/merge-patch+json")

    async def delete(self, path: str) -> Any:
        return await self._call("DELETE", path)
