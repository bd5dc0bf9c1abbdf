"""kmock with one more trait of a real API server: every write gives the object a new resourceVersion.

kopf tells its own patches' echoes from newer events by resourceVersion; kmock keeps whatever the
client sent, so every event looks equally fresh and, under load, kopf re-handles stale bodies (an
edit handled over and over against an old last-handled annotation). Stamping a counter on each
create and patch, as the API server does, gives kopf what it relies on; nothing else changes.
"""

from __future__ import annotations

import itertools
from typing import Any

import aiohttp.web
import kmock
import pytest
from kmock._internal import enums, rendering


class VersionedEmulator(kmock.KubernetesEmulator):
    _versions = itertools.count(1000)

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        writes = (enums.action.CREATE, enums.action.UPDATE)
        if request.resource is not None and request.action in writes:
            version = str(next(self._versions))
            if isinstance(request.data, dict):
                request.data.setdefault("metadata", {})["resourceVersion"] = version
            elif isinstance(request.data, list):  # a JSON patch: its test ops are checked first
                request.data.append({"op": "add", "path": "/metadata/resourceVersion", "value": version})
        return await super()._handle(request)


@pytest.fixture
def kmock_options(kmock_options: dict[str, Any]) -> dict[str, Any]:
    """The operator's tests run against the versioned emulator."""
    return {**kmock_options, "cls": VersionedEmulator}
