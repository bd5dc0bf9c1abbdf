"""A node ships its ledger to the hub, and moves its cursor only on the hub's receipt.

Every node that is not the hub's own process ships this way: a station's agent
(:mod:`smart.node.shipping`) and the operator (:mod:`smart.operator.shipping`), whose
pod's volume the hub cannot read. The hub's ``LEDGER`` stream storing a batch is
not the hub taking it: the intake may still refuse it (a fork, a gap after a lost
batch, bytes that are not canonical). A node that moved its cursor on the stream's
storage ack would never send the refused entries again, and every later batch would
be a gap: its shipping would stall for good while its status said "lag 0". So:

- batches go out (up to ``SHIP_WINDOW`` publishes in flight, at most
  ``MAX_UNACCEPTED`` entries the hub has not yet answered for), and the
  cursor (a :class:`Cursor`: the station's store, the operator's file) moves only on a
  receipt from the intake (:mod:`smart.bus.receipts`) saying how many of the
  node's entries the hub holds;
- a **gap** receipt, or no receipt in ``RECEIPT_TIMEOUT_S``, re-ships from the
  first entry the hub lacks: a transient loss heals by itself;
- a **refused** receipt (fork, not canonical, blocked by an open alarm) puts
  shipping in the blocked state: the owner is told (a station records it on the
  ledger and alerts: kiosk, stack light amber) and keeps enforcing and
  recording; every ``BLOCKED_RETRY_S`` one entry is offered again, so once an
  administrator has decided the hub's alarm, shipping resumes on its own.

Message ids carry an epoch (a new one at every start and every re-ship), so the
stream's duplicate window never swallows a batch sent again on purpose. Kept in
the bus pillar (not the node) so the operator ships the same way without
importing a station's internals.
"""

from __future__ import annotations

import asyncio
import collections
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from smart import ledger
from smart.bus import receipts, subjects
from smart.bus.receipts import Receipt

log = structlog.get_logger("smart.bus.shipping")

#: A shipped batch stays well under nats-server's default 1 MiB message limit.
MAX_BATCH_BYTES = 512 * 1024
#: Batches in flight to the hub's stream at once while a backlog drains.
SHIP_WINDOW = 4
#: How soon a node tries the hub again after a publish failed (with a one-entry batch).
SHIP_RETRY_S = 0.1
#: With no receipt for this long, the node re-ships from its cursor (the hub may have lost them).
RECEIPT_TIMEOUT_S = 5.0
#: While blocked, one entry is offered again this often (the administrator may have decided).
BLOCKED_RETRY_S = 10.0


@dataclass(frozen=True, slots=True)
class Blocked:
    """Why the hub will not take this node's ledger, as its last receipt said."""

    reason: str
    kind: str
    alarm: int | None
    since: float


class Cursor(Protocol):
    """Where a node keeps the last node_seq the hub said it holds, across restarts (-1: none yet)."""

    def read(self) -> int: ...

    def write(self, seq: int) -> None: ...


class ShippedLog(Protocol):
    """What a shipper reads of a node log: a station's or the operator's open ``NodeLog``, or a hub
    role's log read beside its writer (:class:`smart.hub.gathering.SignedLog`)."""

    @property
    def node(self) -> str: ...

    def size(self) -> int: ...

    def shipment(
        self, start: int, *, limit: int = ..., max_bytes: int | None = ...
    ) -> ledger.Shipment | None: ...


class FileCursor:
    """The cursor in a file of its own (the operator's, a hub role's nodes'), written atomically."""

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


class Shipper:
    """Ships one node log; ``run`` is its loop, ``on_receipt`` the intake's answers."""

    def __init__(
        self,
        *,
        node: str,
        node_log: ShippedLog,
        cursor: Cursor,
        batch: int,
        on_blocked: Callable[[Blocked | None], None],
    ) -> None:
        self.node = node
        self.node_log = node_log
        self.cursor = cursor
        self.batch = batch
        self.on_blocked = on_blocked
        #: The last node_seq the hub said it holds (-1 before the first).
        self.shipped_seq = cursor.read()
        self.blocked: Blocked | None = None
        self.hub_has: int | None = None
        self._sent_seq = self.shipped_seq
        self._epoch = int(time.time() * 1000)
        self._rewind = False
        self._answered = asyncio.Event()
        self._last_answer = time.monotonic()

    # -- the hub's answers ----------------------------------------------------------------

    async def on_receipt(self, message: Msg) -> None:
        try:
            receipt = Receipt.from_bytes(message.data)
        except (ValueError, KeyError, TypeError) as err:
            log.warning("shipping.receipt_unreadable", node=self.node, error=str(err))
            return
        if receipt.station != self.node:
            return
        self._last_answer = time.monotonic()
        self.hub_has = receipt.hub_has
        held = min(receipt.hub_has, self.node_log.size()) - 1
        if held != self.shipped_seq:
            if held < self.shipped_seq:
                log.warning(
                    "shipping.hub_holds_less",
                    node=self.node,
                    hub_has=receipt.hub_has,
                    cursor=self.shipped_seq,
                )
                self._rewind = True
            self.shipped_seq = held
            if held >= 0:
                await asyncio.to_thread(self.cursor.write, held)
        if receipt.status == "accepted":
            if self.blocked is not None:
                log.info("shipping.unblocked", node=self.node, hub_has=receipt.hub_has)
                self.blocked = None
                self.on_blocked(None)
        elif receipt.status == "gap":
            log.info("shipping.gap", node=self.node, hub_has=receipt.hub_has, detail=receipt.reason)
            self._rewind = True
        else:
            first = self.blocked is None or self.blocked.reason != receipt.reason
            self.blocked = Blocked(
                receipt.reason or "refused", receipt.kind or "refused", receipt.alarm, time.time()
            )
            self._rewind = True
            if first:
                log.error(
                    "shipping.blocked",
                    node=self.node,
                    kind=receipt.kind,
                    alarm=receipt.alarm,
                    reason=receipt.reason,
                )
                self.on_blocked(self.blocked)
        self._answered.set()

    # -- the loop -------------------------------------------------------------------------

    def _shipment(self, start: int, *, probe: bool) -> ledger.Shipment | None:
        limit = 1 if probe else self.batch
        return self.node_log.shipment(start, limit=limit, max_bytes=MAX_BATCH_BYTES)

    async def run(self, connection: NatsClient) -> None:
        """Ship until cancelled; see the module docstring. Subscribes to the receipts first."""
        subscription = await connection.subscribe(receipts.receipt_subject(self.node), cb=self.on_receipt)
        js = connection.jetstream()
        subject = subjects.ledger_subject(self.node)

        async def send(shipment: ledger.Shipment, epoch: int) -> None:
            await js.publish(
                subject,
                shipment.payload,
                timeout=5,
                headers={"Nats-Msg-Id": f"{shipment.message_id}#{epoch}"},
            )

        window: collections.deque[tuple[ledger.Shipment, asyncio.Task[None]]] = collections.deque()
        probe = True
        next_try = 0.0
        try:
            while True:
                if self._rewind:
                    await _drop(window)
                    self._rewind = False
                    self._resend()
                    probe = True
                if self.blocked is not None:
                    if time.monotonic() < next_try:
                        await self._wait(min(1.0, next_try - time.monotonic()))
                        continue
                    next_try = time.monotonic() + BLOCKED_RETRY_S
                    self._resend()
                    probe = True
                budget = 1 if probe else SHIP_WINDOW
                while len(window) < budget and self._sent_seq - self.shipped_seq < self._max_unaccepted():
                    shipment = await asyncio.to_thread(self._shipment, self._sent_seq + 1, probe=probe)
                    if shipment is None:
                        break
                    window.append((shipment, asyncio.create_task(send(shipment, self._epoch))))
                    self._sent_seq = shipment.last_seq
                if not window:
                    if self._sent_seq > self.shipped_seq:  # all stored at the hub's stream, some unanswered
                        if time.monotonic() - self._last_answer > RECEIPT_TIMEOUT_S:
                            log.info("shipping.no_receipt", node=self.node, from_seq=self.shipped_seq + 1)
                            self._last_answer = time.monotonic()
                            self._rewind = True
                            continue
                        await self._wait(0.1)
                    else:
                        await asyncio.sleep(0.1)
                    continue
                shipment, task = window[0]
                try:
                    await task
                except Exception as err:
                    log.debug(
                        "shipping.failed",
                        node=self.node,
                        error=type(err).__name__,
                        at=shipment.first_seq,
                    )
                    await _drop(window)
                    self._resend()
                    probe = True
                    await asyncio.sleep(SHIP_RETRY_S)
                    continue
                window.popleft()
                if probe:
                    self._last_answer = time.monotonic()  # the hub's stream is there: start counting
                probe = False
        finally:
            await _drop(window)
            try:
                await subscription.unsubscribe()
            except Exception:
                pass  # the connection is already gone

    def _max_unaccepted(self) -> int:
        return SHIP_WINDOW * self.batch * 2

    def _resend(self) -> None:
        """Ship again from the first entry the hub lacks, under a new epoch of message ids."""
        self._sent_seq = self.shipped_seq
        self._epoch += 1

    async def _wait(self, seconds: float) -> None:
        self._answered.clear()
        try:
            await asyncio.wait_for(self._answered.wait(), seconds)
        except TimeoutError:
            pass


async def _drop(window: collections.deque[tuple[ledger.Shipment, asyncio.Task[None]]]) -> None:
    """Cancel the publishes still in flight and wait for them (their outcome no longer matters)."""
    tasks = [task for _, task in window]
    window.clear()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
