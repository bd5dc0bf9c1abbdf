"""kmock with one more trait of a real API server: every write gives the object a new resourceVersion.

kopf tells its own patches' echoes from newer events by resourceVersion; kmock keeps whatever the
client sent, so every event looks equally fresh and, under load, kopf re-handles stale bodies (an
edit handled over and over against an old last-handled annotation). Stamping a counter on each
create and patch, as the API server does, gives kopf what it relies on; and a JSON patch whose
``test`` of the resourceVersion fails is answered 422, as the API server does (kopf then tries
again on the next cycle with a fresh body, instead of resending the stale patch).

A test can also make the emulator refuse some calls (``refuse``), as an API server does when RBAC
or an admission plugin says no, to see what the operator does when a cluster write fails.
"""

from __future__ import annotations

import itertools
from typing import Any

import aiohttp.web
import jsonpatch
import kmock
import pytest
from kmock._internal import enums, rendering


class VersionedEmulator(kmock.KubernetesEmulator):
    _versions = itertools.count(1000)
    #: (HTTP method, path) pairs answered 403 while present.
    refused: set[tuple[str, str]]

    def refuse(self, method: str, path: str) -> None:
        if not hasattr(self, "refused"):
            self.refused = set()
        self.refused.add((method.upper(), path))

    def allow(self, method: str, path: str) -> None:
        getattr(self, "refused", set()).discard((method.upper(), path))

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        if (str(request.method.value).upper(), request.url.path) in getattr(self, "refused", set()):
            return aiohttp.web.json_response(
                {"kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403}, status=403
            )
        writes = (enums.action.CREATE, enums.action.UPDATE)
        if request.resource is not None and request.action in writes:
            version = str(next(self._versions))
            if isinstance(request.data, dict):
                request.data.setdefault("metadata", {})["resourceVersion"] = version
            elif isinstance(request.data, list):  # a JSON patch: its test ops are checked first
                request.data.append({"op": "add", "path": "/metadata/resourceVersion", "value": version})
        try:
            return await super()._handle(request)
        except jsonpatch.JsonPatchTestFailed as err:  # a stale resourceVersion: 422, as a real server says
            return aiohttp.web.json_response(
                {
                    "kind": "Status",
                    "status": "Failure",
                    "reason": "Invalid",
                    "code": 422,
                    "message": str(err),
                },
                status=422,
            )


@pytest.fixture
def kmock_options(kmock_options: dict[str, Any]) -> dict[str, Any]:
    """The operator's tests run against the versioned emulator."""
    return {**kmock_options, "cls": VersionedEmulator}
