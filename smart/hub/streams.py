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

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType, StreamConfig, StreamSource

from smart.bus import hub_roles, subjects
from smart.contracts import approval
from smart.node import records

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
