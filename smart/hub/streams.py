"""The hub's JetStream buckets and streams that stations read from or write to.

Created by the hub (never by a station, whose NATS user may not create
them) when the hub's nats-server is up: the ``contracts`` bucket stations
mirror, the ``station-status`` bucket of heartbeats, and the ``LEDGER``
stream that receives every station's ledger batches. Idempotent: run at
every start.
"""

from __future__ import annotations

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType, StreamConfig

from smart.bus import subjects
from smart.node import records

#: How long the ledger stream remembers a batch's Nats-Msg-Id to drop a re-sent duplicate.
LEDGER_DUPLICATE_WINDOW_S = 600.0


async def ensure_hub_streams(js: JetStreamContext) -> None:
    await _ensure_bucket(
        js, KeyValueConfig(bucket=subjects.CONTRACTS_BUCKET, history=subjects.CONTRACTS_HISTORY)
    )
    await _ensure_bucket(js, KeyValueConfig(bucket=subjects.STATION_STATUS_BUCKET, history=1))
    await records.ensure_records_bucket(js)  # people, equipment, lots, PO lines the stations mirror
    config = StreamConfig(
        name=subjects.LEDGER_STREAM,
        subjects=[subjects.LEDGER_SUBJECTS],
        storage=StorageType.FILE,
        duplicate_window=LEDGER_DUPLICATE_WINDOW_S,
    )
    try:
        await js.stream_info(subjects.LEDGER_STREAM)
    except nats.js.errors.NotFoundError:
        await js.add_stream(config)


async def _ensure_bucket(js: JetStreamContext, config: KeyValueConfig) -> None:
    try:
        await js.key_value(config.bucket)
    except nats.js.errors.BucketNotFoundError:
        await js.create_key_value(config)
