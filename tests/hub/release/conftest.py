"""The work services' fixtures for these tests, and a hub nats-server to release through."""

from collections.abc import AsyncIterator

import nats
import pytest
from nats.js import JetStreamContext

from smart.hub.release import store as release
from smart.hub.service_log import HANDOFF_CENTRAL
from smart.testing.plugin import FloorFactory
from tests.hub.shop import (
    Work,
    work,  # noqa: F401  (the fixture)
)


@pytest.fixture
async def js(floor_factory: FloorFactory) -> AsyncIterator[JetStreamContext]:
    floor = floor_factory(stations=1)
    assert floor.floor.hub is not None
    connection = await nats.connect(floor.floor.hub.url, **floor.settings.hub_nats_signin())
    try:
        yield connection.jetstream()
    finally:
        await connection.close()


def handoff(shop: Work, js: JetStreamContext) -> release.HandoffRelease:
    central = release.HandoffRelease(
        shop.db.app_url,
        clients=shop.clients,
        travelers=shop.travelers,
        js=js,
        ledger=shop.node(HANDOFF_CENTRAL),
    )
    shop.closing.append(central.close)
    return central
