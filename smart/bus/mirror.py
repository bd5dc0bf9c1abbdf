"""Mirroring a hub KV bucket into a station's own JetStream domain.

nats-py's ``KeyValueConfig`` has no mirror field, so the mirror is created as
the bucket's backing stream (``KV_<bucket>``) sourcing the hub's stream
through the hub domain's API prefix; ``key_value(bucket)`` then binds to it
like any local bucket. Writes from a station go to the hub's subjects through
:func:`hub_put`, because a ``put`` on the mirror would be refused.

On a station's leaf (a JetStream domain other than the hub's) a mirror is
delivered inside the station's own subjects, and a bucket every station
shares but keys by station (``subjects.STATION_KEYED_BUCKETS``) is mirrored
only for the station's own keys: the station's NATS user may read nothing
else (``smart.access.stationauth``), and every caller gets that by default.
"""

from __future__ import annotations

import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import ExternalStream, StreamConfig, StreamSource
from nats.js.kv import KeyValue

from smart.bus import subjects
from smart.bus.subjects import HUB_DOMAIN


def stream_name(bucket: str) -> str:
    return f"KV_{bucket}"


async def mirror_bucket(
    station: JetStreamContext,
    bucket: str,
    *,
    history: int = 1,
    hub_domain: str = HUB_DOMAIN,
    deliver: str | None = None,
) -> KeyValue:
    """Create (or keep) the station's mirror of the hub's ``bucket`` and return it as a KV bucket.

    ``deliver`` is the subject prefix the hub delivers the mirror on; by default, on a station's
    leaf, ``station.<station>.mirror`` (``subjects.mirror_deliver_prefix``).
    """
    domain = (await station.account_info()).domain
    keys: str | None = None
    if domain is not None and domain != hub_domain:  # a station's leaf: its domain is the station's id
        deliver = deliver or subjects.mirror_deliver_prefix(domain)
        if bucket in subjects.STATION_KEYED_BUCKETS:
            keys = f"$KV.{bucket}.{domain}.>"
    try:
        info = await station.stream_info(stream_name(bucket))
    except nats.js.errors.NotFoundError:
        pass
    else:
        source = info.config.mirror
        if source is None or (source.external and source.external.deliver, source.filter_subject) == (
            deliver,
            keys,
        ):
            return await station.key_value(bucket)
        # A mirror made before stations signed in with their own permissions (whole bucket, shared
        # delivery subject) would never be served again: it is only a copy of the hub's, remade.
        await station.delete_stream(stream_name(bucket))
    external = ExternalStream(api=f"$JS.{hub_domain}.API", deliver=deliver)
    config = StreamConfig(
        name=stream_name(bucket),
        mirror=StreamSource(name=stream_name(bucket), external=external, filter_subject=keys),
        mirror_direct=True,
        allow_direct=True,
        max_msgs_per_subject=history,
    )
    await station.add_stream(config)
    return await station.key_value(bucket)


async def hub_put(
    connection: NatsClient, bucket: str, key: str, value: bytes, *, hub_domain: str = HUB_DOMAIN
) -> int:
    """Put ``key`` into the hub's ``bucket`` from a station connection; returns the revision.

    A plain ``$KV.<bucket>.<key>`` publish finds no responder across the leaf
    connection; the hub domain's API prefix routes it to the hub's stream. A station's leaf
    signed in with its station's permissions (``smart.access.stationauth``) may write no hub
    bucket: this serves only a leaf whose user allows it.
    """
    ack = await connection.jetstream().publish(f"$JS.{hub_domain}.API.$KV.{bucket}.{key}", value)
    return int(ack.seq)
