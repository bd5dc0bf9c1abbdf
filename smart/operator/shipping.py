"""The operator's ledger reaches the hub the way a station's does: shipped, and taken on a receipt.

The operator runs in a pod of its own, with its node log (``smart-operator``) on its own volume;
the hub cannot read that file. So, like a station's agent, the operator sends its entries as
batches (``NodeLog.shipment``: the stored bytes and a signed head) to ``ledger.smart-operator.batch``
and the hub's intake takes them with the same checks: the chain re-derived, the head verified with
the node's registered key, each entry once. The shipping is a station's
(:class:`smart.bus.shipping.Shipper`): the cursor moves only on the intake's receipt
(``station.smart-operator.ledger.receipt``), never on the stream's storage ack, so a batch the
hub refuses or loses is sent again from the first entry the hub lacks, and a refusal (a fork, an
entry not canonical) blocks shipping in the open: an error in the log, the
``smart_operator_ledger_blocked`` gauge at 1 and a ``ledger.shipping_blocked`` entry on the
operator's own ledger, while reconciling goes on. The cursor is kept in the operator's state
directory, written atomically, so a restart ships on from where the hub's word left it.
"""

from __future__ import annotations

import structlog
from nats.aio.client import Client as NatsClient

from smart import ledger
from smart.bus.shipping import Blocked, FileCursor, Shipper
from smart.operator import metrics

log = structlog.get_logger("smart.operator.shipping")

#: Entries per batch at most (and at most 512 KiB: a JetStream message stays under its 1 MiB limit).
BATCH = 1000


#: The last node sequence the hub said it holds, in a file of its own (−1: nothing yet).
Cursor = FileCursor


def shipper(node_log: ledger.NodeLog, cursor: Cursor) -> Shipper:
    """The operator's shipper: a station's, with the cursor in a file and the block on its own ledger."""

    def on_blocked(blocked: Blocked | None) -> None:
        metrics.LEDGER_BLOCKED.set(0 if blocked is None else 1)
        if blocked is None:
            log.info("ledger shipping resumed", node=node_log.node)
            node_log.append(
                kind="ledger.shipping_resumed", subject="ledger-shipping", data={}, actor=node_log.node
            )
            return
        log.error(
            "the hub refuses the operator's ledger",
            node=node_log.node,
            kind=blocked.kind,
            alarm=blocked.alarm,
            reason=blocked.reason,
        )
        node_log.append(
            kind="ledger.shipping_blocked",
            subject="ledger-shipping",
            data={"kind": blocked.kind, "alarm": blocked.alarm, "reason": blocked.reason},
            actor=node_log.node,
        )

    found = Shipper(node=node_log.node, node_log=node_log, cursor=cursor, batch=BATCH, on_blocked=on_blocked)
    # Read at scrape time (the node log's size is in memory, under its lock; the cursor is the hub's word).
    metrics.LEDGER_LAG.set_function(lambda: max(node_log.size() - 1 - found.shipped_seq, 0))
    return found


async def ship(node_log: ledger.NodeLog, connection: NatsClient, cursor: Cursor) -> None:
    """Forever (until cancelled): ship the operator's node log, moving the cursor on receipts."""
    await shipper(node_log, cursor).run(connection)
