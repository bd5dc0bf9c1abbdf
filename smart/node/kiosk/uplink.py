"""Is the hub reachable from this station right now? The kiosk's offline indicator.

The station decides from its own store whether the hub is there or not; the
operator still needs to know when it is not, because then new credentials,
contract revisions and recalls cannot arrive, and the ledger waits to ship.
The probe asks the hub's JetStream domain for its account info through the
station's own leaf (``$JS.<hub>.API.INFO``, which the station's NATS
permissions allow): an answer means the leaf's link to the hub is up; no
responders or a timeout means it is down. Every few seconds, never on a
decision's path.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from nats.aio.client import Client as NatsClient

from smart.runtime.nats import HUB_DOMAIN

log = structlog.get_logger("smart.node.kiosk.uplink")


@dataclass(frozen=True, slots=True)
class Uplink:
    """What the last probe found. ``reachable`` is None before the first probe has answered."""

    reachable: bool | None
    #: Seconds since the epoch of the last answer from the hub, or None if it never answered.
    last_seen: float | None
    #: Why the hub is taken as unreachable, in words (empty when it is reachable).
    why: str = ""


class HubProbe:
    """Probes the hub every ``every_s`` seconds over ``connection()``; read :attr:`uplink`."""

    def __init__(
        self,
        station: str,
        connection: Callable[[], NatsClient | None],
        *,
        every_s: float = 3.0,
        timeout_s: float = 1.0,
        hub_domain: str = HUB_DOMAIN,
    ) -> None:
        self.station = station
        self._connection = connection
        self.every_s = every_s
        self.timeout_s = timeout_s
        self.subject = f"$JS.{hub_domain}.API.INFO"
        self.uplink = Uplink(None, None)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"hub-probe-{self.station}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def probe(self) -> Uplink:
        """One probe now; the result is also kept in :attr:`uplink`."""
        connection = self._connection()
        if connection is None or not connection.is_connected:
            found = Uplink(False, self.uplink.last_seen, "the station's own bus is not connected")
        else:
            try:
                await connection.request(self.subject, b"", timeout=self.timeout_s)
                found = Uplink(True, time.time())
            except Exception as err:  # no responders, timeout, connection closing: the hub is not there
                found = Uplink(
                    False, self.uplink.last_seen, f"the hub does not answer ({type(err).__name__})"
                )
        if found.reachable != self.uplink.reachable:
            log.info("station.hub_uplink", station=self.station, reachable=found.reachable, why=found.why)
        self.uplink = found
        return found

    async def _run(self) -> None:
        while True:
            await self.probe()
            await asyncio.sleep(self.every_s)
