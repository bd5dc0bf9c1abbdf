"""The JetStream KV bucket the hub puts signed bundles in and every station mirrors.

Bucket ``contracts`` in the hub's domain; one key per (station, contract):
``<station>.<contract>`` (e.g. ``pt-1.penetrant``), whose value is the
signed envelope of :mod:`smart.contracts.bundle`. A station mirrors the
bucket into its own domain and reads ``<its id>.>``; a retired contract's
keys are deleted (a delete marker the mirror copies). The bucket keeps a
few revisions per key so the hub can show what a station had before.
"""

from __future__ import annotations

import json

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.kv import KeyValue

from smart.bus import buckets, subjects

BUCKET = subjects.CONTRACTS_BUCKET
HISTORY = subjects.CONTRACTS_HISTORY
key = subjects.contract_key


async def bucket(js: JetStreamContext, *, name: str = BUCKET) -> KeyValue:
    """The hub's bundle bucket, created on first use."""
    try:
        return await js.key_value(name)
    except nats.js.errors.BucketNotFoundError:
        return await js.create_key_value(KeyValueConfig(bucket=name, history=HISTORY))


class KvBundleStore:
    """Bundles in the KV bucket: what the reconcile core writes through."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def put(self, station: str, contract: str, envelope: bytes) -> None:
        await self.kv.put(key(station, contract), envelope)

    async def delete(self, station: str, contract: str) -> None:
        await self.kv.delete(key(station, contract))

    async def get(self, station: str, contract: str) -> bytes | None:
        try:
            entry = await self.kv.get(key(station, contract))
        except nats.js.errors.KeyNotFoundError:
            return None
        return entry.value

    async def revisions(self, contract: str) -> dict[str, str]:
        """Station → revision of every live bundle of ``contract``."""
        found: dict[str, str] = {}
        for name, value in (await buckets.live_entries(self.kv, f"*.{contract}")).items():
            station, _, owner = name.partition(".")
            if owner == contract and value:
                found[station] = str(json.loads(value)["revision"])
        return found

    async def contracts(self) -> set[str]:
        return {name.partition(".")[2] for name in await buckets.live_entries(self.kv)}
