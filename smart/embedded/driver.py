"""``smart apply`` and ``smart get`` on the embedded floor: manifests → reconcile core → KV and ledger."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
import structlog
from nats.aio.client import Client as NatsClient
from nats.js.api import KeyValueConfig
from nats.js.kv import KeyValue

from smart import ledger
from smart.bus import buckets
from smart.contracts import distribution, manifests, reconcile, semantics
from smart.contracts.manifests import Manifest
from smart.contracts.models import SmartContract, Station
from smart.keys import KeyStore
from smart.settings import Settings

log = structlog.get_logger("smart.embedded")

MANIFESTS_BUCKET = "smart-manifests"
LEDGER_NODE = "smart-embedded"


@dataclass(frozen=True, slots=True)
class Applied:
    kind: str
    name: str
    outcome: str


def hub_url(settings: Settings) -> str:
    return settings.nats_url or f"nats://{settings.host}:{settings.nats_port}"


async def _manifests_bucket(connection: NatsClient) -> KeyValue:
    js = connection.jetstream()
    try:
        return await js.key_value(MANIFESTS_BUCKET)
    except nats.js.errors.BucketNotFoundError:
        return await js.create_key_value(KeyValueConfig(bucket=MANIFESTS_BUCKET, history=5))


async def _records(kv: KeyValue, prefix: str) -> list[dict[str, Any]]:
    return [json.loads(value) for value in (await buckets.live_entries(kv, f"{prefix}.>")).values()]


async def apply(manifests: Sequence[Manifest], settings: Settings) -> list[Applied]:
    """Store stations, then deploy every contract (new and stored) over all known stations."""
    keys = KeyStore(settings.key_directory)
    connection = await nats.connect(hub_url(settings), name="smart-apply")
    log_ = ledger.NodeLog.open(settings.state_dir / "ledger", node=LEDGER_NODE, keys=keys)
    try:
        kv = await _manifests_bucket(connection)
        store = distribution.KvBundleStore(await distribution.bucket(connection.jetstream()))
        applied: list[Applied] = []
        for manifest in manifests:
            if isinstance(manifest, Station):
                await kv.put(f"station.{manifest.metadata.name}", _record(manifest, {}))
                applied.append(Applied("Station", manifest.metadata.name, "configured"))
        stations = [Station.model_validate(r["manifest"]) for r in await _records(kv, "station")]
        named = [m for m in manifests if isinstance(m, SmartContract)]
        stored = [SmartContract.model_validate(r["manifest"]) for r in await _records(kv, "contract")]
        chosen = {c.metadata.name: c for c in stored}
        chosen.update({c.metadata.name: c for c in named})
        for contract in chosen.values():
            try:
                deployment = await reconcile.deploy(
                    contract, stations, key=keys.signing_key("hub"), store=store, log_=log_, actor=LEDGER_NODE
                )
            except semantics.ContractInvalid as err:
                if contract in named:
                    raise
                applied.append(Applied("SmartContract", contract.metadata.name, f"degraded: {err}"))
                continue
            status = {
                "revisions": dict(deployment.revisions),
                "stations": f"{deployment.synced}/{deployment.desired}",
                "ready": "True",
            }
            await kv.put(f"contract.{contract.metadata.name}", _record(contract, status))
            if contract in named:
                applied.append(
                    Applied("SmartContract", contract.metadata.name, f"synced {status['stations']}")
                )
        return applied
    finally:
        log_.close()
        await connection.close()


def _record(manifest: Manifest, status: dict[str, Any]) -> bytes:
    body = manifest.model_dump(mode="json", by_alias=True, exclude_none=True)
    return json.dumps({"manifest": body, "status": status}, sort_keys=True).encode()


async def get(kind: str, settings: Settings) -> list[dict[str, Any]]:
    """Stored contracts or stations with their status (``kind``: contract or station)."""
    connection = await nats.connect(hub_url(settings), name="smart-get")
    try:
        return await _records(await _manifests_bucket(connection), kind)
    finally:
        await connection.close()


async def load_contracts(settings: Settings, directory: Path) -> list[Applied]:
    """``smart up``'s start hook: apply every manifest in ``directory``; problems are logged, never fatal.

    A floor whose contracts do not load still starts: its stations hold no valid bundle and fail
    closed, saying why, which is what the shop needs to see.
    """
    loaded = await asyncio.to_thread(_read, directory)
    if not loaded:
        return []
    try:
        applied = await apply(loaded, settings)
    except Exception as err:  # a start hook must never take the floor down; it says why instead
        log.error("contracts not applied", directory=str(directory), error=str(err))
        return []
    for item in applied:
        log.info("contract loaded", kind=item.kind, name=item.name, outcome=item.outcome)
    return applied


def _read(directory: Path) -> list[Manifest]:
    if not directory.is_dir():
        return []
    try:
        return [item.manifest for item in manifests.load([directory])]
    except manifests.ManifestsInvalid as err:
        for error in err.errors:
            log.error("contract not loaded", problem=str(error))
        return []
