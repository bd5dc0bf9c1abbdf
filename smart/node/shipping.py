"""A station ships its ledger to the hub, its cursor in the station's store.

The shipping itself (receipts, gaps healing, refusals blocking, re-offering) is
:mod:`smart.bus.shipping`, which the operator's node ships with too; here is only
where a station keeps its cursor: the ``ship_cursor`` table of its store, beside
what it enforces, so a restart ships on from the first entry the hub lacks.
"""

from __future__ import annotations

from collections.abc import Callable

from smart import ledger
from smart.bus.shipping import (
    BLOCKED_RETRY_S,
    MAX_BATCH_BYTES,
    RECEIPT_TIMEOUT_S,
    SHIP_RETRY_S,
    SHIP_WINDOW,
    Blocked,
)
from smart.bus.shipping import Shipper as NodeShipper
from smart.node.store import StationStore

__all__ = [
    "BLOCKED_RETRY_S",
    "MAX_BATCH_BYTES",
    "RECEIPT_TIMEOUT_S",
    "SHIP_RETRY_S",
    "SHIP_WINDOW",
    "Blocked",
    "Shipper",
    "StoreCursor",
]


class StoreCursor:
    """The station's cursor in its store (the hub's word moves it; it never moves back there)."""

    def __init__(self, store: StationStore, station: str) -> None:
        self.store = store
        self.station = station

    def read(self) -> int:
        return self.store.shipped_seq(self.station)

    def write(self, seq: int) -> None:
        self.store.set_shipped_seq(self.station, seq)


class Shipper(NodeShipper):
    """A station's shipper: :class:`smart.bus.shipping.Shipper` over the station's store."""

    def __init__(
        self,
        *,
        station: str,
        node_log: ledger.NodeLog,
        store: StationStore,
        batch: int,
        on_blocked: Callable[[Blocked | None], None],
    ) -> None:
        super().__init__(
            node=station,
            node_log=node_log,
            cursor=StoreCursor(store, station),
            batch=batch,
            on_blocked=on_blocked,
        )
        self.station = station
