"""The operator's ledger reaches the hub the way a station's does: shipped over the LEDGER stream.

The operator runs in a pod of its own, with its node log (``smart-operator``) on its own volume;
the hub cannot read that file. So, like a station's agent, the operator sends its entries as
batches (``NodeLog.shipment``: the stored bytes and a signed head) to ``ledger.smart-operator.batch``
with the batch's message id, and the hub's intake takes them with the same checks: the chain
re-derived, the head verified with the node's registered key, each entry once. The cursor (the
last entry the stream acknowledged) is kept in the operator's state directory, written
atomically, so a restart ships on from where it stopped; a batch sent twice is dropped by the
stream (same message id) and by the intake (same node and sequence).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import structlog
from nats.js import JetStreamContext

from smart import ledger
from smart.bus import subjects

log = structlog.get_logger("smart.operator.shipping")

#: Entries per batch at most, and bytes (a JetStream message stays well under its 1 MiB limit).
BATCH = 1000
MAX_BYTES = 512 * 1024
#: Seconds between looks at the log when everything is shipped, and between tries when the hub is away.
IDLE_S = 0.5
RETRY_S = 1.0


class Cursor:
    """The last node sequence the hub's stream acknowledged, in a file of its own (−1: nothing yet)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> int:
        try:
            return int(self.path.read_text().strip() or "-1")
        except FileNotFoundError:
            return -1

    def write(self, seq: int) -> None:
        partial = self.path.with_suffix(".partial")
        with open(partial, "w") as out:
            out.write(f"{seq}\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, self.path)


async def ship(node_log: ledger.NodeLog, js: JetStreamContext, cursor: Cursor) -> None:
    """Forever: send the entries after the cursor, one batch at a time, each until acknowledged."""
    subject = subjects.ledger_subject(node_log.node)
    shipped = cursor.read()
    while True:
        shipment = await asyncio.to_thread(node_log.shipment, shipped + 1, limit=BATCH, max_bytes=MAX_BYTES)
        if shipment is None:
            await asyncio.sleep(IDLE_S)
            continue
        try:
            await js.publish(
                subject, shipment.payload, timeout=5, headers={"Nats-Msg-Id": shipment.message_id}
            )
        except Exception as err:  # the hub or its stream not there yet: the same batch again later
            log.info(
                "ledger not shipped", node=node_log.node, at=shipment.first_seq, error=type(err).__name__
            )
            await asyncio.sleep(RETRY_S)
            continue
        shipped = shipment.last_seq
        await asyncio.to_thread(cursor.write, shipped)
        log.debug("ledger shipped", node=node_log.node, first=shipment.first_seq, last=shipment.last_seq)
