"""The station floor's fixtures (a hub with its ledger intake, the keys), reused for the hub's indexes."""

from tests.node.conftest import hub, keys

__all__ = ["hub", "keys"]
