"""MaintenanceHub on the test's hub database (see :mod:`tests.hub.maintenance.shop`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hub.conftest import HubDatabase
from tests.hub.maintenance.shop import Maintenance, make


@pytest.fixture
def shop(hub_db: HubDatabase, tmp_path: Path) -> Iterator[Maintenance]:
    made = make(hub_db, tmp_path)
    try:
        yield made
    finally:
        made.hub.close()


from tests.node.conftest import hub, keys  # noqa: E402, F401  (the station tests' hub NATS + intake, keys)
