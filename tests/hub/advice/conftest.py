"""The station floor's fixtures (a hub with its ledger intake, the keys), for the advisory-only test."""

from tests.node.conftest import hub, keys

__all__ = ["hub", "keys"]
