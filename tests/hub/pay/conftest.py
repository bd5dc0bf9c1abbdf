"""The work services' fixtures for these tests."""

from tests.hub.shop import work  # noqa: F401  (the fixture)
