"""The work pages' fixtures (a hub app over real HTTP, a hub nats-server), shared with the release tests."""

from tests.hub.release.conftest import js  # noqa: F401  (the fixture)
from tests.hub.release.test_pages import hub  # noqa: F401  (the fixture)
from tests.hub.shop import work  # noqa: F401  (the fixture)
