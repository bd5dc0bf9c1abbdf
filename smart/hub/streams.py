"""The hub's JetStream buckets and streams that stations read from or write to.

Created by the hub (never by a station, whose NATS user may not create
them) when the hub's nats-server is up: the ``contracts`` bucket stations
mirror, the ``station-status`` bucket of heartbeats, the station records, the
contract approvals, the ``LEDGER`` stream that receives every station's
ledger batches, and the one-way Business feed. On Kubernetes the operator
runs it at its start. Idempotent: run at
every start.
"""

from __future__ import annotations

import asyncio
import time

import nats.errors
import nats.js.errors
import structlog
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType, StreamConfig, StreamSource

from smart.bus import hub_roles, subjects
from smart.contracts import approval
from smart.node import records

log = structlog.get_logger("smart.hub.streams")

#: How long the Floor waits at its start for the ``LEDGER`` stream before giving up (the pod restarts).
LEDGER_PATIENCE_S = 600.0
#: How often it looks again (and says it is waiting).
LEDGER_LOOK_EVERY_S = 5.0


class StreamMissing(RuntimeError):
    """A stream the hub needs did not come in time; the message says who makes it."""


#: How long the ledger stream remembers a batch's Nats-Msg-Id to drop a re-sent duplicate.
LEDGER_DUPLICATE_WINDOW_S = 600.0


async def ensure_hub_streams(js: JetStreamContext) -> None:
    await _ensure_bucket(
        js, KeyValueConfig(bucket=subjects.CONTRACTS_BUCKET, history=subjects.CONTRACTS_HISTORY)
    )
    await _ensure_bucket(js, KeyValueConfig(bucket=subjects.STATION_STATUS_BUCKET, history=1))
    await records.ensure_records_bucket(js)  # people, equipment, lots, PO lines the stations mirror
    await approval.bucket(js)  # the approvals the Vault's page and the Floor's policy read, never make
    config = StreamConfig(
        name=subjects.LEDGER_STREAM,
        subjects=[subjects.LEDGER_SUBJECTS],
        storage=StorageType.FILE,
        duplicate_window=LEDGER_DUPLICATE_WINDOW_S,
    )
    await _ensure_stream(js, config)
    await ensure_business_feed(js)


async def ensure_business_feed(js: JetStreamContext) -> None:
    """The one-way feed to Business: ``PUBLISHED`` (written by Vault and Floor) and its mirror."""
    await _ensure_stream(
        js,
        StreamConfig(
            name=hub_roles.PUBLISHED_STREAM, subjects=[hub_roles.PUBLISHED_SUBJECTS], storage=StorageType.FILE
        ),
    )
    await _ensure_stream(
        js,
        StreamConfig(
            name=hub_roles.BUSINESS_FEED_STREAM,
            mirror=StreamSource(name=hub_roles.PUBLISHED_STREAM),
            storage=StorageType.FILE,
        ),
    )


async def _ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.stream_info(str(config.name))
    except nats.js.errors.NotFoundError:
        await js.add_stream(config)


async def _ensure_bucket(js: JetStreamContext, config: KeyValueConfig) -> None:
    try:
        await js.key_value(config.bucket)
    except nats.js.errors.BucketNotFoundError:
        await js.create_key_value(config)


async def wait_for_ledger_stream(
    js: JetStreamContext,
    *,
    patience_s: float = LEDGER_PATIENCE_S,
    every_s: float = LEDGER_LOOK_EVERY_S,
) -> None:
    """Until the ``LEDGER`` stream exists: a hub role may not make it (the operator does, at its start).

    Said once per look (``hub.waiting_for_ledger_stream``), so a Floor pod started before the
    operator shows why it is not ready; past ``patience_s`` it raises :class:`StreamMissing`, and
    the pod's restart tries again, rather than the intake running on a stream that is not there.
    """
    deadline = time.monotonic() + patience_s
    looks = 0
    while True:
        try:
            await js.stream_info(subjects.LEDGER_STREAM)
        except (nats.js.errors.NotFoundError, nats.errors.TimeoutError, TimeoutError) as err:
            looks += 1
            if time.monotonic() >= deadline:
                raise StreamMissing(
                    f"the hub NATS has no {subjects.LEDGER_STREAM} stream after {patience_s:.0f} s: on "
                    "Kubernetes the operator makes it at its start (is the operator running?); on one "
                    "machine smart up does"
                ) from err
            log.warning(
                "hub.waiting_for_ledger_stream",
                stream=subjects.LEDGER_STREAM,
                looks=looks,
                error=type(err).__name__,
                detail="the operator makes it at its start; the ledger intake starts once it exists",
            )
            await asyncio.sleep(every_s)
        else:
            if looks:
                log.info("hub.ledger_stream_found", stream=subjects.LEDGER_STREAM, looks=looks)
            return
